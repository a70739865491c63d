"""``msgbus watch``: L&B-style notifications: the events of one job, owner, VO or selector.

A watch is a subscription with a JMS selector built from the options (the publisher puts
``jobId``, ``owner``, ``state``, ``voName``, ``siteName`` and ``hostName`` of each job
event in its headers). ``--durable NAME`` registers it with the broker, so events that
arrive while the watcher is away wait for it; ``--until`` ends it (and removes a durable
registration, so none is left behind).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from msgbus.cli.options import broker_option, config_option, parse_duration
from msgbus.config import load_config
from msgbus.consume.subscription import Subscription, broker_kind, message_frames
from msgbus.errors import ConfigError
from msgbus.schema.body import decode_body
from msgbus.transport.failover import connect_first

__all__ = ["watch"]


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def selector_for(
    job: str | None, owner: str | None, vo: str | None, site: str | None, extra: str | None
) -> str | None:
    """The selector the options describe (each given one must hold)."""
    clauses = [
        f"{header} = {_quoted(value)}"
        for header, value in (("jobId", job), ("owner", owner), ("voName", vo), ("siteName", site))
        if value is not None
    ]
    if extra:
        clauses.append(f"({extra})")
    return " AND ".join(clauses) or None


@click.command()
@broker_option()
@config_option
@click.option("--destination", help="Where the events are published [default: the config's].")
@click.option("--job", help="Only this job's events (its jobId).")
@click.option("--owner", help="Only the jobs of this owner (certificate DN).")
@click.option("--vo", help="Only this VO's events.")
@click.option("--site", help="Only this site's events.")
@click.option("--selector", "extra", metavar="SQL", help="Any other JMS selector, ANDed.")
@click.option("--until", help="Stop after this long (90s, 30m, 2h, 7d).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option("--durable", metavar="NAME", help="Keep the registration while away.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def watch(
    brokers: tuple[str, ...],
    config_file: Path | None,
    destination: str | None,
    job: str | None,
    owner: str | None,
    vo: str | None,
    site: str | None,
    extra: str | None,
    until: str | None,
    count: int | None,
    durable: str | None,
    as_json: bool,
) -> None:
    """Print the matching events as they arrive (the state changes of a job, say)."""
    config = load_config(config_file, {"connection": {"brokers": list(brokers) or None}})
    selector = selector_for(job, owner, vo, site, extra)
    if selector is None and durable is None:
        raise ConfigError(
            "watch what? give --job, --owner, --vo, --site or --selector (or --durable "
            "to follow everything on the destination)"
        )
    subscription = Subscription(
        destination or config.publisher.destination, durable, selector=selector
    )
    stop_at = None if (limit := parse_duration(until)) is None else time.monotonic() + limit
    conn = connect_first(config.connection, client_id=subscription.client_id(None))
    seen = 0
    try:
        subscription.subscribe(conn, prefetch=100, ack="auto")
        kind = broker_kind(conn.server)
        click.echo(f"watching {subscription.destination} ({selector or 'everything'})", err=True)
        for frame in message_frames(conn, stop_at):
            for decoded in decode_body(frame.body, frame.headers):
                if decoded.message is not None:
                    seen += 1
                    _show(decoded.message.model_dump(mode="json"), as_json)
            if count is not None and seen >= count:
                break
        if durable is not None and stop_at is not None and time.monotonic() >= stop_at:
            subscription.remove(conn, subscribed=True)  # expired: leave no registration
            click.echo(f"watch {durable} expired and was removed ({kind})", err=True)
    finally:
        conn.disconnect()


def _show(event: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(event, sort_keys=True))
        return
    change = f"{event.get('previousState') or '?'} -> {event.get('state')}"
    where = event.get("siteName") or event.get("hostName") or "-"
    if "jobId" not in event:  # not a job event: its key fields
        change = str(event.get("metricStatus") or event.get("status") or "")
    click.echo(f"{event.get('timestamp')}  {event.get('jobId', '')}  {change}  {where}")
