"""``msgbus bench``: throughput of msgbus components against a baseline in the same run.

Each subcommand runs one workload twice (ours and a baseline) and prints msgs/s for
both and their ratio; speed is shown here, never asserted in tests.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

# Each bench imports its workload when it runs: `msgbus bench --help` loads none of them.
from msgbus.bench import stomp_py
from msgbus.cli.bench_view import show_sites_report
from msgbus.cli.options import size_option

F = TypeVar("F", bound=Callable[..., Any])


def _count_option(default: int, help: str) -> Callable[[F], F]:
    return click.option(
        "--count", type=click.IntRange(min=1), default=default, show_default=True, help=help
    )


def _rounds_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--rounds", type=click.IntRange(min=1), default=3, show_default=True, help=help
    )


@click.group()
def bench() -> None:
    """Measure msgbus throughput against a baseline (prints msgs/s and the ratio)."""


@bench.command("broker")
@click.option(
    "--activemq",
    "activemq_url",
    default=None,
    help="stomp://[user:pass@]host:port of a running ActiveMQ; default: start a local one.",
)
@_count_option(50_000, "Messages through each broker per round.")
@size_option
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


@bench.command("publish")
@click.option(
    "--broker",
    "brokers",
    multiple=True,
    metavar="URL",
    help="stomp://[user:pass@]host:port to measure against; default: start a "
    "temporary local ActiveMQ.",
)
@_count_option(20_000, "Messages per sender and round.")
@size_option
@click.option(
    "--slow-count",
    type=click.IntRange(min=1),
    default=None,
    help="Messages for the stop-and-wait senders; default count/10.",
)
@_rounds_option("Interleaved rounds; the best round of each sender is shown.")
def publish_bench(
    brokers: tuple[str, ...], count: int, size: int, slow_count: int | None, rounds: int
) -> None:
    """msgbus.Publisher vs a raw-socket sender (and stomp.py), 1 KB messages to a queue."""
    from msgbus.bench.broker import local_activemq
    from msgbus.bench.publish import run_publish_bench
    from msgbus.config import load_config

    stomp_py()  # missing stomp.py fails now, not after starting ActiveMQ and measuring
    with contextlib.ExitStack() as stack:
        if not brokers:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="msgbus-bench-"))
            click.echo("starting a temporary ActiveMQ ...", err=True)
            endpoint = stack.enter_context(local_activemq(Path(tmp)))
            brokers = (f"stomp://{endpoint.host}:{endpoint.port}",)
        config = load_config(overrides={"connection": {"brokers": list(brokers)}})
        click.echo(
            f"{count} messages of {size} bytes to a queue on {config.connection.brokers[0]}, "
            f"best of {rounds} interleaved rounds"
        )
        results = run_publish_bench(
            config,
            count,
            size,
            slow_count=slow_count,
            rounds=rounds,
            progress=lambda n: click.echo(f"round {n}/{rounds} done", err=True),
        )
        click.echo(f"{'workload':<20}{'sender':<50}{'msgs/s':>10}{'vs raw':>9}{'vs raw+id':>11}")
        base = {(m.workload, m.baseline): m.rate for m in results if m.baseline}
        for m in results:
            raw = base[m.workload, "raw"]
            headers = base.get((m.workload, "headers"))
            with_id = f"{m.rate / headers:>10.2f}x" if headers else f"{'-':>11}"
            click.echo(
                f"{m.workload:<20}{m.sender:<50}{m.rate:>10,.0f}{m.rate / raw:>8.2f}x{with_id}"
            )
        click.echo(
            "vs raw: the bare raw sender (identical frames, no id); vs raw+id: the raw "
            "sender with a unique msgbus-id header per message, as the Publisher sends",
            err=True,
        )


@bench.command("wire")
@click.option(
    "--broker",
    "broker_url",
    default=None,
    metavar="URL",
    help="stomp://[user:pass@]host:port to measure against (msgs/s only); default: start "
    "a temporary local ActiveMQ, whose CPU per frame is shown too.",
)
@_count_option(20_000, "Frames per sender and round.")
@_rounds_option("Interleaved rounds; the median of each sender is shown.")
def bench_wire(broker_url: str | None, count: int, rounds: int) -> None:
    """What the broker spends on a frame as msgbus writes it against a bare frame (raw senders)."""
    from msgbus.bench.broker import Endpoint, local_activemq
    from msgbus.bench.publish import probe_files
    from msgbus.bench.wire import BARE, run_wire_bench

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="msgbus-bench-")))
        if broker_url is None:
            click.echo("starting a temporary ActiveMQ ...", err=True)
            endpoint = stack.enter_context(local_activemq(tmp / "activemq"))
        else:
            endpoint = Endpoint.from_url("broker", broker_url)
        bodies = probe_files(tmp / "results", count)
        click.echo(
            f"{count} WLCG results, one persistent frame each, to a queue on "
            f"{endpoint.host}:{endpoint.port}; median of {rounds} interleaved rounds"
        )
        runs = run_wire_bench(
            endpoint,
            bodies,
            rounds,
            progress=lambda n: click.echo(f"round {n}/{rounds} done", err=True),
        )
    base = next(r for r in runs if r.sender == BARE)
    click.echo(
        f"{'sender':<52}{'msgs/s':>9}{'vs bare':>9}{'broker CPU us/frame':>21}{'vs bare':>9}"
    )
    for r in runs:
        cpu = f"{r.cpu_us:>21.1f}" if r.cpu_us is not None else f"{'n/a':>21}"
        ratio = f"{r.cpu_us / base.cpu_us:>8.2f}x" if r.cpu_us and base.cpu_us else f"{'-':>9}"
        click.echo(f"{r.sender:<52}{r.rate:>9,.0f}{r.rate / base.rate:>8.2f}x{cpu}{ratio}")


@bench.command("consume")
@click.option(
    "--broker",
    "brokers",
    multiple=True,
    required=True,
    metavar="URL",
    help="stomp://[user:pass@]host:port of the broker to measure against.",
)
@click.option(
    "--store",
    "store_url",
    required=True,
    metavar="URL",
    help="SQLAlchemy URL of the store (its tables are created if missing).",
)
@_count_option(20_000, "Messages each consumer drains per round.")
@click.option(
    "--naive-count",
    type=click.IntRange(min=1),
    default=None,
    help="Messages the naive peer handles (default count/4; the rest is discarded).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    help="msgbus.Consumer's batch (consumer.batch).",
)
@_rounds_option(
    "Rounds of every consumer in turn; ratios are taken within a round, then the "
    "median over rounds is shown (load from elsewhere hits a round's consumers alike)."
)
def consume_bench(
    brokers: tuple[str, ...],
    store_url: str,
    count: int,
    naive_count: int | None,
    batch: int,
    rounds: int,
) -> None:
    """msgbus.Consumer vs the raw drain rate and a naive peer, from a durable subscription."""
    from msgbus.bench.consume import STEADY, ours_name, round_ratios, run_consume_bench
    from msgbus.config import load_config
    from msgbus.store import Store

    stomp_py()  # missing stomp.py fails now, not after minutes of measuring
    config = load_config(
        overrides={
            "connection": {"brokers": list(brokers)},
            "consumer": {"batch": batch, "max_wait": 0.5},
            "store_url": store_url,
        }
    )
    click.echo(
        f"{count} persistent {1024}-byte ProbeResults, durable topic subscriptions on "
        f"{config.connection.brokers[0]}, store {Store(store_url).display_url}"
    )
    ours, cumulative = ours_name(batch, "client-individual"), ours_name(batch, "client")
    no_ledger = ours_name(batch, "client-individual", ledger=False)
    ratios: dict[str, list[float]] = {}
    for round_no in range(1, rounds + 1):
        click.echo(f"round {round_no}/{rounds}")
        click.echo(f"{'consumer':<42}{'msgs':>8}{'msgs/s':>10}{'CPU µs/msg':>12}")
        rates: dict[str, float] = {}
        for item in run_consume_bench(config, count, naive_count or max(1, count // 4)):
            if isinstance(item, str):
                click.echo(item)
                continue
            rates[item.consumer] = item.rate
            click.echo(
                f"{item.consumer:<42}{item.count:>8}{item.rate:>10,.0f}"
                f"{item.cpu_us_per_message:>12,.0f}"
            )
            if item.steady_rate is not None:
                rates[item.consumer + STEADY] = item.steady_rate
                click.echo(f"{'  ' + STEADY.lstrip(', '):<42}{'':>8}{item.steady_rate:>10,.0f}")
        for name, ratio in round_ratios(rates, ours, cumulative, no_ledger).items():
            ratios.setdefault(name, []).append(ratio)
    median = {name: statistics.median(values) for name, values in ratios.items()}
    click.echo(
        f"msgbus.Consumer / raw drain: {median['drain']:.2f}x   / raw with ACK each: "
        f"{median['acks']:.2f}x   / naive peer: {median['naive']:.1f}x"
    )
    click.echo(
        f"with ack:client (one cumulative ACK per batch, the default): {median['cumulative']:.2f}x"
        " ACK each"
    )
    click.echo(
        f"msgbus consume, whole process, defaults / raw with one ACK per batch: "
        f"{median['cli']:.2f}x   / raw drain: {median['cli_drain']:.2f}x"
    )
    click.echo(
        "msgbus consume, steady state (first row to last) / raw with one ACK per batch "
        f"(first message to last): {median['cli_steady']:.2f}x"
    )
    click.echo(
        f"with the completeness ledger / without it: {median['ledger']:.2f}x (its cost, "
        "same messages, same run)"
    )
    click.echo(
        f"raw with ACK each / raw drain: {median['ack_cost']:.2f}x (what the client-individual "
        "ACKs alone leave of the drain rate, with no decoding or storing)"
    )
    if rounds > 1:
        spread = ", ".join(
            f"{name} {min(values):.2f}-{max(values):.2f}x" for name, values in ratios.items()
        )
        click.echo(f"medians of {rounds} rounds; ranges: {spread}")


@bench.command("gateway")
@click.option(
    "--broker",
    "broker_url",
    default=None,
    metavar="URL",
    help="stomp://host:port of the broker behind the gateway; default: an embedded one.",
)
@_count_option(10_000, "Messages per sender and round.")
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Messages per publish request to the gateway.",
)
@_rounds_option("Rounds of both senders; the ratio of each round and their median are shown.")
def bench_gateway(broker_url: str | None, count: int, batch: int, rounds: int) -> None:
    """msgbus gateway (HTTPS, AMS JSON) vs STOMP, same bodies: publish, and push vs a
    STOMP subscriber; publish and pull with the retention log vs without."""
    from msgbus.bench.gateway import run_gateway_bench
    from msgbus.broker import BrokerConfig, BrokerThread

    with contextlib.ExitStack() as stack:
        if broker_url is None:
            broker_url = stack.enter_context(BrokerThread(BrokerConfig(port=0))).url
        click.echo(f"{count} WLCG probe results (~1 KB), persistent, confirmed, on {broker_url}")
        click.echo(f"{'round':<7}{'sender':<38}{'msgs/s':>10}")
        # (numerator, denominator) indices of the rates each ratio compares
        pairs = {
            "gateway / direct STOMP": (1, 0),
            "push / STOMP subscriber": (3, 2),
            "publish with the retention log / without": (5, 4),
            "pull+ack with the retention log / without": (7, 6),
        }
        ratios: tuple[list[float], ...] = tuple([] for _ in pairs)
        for round_no, results in run_gateway_bench(broker_url, count, batch, rounds):
            for result in results:
                click.echo(f"{round_no:<7}{result.sender:<38}{result.rate:>10,.0f}")
            for ratio, (top, bottom) in zip(ratios, pairs.values(), strict=True):
                ratio.append(results[top].rate / results[bottom].rate)
        names = tuple(pairs)
        for what, ratio in zip(names, ratios, strict=True):
            spread = f"{min(ratio):.2f}-{max(ratio):.2f}x"
            click.echo(
                f"{what}: {statistics.median(ratio):.2f}x (median of {rounds} rounds, "
                f"range {spread})"
            )


def _display(store_url: str) -> str:
    from msgbus.store import Store

    with contextlib.closing(Store(store_url)) as store:
        return store.display_url


@bench.command("startup")
@click.option(
    "--broker",
    "broker_url",
    default=None,
    metavar="URL",
    help="stomp://[user:pass@]host:port to publish to; default: an embedded broker.",
)
@click.option(
    "--activemq", is_flag=True, help="Start a temporary local ActiveMQ and publish to it."
)
@_rounds_option("Runs of each command, interleaved; medians are shown.")
def bench_startup(broker_url: str | None, activemq: bool, rounds: int) -> None:
    """One result per process: msgbus publish/probe vs a plain stomp.py sender, start-up
    included (wall and the child's CPU)."""
    from msgbus.bench.broker import local_activemq
    from msgbus.bench.startup import BASELINE, run_startup_bench
    from msgbus.broker import BrokerConfig, BrokerThread
    from msgbus.config import load_config

    stomp_py()  # the baseline needs stomp.py; fail before starting a broker
    if broker_url is not None and activemq:
        raise click.UsageError("give --broker or --activemq, not both")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="msgbus-bench-")))
        if activemq:
            click.echo("starting a temporary ActiveMQ ...", err=True)
            endpoint = stack.enter_context(local_activemq(tmp / "activemq"))
            broker_url = f"stomp://{endpoint.host}:{endpoint.port}"
        elif broker_url is None:
            config = BrokerConfig(port=0, data_dir=tmp / "broker")
            broker_url = stack.enter_context(BrokerThread(config)).url
        url = load_config(overrides={"connection": {"brokers": [broker_url]}}).connection.brokers[0]
        click.echo(f"one WLCG result per process to {url}; median of {rounds} runs")
        click.echo(f"{'command':<28}{'wall ms':>9}{'CPU ms':>9}{'wall x':>9}{'CPU x':>8}")
        timings = list(
            run_startup_bench(
                url,
                tmp / "work",
                rounds,
                progress=lambda n: click.echo(f"round {n}/{rounds} done", err=True),
            )
        )
    base = next(t for t in timings if t.name == BASELINE)
    for t in timings:
        click.echo(
            f"{t.name:<28}{t.wall * 1e3:>9.1f}{t.cpu * 1e3:>9.1f}"
            f"{t.wall / base.wall:>8.2f}x{t.cpu / base.cpu:>7.2f}x"
        )
    click.echo(f"x: over the {BASELINE} (connect, SEND persistent with a receipt, DISCONNECT)")


