"""``msgbus consume``: a durable subscription (or queue) into the relational store."""

from __future__ import annotations

import logging
import signal
import types
from pathlib import Path
from typing import Any

import click

from msgbus.cli.options import broker_option, config_option, metrics_port_option
from msgbus.config import load_config
from msgbus.consume.consumer import Consumer
from msgbus.consume.dirq import DirqSink
from msgbus.errors import ConfigError
from msgbus.presence.agent import ComponentAgent, no_args

__all__ = ["consume"]


@click.command()
@broker_option()
@click.option(
    "--destination",
    default=None,
    help="/topic/X (durable with --subscription), /queue/X, or "
    "/queue/Consumer.NAME.VirtualTopic.X to share the load between processes.",
)
@click.option(
    "--subscription",
    default=None,
    metavar="NAME",
    help="Durable subscription name: messages wait while the consumer is away.",
)
@click.option(
    "--selector",
    default=None,
    metavar="SQL",
    help="Only messages whose headers match this JMS selector, e.g. \"voName = 'atlas'\".",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="SQLAlchemy URL of the store (default: sqlite:///msgbus.db).",
)
@click.option(
    "--dirq",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each message into this directory queue (dirq QueueSimple, WLCG text, as "
    "SSM receivers do) instead of the store.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Messages per transaction (the broker prefetch is four batches).",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Seconds before a partial batch is committed anyway.",
)
@click.option(
    "--ack",
    type=click.Choice(["client", "client-individual"]),
    default=None,
    help="One cumulative ACK per committed batch (default) or one ACK per message.",
)
@click.option("--name", default=None, help="This consumer's name (metrics, presence).")
@metrics_port_option
@config_option
@click.option(
    "--allow-signer",
    "allowed_signers",
    multiple=True,
    metavar="DN",
    help="Accept only S/MIME-signed bodies from this certificate DN (repeat; /C=X/O=Y/CN=Z "
    "or CN=Z, O=Y, C=X); others are dead-lettered.",
)
@click.option(
    "--signer-ca",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="CA file or directory the signers' certificates chain to.",
)
@click.option(
    "--drain", is_flag=True, help="Exit once the broker has nothing more for this subscription."
)
def consume(config_file: Path | None, drain: bool, **opts: Any) -> None:
    """Store messages from a broker in the database, acknowledging after commit.

    Run `msgbus db init --store URL` once first. SIGTERM or Ctrl-C finishes the
    batch in flight and disconnects; a second one stops at once (uncommitted
    messages stay with the broker).
    """
    overrides: dict[str, Any] = {
        "name": opts["name"],
        "connection": {"brokers": list(opts["brokers"]) or None},
        "consumer": {
            "destination": opts["destination"],
            "subscription": opts["subscription"],
            "selector": opts["selector"],
            "batch": opts["batch"],
            "max_wait": opts["max_wait"],
            "ack": opts["ack"],
            "allowed_signers": list(opts["allowed_signers"]) or None,
            "signer_ca": opts["signer_ca"],
        },
        "store_url": opts["store_url"],
        "metrics": {"port": opts["metrics_port"]},
    }
    config = load_config(config_file, overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    dirq: Path | None = opts["dirq"]
    if dirq is not None and opts["store_url"] is not None:
        raise ConfigError("give --store or --dirq, not both")
    consumer = Consumer(config, store=DirqSink(dirq) if dirq is not None else None)
    # Presence and control (msgbus status / msgbus ctl) on a connection of its own.
    agent = ComponentAgent(
        config,
        kind="consumer",
        stats=consumer.stats,
        handlers={c: no_args(getattr(consumer, c)) for c in ("pause", "resume", "drain", "stop")},
        reload=lambda: load_config(config_file, overrides),
    )
    if config.metrics.port is not None:
        port = consumer.metrics.registry.serve(config.metrics.port)
        click.echo(f"metrics on http://127.0.0.1:{port}/metrics", err=True)

    signals: list[int] = []

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        signals.append(signum)
        if len(signals) == 1:
            consumer.stop()
        else:
            consumer.abort()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if drain:
        consumer.drain()
    try:
        with agent:
            consumer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        consumer.metrics.registry.stop()
        consumer.store.close()
    s = consumer.stats()
    click.echo(
        f"received {s['received']}, stored {s['stored']}, duplicates {s['duplicates']}, "
        f"dead-lettered {s['dead_lettered']}",
        err=True,
    )
