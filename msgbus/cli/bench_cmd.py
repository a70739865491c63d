"""``msgbus bench``: throughput of msgbus components against a baseline in the same run.

Each subcommand runs one workload twice (ours and a baseline) and prints msgs/s for
both and their ratio; speed is shown here, never asserted in tests.
"""

from __future__ import annotations

import click

from msgbus.bench.consume import consume_bench
from msgbus.bench.publish import publish_bench


@click.group()
def bench() -> None:
    """Measure msgbus throughput against a baseline (prints msgs/s and the ratio)."""


bench.add_command(publish_bench)
bench.add_command(consume_bench)


@bench.command("broker")
@click.option(
    "--activemq",
    "activemq_url",
    default=None,
    help="stomp://[user:pass@]host:port of a running ActiveMQ; default: start a local one.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Messages through each broker per round.",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Message body size in bytes.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=5_000,
    show_default=True,
    help="Messages sent to each broker (both workloads) before measuring.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs per broker and workload, alternating; the median is shown.",
)
def bench_broker(activemq_url: str | None, count: int, size: int, warmup: int, repeat: int) -> None:
    """Embedded broker vs ActiveMQ: one producer, one consumer, non-persistent and persistent."""
    from msgbus.bench.broker import compare

    click.echo(
        f"{count} messages of {size} bytes, 1 producer, 1 consumer, queue, ack:auto; "
        f"median of {repeat} alternating runs"
    )
    click.echo(
        f"{'workload':<16}{'embedded msgs/s':>18}{'activemq msgs/s':>18}{'ratio':>9}"
        f"{'broker CPU us/msg (embedded activemq)':>40}"
    )
    for ours, theirs in compare(
        activemq_url=activemq_url, count=count, size=size, warmup=warmup, repeat=repeat
    ):
        cpu = " ".join(
            f"{m.cpu_us_per_message:.1f}" if m.cpu_us_per_message is not None else "n/a"
            for m in (ours, theirs)
        )
        click.echo(
            f"{ours.workload:<16}{ours.rate:>18,.0f}{theirs.rate:>18,.0f}"
            f"{ours.rate / theirs.rate:>8.2f}x{cpu:>40}"
        )
