"""``msgbus publish``, ``msgbus spool status|drain`` and ``msgbus probe``."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from msgbus.cli.options import (
    broker_option,
    config_option,
    metrics_port_option,
    metrics_textfile_option,
    spool_option,
)
from msgbus.config import MsgbusConfig, load_config
from msgbus.errors import AuthenticationError, BrokerBusy, ConfigError, MsgbusError
from msgbus.publish import Publisher, PublishReport, Spool
from msgbus.publish.probe import ProbeTarget, default_metric, probe_result, run_plugin
from msgbus.schema import DEFAULT_MESSAGE_CLASS, MESSAGE_TYPES
from msgbus.schema.registry import model_for
from msgbus.schema.stream import read_stream
from msgbus.schema.validation import Decoded

__all__ = ["probe", "publish", "spool"]

F = TypeVar("F", bound=Callable[..., Any])


def _connection_options(func: F) -> F:
    """--broker, --config, --spool and the metrics flags, shared by the commands here."""
    for option in reversed(
        [
            broker_option(),
            config_option,
            spool_option,
            metrics_port_option,
            metrics_textfile_option,
        ]
    ):
        func = option(func)
    return func


def _load(opts: dict[str, Any], publisher: dict[str, Any] | None = None) -> MsgbusConfig:
    overrides: dict[str, Any] = {
        "connection": {"brokers": list(opts["brokers"]) or None},
        "publisher": {"spool_dir": opts["spool_dir"], **(publisher or {})},
        "metrics": {"port": opts["metrics_port"], "textfile": opts["metrics_textfile"]},
    }
    return load_config(opts["config_file"], overrides)


@contextlib.contextmanager
def _publisher(config: MsgbusConfig, *, spool: bool = True) -> Iterator[Publisher]:
    """A publisher with its metrics served and/or written as configured."""
    with Publisher(config, spool=spool) as pub:
        if config.metrics.port is not None:
            port = pub.metrics.registry.serve(config.metrics.port)
            click.echo(f"metrics on http://127.0.0.1:{port}/metrics", err=True)
        try:
            yield pub
        finally:
            if config.metrics.textfile is not None:
                pub.metrics.registry.write_textfile(config.metrics.textfile)
            pub.metrics.registry.stop()


def _finish(report: PublishReport, rejected_before: int = 0) -> None:
    for line in report.rejected:
        click.echo(f"msgbus: rejected: {line}", err=True)
    if report.spooled and report.spool_reason is not None:
        # One line: the failover error lists every broker tried on lines of its own.
        reason = " ".join(str(report.spool_reason).split())
        if isinstance(report.spool_reason, BrokerBusy):
            # Refused for now (a full queue): not an error, the next run delivers them.
            click.echo(
                f"msgbus: held back, {report.spooled} spooled for the next run or "
                f"`msgbus spool drain`: {reason}",
                err=True,
            )
        else:
            click.echo(f"msgbus: spooled because: {reason}", err=True)
    click.echo(
        f"{report.confirmed} confirmed, {report.spooled} spooled, "
        f"{len(report.rejected) + rejected_before} rejected, {report.failed} failed"
    )
    report.raise_for_failures()
    # Refused messages, or spooled ones no retry can deliver (the login was refused):
    # the user must act; the line above said why.
    refused_login = report.spooled and isinstance(report.spool_reason, AuthenticationError)
    if report.rejected or rejected_before or refused_login:
        raise SystemExit(1)


def _read_records(
    sources: tuple[BinaryIO, ...], message_class: str, rejected: list[str]
) -> Iterator[Decoded]:
    model = model_for(message_class)
    for source in sources:
        name = source.name if isinstance(source.name, str) else "-"
        empty = True
        # Record by record: an input of any size is published in bounded memory.
        for result in read_stream(source, model):
            empty = False
            if result.message is not None:
                yield result
            else:
                rejected.append(f"{name}: {result.reason}")
        if empty:
            rejected.append(f"{name}: holds no message")


@click.command()
@_connection_options
@click.option("--destination", default=None, help="Default: publisher.destination.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["wlcg", "json"]),
    default=None,
    help="Body format on the wire (default: publisher.format). Input is detected.",
)
@click.option(
    "--type",
    "message_class",
    type=click.Choice(sorted(MESSAGE_TYPES)),
    default=DEFAULT_MESSAGE_CLASS,
    show_default=True,
    help="Message type of the input.",
)
@click.option(
    "--dirq",
    type=click.Path(file_okay=False, path_type=Path),
    help="Drain this outgoing directory queue as APEL SSM's sender does (dirq QueueSimple, "
    "one body per element, sent unmodified with an empa-id header, signed and encrypted "
    "as configured): each element is removed once confirmed.",
)
@click.option(
    "--encrypt-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Encrypt each body for this certificate's owner (default: publisher.encrypt_cert).",
)
@click.option(
    "--pack",
    type=click.IntRange(1, 1000),
    default=None,
    help="Messages per body, as MSG publishers packed bulk results (default: "
    "publisher.pack, 1). Packed bodies carry no selector headers (siteName, ...).",
)
@click.argument("inputs", nargs=-1, type=click.File("rb"))
def publish(
    destination: str | None,
    fmt: str | None,
    message_class: str,
    dirq: Path | None,
    encrypt_cert: Path | None,
    pack: int | None,
    inputs: tuple[BinaryIO, ...],
    **opts: Any,
) -> None:
    """Publish every message in INPUTS (WLCG text or JSON files, - for stdin).

    Each message is validated first; invalid ones are reported and not sent. Exit 0
    when every message was confirmed by a broker or spooled because no broker answered
    or a broker held them back (a full queue);
    exit 1 when a message was invalid or refused by the broker (too large, not
    authorized: reported, not retried), the login was refused (spooled, not lost), or
    messages could be neither delivered nor spooled (the spool or its disk full: counted
    as failed in the summary line, which always comes).
    """
    publisher: dict[str, Any] = {"destination": destination, "format": fmt, "pack": pack}
    publisher["encrypt_cert"] = encrypt_cert
    if dirq is not None:
        if inputs:
            raise ConfigError("give INPUTS or --dirq, not both")
        _publish_dirq(_load(opts, publisher), dirq)
        return
    config = _load(opts, publisher)
    rejected: list[str] = []
    with _publisher(config) as pub:
        report = pub.publish_read(
            _read_records(inputs or (click.get_binary_stream("stdin"),), message_class, rejected)
        )
    for line in rejected:
        click.echo(f"msgbus: rejected: {line}", err=True)
    _finish(report, len(rejected))


def _publish_dirq(config: MsgbusConfig, path: Path) -> None:
    from msgbus.publish.dirq import publish_dirq

    # No spool: an element stays in its queue until a broker confirmed it.
    with _publisher(config, spool=False) as pub:
        report = publish_dirq(pub, path)
    click.echo(f"{report.elements} elements published and removed")
    if report.stopped is not None:
        reason = " ".join(report.stopped.split())  # one line: failover lists brokers on several
        click.echo(f"msgbus: stopped, the rest stays queued: {reason}", err=True)
        raise SystemExit(1)


@click.group()
def spool() -> None:
    """Inspect or drain the local spool of undelivered messages."""


@spool.command("status")
@spool_option
@config_option
def spool_status(spool_dir: Path | None, config_file: Path | None) -> None:
    """How many messages wait in the spool, and since when."""
    config = load_config(config_file, {"publisher": {"spool_dir": spool_dir}})
    if not (config.publisher.spool_dir / "spool.sqlite").exists():
        click.echo(f"spool {config.publisher.spool_dir}: empty (never used)")
        return
    with Spool(config.publisher.spool_dir, config.publisher.spool_max_bytes) as s:
        st = s.status()
    now = time.time()
    age = f", oldest {now - st.oldest:.0f} s ago" if st.oldest is not None else ""
    click.echo(f"spool {st.path}: {st.count} message(s), {st.bytes} of {st.max_bytes} bytes{age}")
    if st.rejected:
        click.echo(f"{st.rejected} message(s) refused by a broker, set aside (not retried)")
    if st.last_error is not None and st.last_error_at is not None:
        error = " ".join(st.last_error.split())
        click.echo(f"last error {now - st.last_error_at:.0f} s ago: {error}")


@spool.command("drain")
@_connection_options
def spool_drain(**opts: Any) -> None:
    """Deliver the spooled messages, oldest first, with a progress bar.

    Stops, exit 1, when no broker answers or when what was delivered cannot be marked so
    (the spool's disk is full): the rest stays spooled for a later drain.
    """
    # Imported here: rich's progress bar costs `msgbus publish` 25 ms of start-up.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    config = _load(opts)
    with _publisher(config) as pub:
        assert pub.spool is not None
        total = len(pub.spool)
        columns = (TextColumn("draining"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("drain", total=total)
            report = pub.drain(progress=lambda n: bar.advance(task, n))
    for line in report.refused:
        click.echo(f"msgbus: refused: {line}", err=True)
    if report.busy:
        raise ConfigError("another process is draining this spool; try again when it is done")
    click.echo(f"{report.drained} drained, {report.remaining} remaining")
    if report.error is not None:
        raise report.error
    if report.refused:
        raise SystemExit(1)


@click.command(context_settings={"ignore_unknown_options": False})
@_connection_options
@click.option("--destination", default=None, help="Default: publisher.destination.")
@click.option("--metric", default=None, help="Metric name (default: the plugin's file name).")
@click.option("--host", default=None, help="Host the result is about (default: this host).")
@click.option("--site", default=None, help="Site name (default: the configured site).")
@click.option(
    "--service-flavour",
    default="host",
    show_default=True,
    help="The result's serviceFlavour (the kind of service probed, e.g. CE, SRM).",
)
@click.option("--service-uri", default=None, help="Default: the host.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds before the plugin is killed (UNKNOWN).",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Run again every SECONDS until interrupted (spool drains in between).",
)
@click.option(
    "--name",
    default=None,
    help="With --every: this publisher's name in msgbus status/ctl [kind@host:pid].",
)
@click.argument("command", nargs=-1, required=True)
def probe(
    destination: str | None,
    metric: str | None,
    host: str | None,
    site: str | None,
    service_flavour: str,
    service_uri: str | None,
    timeout: float,
    every: float | None,
    name: str | None,
    command: tuple[str, ...],
    **opts: Any,
) -> None:
    """Run a Nagios plugin (after --) and publish its result as a ProbeResult."""
    config = _load(opts, {"destination": destination})
    site = site or config.site
    if not site:
        raise ConfigError("a probe result needs a site: pass --site or set 'site' in the config")
    target = ProbeTarget(
        metric=metric or default_metric(command),
        host=host or socket.getfqdn(),
        site=site,
        service_flavour=service_flavour,
        service_uri=service_uri,
    )
    stop = threading.Event()
    with _publisher(config) as pub, contextlib.ExitStack() as presence:
        if every is not None:
            # Long-running: presence and control; `msgbus ctl NAME stop` or SIGTERM end it.
            # Imported here: a one-shot probe on thousands of nodes starts 25 ms sooner.
            from msgbus.presence.agent import ComponentAgent, no_args

            presence.enter_context(
                ComponentAgent(
                    config.model_copy(update={"site": site}),
                    kind="publisher",
                    name=name,
                    stats=pub.stats,
                    handlers={"stop": no_args(stop.set)},
                    reload=lambda: _load(opts, {"destination": destination}),
                )
            )
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while True:
            run = run_plugin(command, timeout)
            result = probe_result(run, target)
            click.echo(f"{target.metric} {result.metricStatus.value}: {result.summaryData}")
            report = pub.publish([result])
            if every is None:
                break
            try:
                _finish(report)
            except (MsgbusError, SystemExit) as exc:
                # A long-running probe keeps going; the next round may succeed.
                click.echo(f"msgbus: error: {exc}", err=True)
            if stop.wait(every):
                break
    _finish(report)
