"""``msgbus consume``: a durable subscription (or queue) into the relational store."""

from __future__ import annotations

import logging
import signal
import types
from pathlib import Path
from typing import Any, TextIO

import click

from msgbus.cli.options import broker_option, config_option, metrics_port_option
from msgbus.errors import ConfigError

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
    help="Write each body, unmodified, into directory queues here instead of the store: "
    "DIR/incoming and DIR/reject as APEL SSM's receiver does (APEL's loader msgpath).",
)
@click.option(
    "--dirq-format",
    type=click.Choice(["ssm", "simple"]),
    default="ssm",
    show_default=True,
    help="ssm: dirq Queue with SSM's schema (body, signer, empaid); simple: one "
    "QueueSimple element per body in DIR, refused ones in DIR.rejected.",
)
@click.option(
    "--foreign",
    type=click.Choice(["store", "dead-letter"]),
    default=None,
    help="Bodies in no msgbus format (APEL records, Avro): kept unmodified in the "
    "foreign_messages table (store, the default) or dead-lettered.",
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
    "--allow-signers-from",
    "signers_file",
    type=click.File("r"),
    default=None,
    help="Also accept the DNs in this file, one /C=X/O=Y/CN=Z a line (SSM's valid DNs file).",
)
@click.option(
    "--decrypt-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="This host's certificate: encrypted bodies are decrypted with it (as SSM does).",
)
@click.option(
    "--decrypt-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key of --decrypt-cert.",
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
    # Imported here, so that `msgbus consume --help` loads neither the store nor the
    # consumer; frozen out of the collector's way as the command modules are.
    from msgbus.cli.main import freeze_imports
    from msgbus.config import load_config
    from msgbus.consume.consumer import Consumer
    from msgbus.consume.dirq import DirqSink
    from msgbus.presence.agent import ComponentAgent, no_args

    freeze_imports()
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
            "allowed_signers": _signers(opts["allowed_signers"], opts["signers_file"]),
            "signer_ca": opts["signer_ca"],
            "decrypt_cert": opts["decrypt_cert"],
            "decrypt_key": opts["decrypt_key"],
            "foreign": opts["foreign"],
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
    sink = DirqSink(dirq, opts["dirq_format"]) if dirq is not None else None
    consumer = Consumer(config, store=sink)
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
    pings = f", SSM pings ignored {s['ignored']}" if s["ignored"] else ""
    click.echo(
        f"received {s['received']}, stored {s['stored']}, duplicates {s['duplicates']}, "
        f"dead-lettered {s['dead_lettered']}{pings}",
        err=True,
    )


def _signers(dns: tuple[str, ...], dn_file: TextIO | None) -> list[str] | None:
    """The DNs given, and those of a file in SSM's format (slash DNs; blank lines and
    # comments skipped; anything else is a mistake worth a clear error)."""
    allowed = list(dns)
    if dn_file is None:
        return allowed or None
    found = 0
    for number, line in enumerate(dn_file, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if not entry.startswith("/"):
            raise ConfigError(
                f"{dn_file.name} line {number}: {entry!r} is not a DN in slash notation "
                "(/C=X/O=Y/CN=Z); fix or remove the line"
            )
        allowed.append(entry)
        found += 1
    if not found:
        # Else an emptied file would turn signature checks off; SSM refuses to start too.
        raise ConfigError(f"{dn_file.name} holds no DN; list the signers to accept, one a line")
    return allowed
