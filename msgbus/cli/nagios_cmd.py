"""``msgbus nagios-bridge``: probe results from the bus as Nagios passive check results.

At least once: a message is acknowledged only after its command lines are in Nagios'
command file, so a bridge that dies in between gets it again (Nagios takes a repeated
passive result as one more check of the same state).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from msgbus.cli.options import broker_option, config_option, parse_duration
from msgbus.cli.receiving import message_frames
from msgbus.config import load_config
from msgbus.consume.nagios import DEFAULT_COMMAND_FILE, CommandFile, NameRule, check_result_line
from msgbus.consume.subscription import Subscription
from msgbus.errors import SchemaError
from msgbus.schema.body import decode_body
from msgbus.schema.models import ProbeResult
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.failover import connect_first

__all__ = ["nagios_bridge"]


def _lines(frame: MessageFrame, rule: NameRule) -> list[str]:
    """The command lines of one message; what cannot become one is reported, not sent."""
    lines = []
    for decoded in decode_body(frame.body, frame.headers):
        message = decoded.message
        if not isinstance(message, ProbeResult):
            problem = decoded.reason if message is None else f"a {type(message).__name__}"
            click.echo(f"skipped {frame.headers.get('message-id')}: {problem}", err=True)
            continue
        try:
            lines.append(check_result_line(message, rule))
        except SchemaError as exc:
            click.echo(f"skipped {frame.headers.get('message-id')}: {exc}", err=True)
    return lines


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
    count: int | None,
    until: str | None,
) -> None:
    """Submit each probe result as a passive check result to Nagios (or Icinga's
    compatible command pipe)."""
    config = load_config(config_file, {"connection": {"brokers": list(brokers) or None}})
    rule = NameRule(host, service)
    source = Subscription(destination or config.publisher.destination, subscription)
    stop_at = None if (limit := parse_duration(until)) is None else time.monotonic() + limit
    with CommandFile(command_file) as commands:
        conn = connect_first(config.connection, client_id=source.client_id(None))
        submitted = 0
        try:
            # A small window: what is unacknowledged comes back if the bridge dies.
            source.subscribe(conn, prefetch=10)
            click.echo(f"bridging {source.destination} to {command_file}", err=True)
            for frame in message_frames(conn, stop_at):
                lines = _lines(frame, rule)
                commands.write(lines)
                conn.ack([frame])  # only now: the lines are in Nagios' hands
                submitted += len(lines)
                if count is not None and submitted >= count:
                    break
            click.echo(f"submitted {submitted} check result(s)", err=True)
        finally:
            conn.disconnect()