@bench.command("instructions")
@_count_option(1000, "Messages of the smaller run (the other has twice as many).")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="SQLAlchemy URL the consumer's insert stage writes to; default: a scratch SQLite "
    "file. Only this process's instructions are counted, not the database server's.",
)
@click.option(
    "--path",
    "paths",
    type=click.Choice(["consumer", "publisher"]),
    multiple=True,
    help="Path to count (repeatable); default: both.",
)
def bench_instructions(count: int, store_url: str | None, paths: tuple[str, ...]) -> None:
    """Instructions per message of each stage of the consumer and the publisher, counted
    by callgrind (needs valgrind; minutes)."""
    from msgbus.bench.instructions import count_instructions, format_table

    counts = [
        count_instructions(path, count, store_url if path == "consumer" else None)
        for path in paths or ("consumer", "publisher")
    ]
    click.echo(f"callgrind, runs of {count} and {2 * count} messages, difference / {count}")
    for line in format_table(counts):
        click.echo(line)


@bench.command("sites")
@click.option(
    "--sites",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Sites, each one STOMP connection with heart-beats.",
)
@click.option(
    "--metrics",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Metrics per site.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.001),
    default=300.0,
    show_default=True,
    help="Seconds between two runs of one metric.",
)
@click.option(
    "--steady",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds at the average rate.",
)
@click.option(
    "--burst",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds of the burst after the steady phase (0: no burst).",
)
@click.option(
    "--burst-factor",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="The burst's rate over the average.",
)
@click.option(
    "--heartbeat",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Heart-beat interval of the sites' connections, in seconds.",
)
@size_option
@click.option(
    "--topology",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An ActiveMQ network to start and measure (e.g. "
    "brokers/core3.yaml); default: an embedded broker.",
)
@click.option("--site-user", default=None, help="Topology user the sites log in as.")
@click.option("--store-user", default=None, help="Topology user the consumers log in as.")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Store the consumers write to; default: a new SQLite file.",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=1),
    default=900.0,
    show_default=True,
    help="Seconds to wait for the store to catch up after the burst.",
)
@click.option(
    "--single",
    type=click.IntRange(min=0),
    default=20_000,
    show_default=True,
    help="Persistent messages one connection sends first, with a receipt each (the "
    "workload of msgbus bench broker): the burst is reported against its rate (0: skip).",
)
def bench_sites(
    sites: int,
    metrics: int,
    interval: float,
    steady: float,
    burst: float,
    burst_factor: float,
    heartbeat: int,
    size: int,
    topology: Path | None,
    site_user: str | None,
    store_user: str | None,
    store_url: str | None,
    drain_timeout: float,
    single: int,
) -> None:
    """Many sites at once: broker memory per connection, broker CPU, publish-to-row
    latency and backlog drain; exits 1 if a confirmed message was not stored."""
    from msgbus.bench.sites import SitesPlan, embedded_target, network_target, run

    plan = SitesPlan(
        sites=sites,
        metrics=metrics,
        interval=interval,
        steady=steady,
        burst_factor=burst_factor,
        burst=burst,
        heartbeat_ms=heartbeat * 1000,
        size=size,
        drain_timeout=drain_timeout,
        single=single,
    )
    burst_text = f", then {burst_factor:g}x for {burst:g} s" if burst > 0 else ", no burst"
    with tempfile.TemporaryDirectory(prefix="msgbus-bench-sites-") as tmp:
        base = Path(tmp)
        url = store_url or f"sqlite:///{base / 'store.db'}"
        if topology is None:
            target_cm = embedded_target(base, plan)
        else:
            target_cm = network_target(topology, base, site_user=site_user, store_user=store_user)
        with target_cm as target:
            click.echo(
                f"{sites:,} sites x {metrics} metrics / {interval:g} s = {plan.rate:,.0f} "
                f"msgs/s{burst_text}; {target.name}; "
                f"store {_display(url)}"
            )
            report = run(plan, target, url, base)
    show_sites_report(report, heartbeat)
    if report.missing:
        raise click.ClickException(
            f"{report.missing} confirmed messages were not stored within "
            f"--drain-timeout {drain_timeout:g} s"
        )
