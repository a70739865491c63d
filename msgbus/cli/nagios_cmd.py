"""``msgbus nagios-bridge``: probe results from the bus as Nagios passive check results,
through Nagios' command file or Icinga 2's REST API (``--icinga-url``).

At least once: a message is acknowledged only after its command lines are in Nagios'
command file, or Icinga answered 200 for each of its results, so a bridge that dies in
between gets it again (Nagios and Icinga take a repeated passive result as one more check
of the same state). What Icinga refuses for itself (an unknown service) is reported and
acknowledged, as a message that is not a probe result is.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import click

from msgbus.cli.options import broker_option, config_option, parse_duration
from msgbus.cli.receiving import message_frames
from msgbus.config import load_config
from msgbus.consume.icinga import IcingaApi, IcingaSink
from msgbus.consume.nagios import DEFAULT_COMMAND_FILE, CommandFile, NameRule, check_result_line
from msgbus.consume.subscription import Subscription
from msgbus.errors import BridgeRefused, SchemaError
from msgbus.schema.body import decode_body
from msgbus.schema.models import ProbeResult
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.failover import connect_first

__all__ = ["nagios_bridge"]


def _skipped(frame: MessageFrame, problem: object) -> None:
    click.echo(f"skipped {frame.headers.get('message-id')}: {problem}", err=True)


def _results(frame: MessageFrame) -> list[ProbeResult]:
    """The probe results of one message; what is not one is reported, not sent."""
    results = []
    for decoded in decode_body(frame.body, frame.headers):
        message = decoded.message
        if isinstance(message, ProbeResult):
            results.append(message)
        else:
            _skipped(frame, decoded.reason if message is None else f"a {type(message).__name__}")
    return results


def _to_command_file(commands: CommandFile, rule: NameRule) -> Callable[[MessageFrame], int]:
    def submit(frame: MessageFrame) -> int:
        lines = []
        for result in _results(frame):
            try:
                lines.append(check_result_line(result, rule))
            except SchemaError as exc:
                _skipped(frame, exc)
        commands.write(lines)
        return len(lines)

    return submit


def _to_icinga(sink: IcingaSink) -> Callable[[MessageFrame], int]:
    def submit(frame: MessageFrame) -> int:
        submitted = 0
        for result in _results(frame):
            try:
                sink.submit(result)
            except (SchemaError, BridgeRefused) as exc:
                _skipped(frame, exc)
                continue
            submitted += 1
        return submitted

    return submit


@click.command("nagios-bridge")
@broker_option()
@config_option
@click.option(
    "--destination", help="Where the probe results are published [default: the config's]."
)
@click.option("--subscription", metavar="NAME", help="Durable subscription name (a topic).")
@click.option(
    "--command-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_COMMAND_FILE,
    show_default=True,
    help="Nagios' external command file (command_file in nagios.cfg).",
)
@click.option("--host", "host", default="{hostName}", show_default=True,
              help="Nagios host name, a template over the result's fields.")  # fmt: skip
@click.option("--service", "service", default="{metricName}", show_default=True,
              help="Nagios service name, a template over the result's fields.")  # fmt: skip
@click.option("--icinga-url", metavar="URL",
              help="Icinga 2 REST API https://HOST:5665, not the command file.")  # fmt: skip
@click.option("--icinga-user", help="Icinga API user (an ApiUser allowed "
              "actions/process-check-result).")  # fmt: skip
@click.option("--icinga-password", help="The API user's password; better in the environment "
              "as MSGBUS_ICINGA__PASSWORD, out of sight of ps.")  # fmt: skip
@click.option("--icinga-ca", type=click.Path(dir_okay=False, path_type=Path),
              help="CA of Icinga's API certificate (/var/lib/icinga2/certs/ca.crt).")  # fmt: skip
@click.option("--icinga-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="Client certificate for Icinga (an ApiUser with client_cn).")  # fmt: skip
@click.option("--icinga-key", type=click.Path(dir_okay=False, path_type=Path),
              help="Private key of --icinga-cert (when not in the same file).")  # fmt: skip
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many check results.")
@click.option("--until", help="Stop after this long (90s, 30m, 2h, 7d).")
def nagios_bridge(
    brokers: tuple[str, ...],
    config_file: Path | None,
    destination: str | None,
    subscription: str | None,
    command_file: Path,
    host: str,
    service: str,
    icinga_url: str | None,
    icinga_user: str | None,
    icinga_password: str | None,
    icinga_ca: Path | None,
    icinga_cert: Path | None,
    icinga_key: Path | None,
    count: int | None,
    until: str | None,
) -> None:
    """Submit each probe result as a passive check result to Nagios' command file (or
    Icinga's compatible command pipe), or to Icinga 2's REST API with --icinga-url
    (or icinga.url in the configuration)."""
    icinga = {"url": icinga_url, "user": icinga_user, "password": icinga_password,
              "ca": icinga_ca, "cert": icinga_cert, "key": icinga_key}  # fmt: skip
    config = load_config(
        config_file, {"connection": {"brokers": list(brokers) or None}, "icinga": icinga}
    )
    rule = NameRule(host, service)
    source = Subscription(destination or config.publisher.destination, subscription)
    stop_at = None if (limit := parse_duration(until)) is None else time.monotonic() + limit
    with contextlib.ExitStack() as stack:
        if config.icinga.url is not None:
            # The retry policy logs Icinga outages (one line per change of error).
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
            sink = IcingaSink(IcingaApi(config.icinga), rule, config.connection, until=stop_at)
            stack.callback(sink.close)
            submit, target = _to_icinga(sink), config.icinga.url
        else:
            commands = stack.enter_context(CommandFile(command_file))
            submit, target = _to_command_file(commands, rule), str(command_file)
        conn = connect_first(config.connection, client_id=source.client_id(None))
        submitted = 0
        try:
            # A small window: what is unacknowledged comes back if the bridge dies.
            source.subscribe(conn, prefetch=10)
            click.echo(f"bridging {source.destination} to {target}", err=True)
            for frame in message_frames(conn, stop_at):
                submitted += submit(frame)
                conn.ack([frame])  # only now: its results are in Nagios' (Icinga's) hands
                if count is not None and submitted >= count:
                    break
            click.echo(f"submitted {submitted} check result(s)", err=True)
        finally:
            conn.disconnect()
