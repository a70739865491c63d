"""``msgbus audit``: did everything arrive? Gaps per producer and stale series."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from msgbus.cli.options import config_option, metrics_textfile_option

if TYPE_CHECKING:
    from msgbus.store.audit import AuditReport

__all__ = ["audit_cmd"]

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _since(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    match = _AGO.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an age (30m, 24h, 7d) nor an ISO time", param_hint="--since"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _expect(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for value in values:
        pattern, _, seconds = value.rpartition("=")
        try:
            out[pattern] = float(seconds)
        except ValueError:
            pattern = ""
        if not pattern or out[pattern] <= 0:
            raise click.BadParameter(
                f"{value!r} must be METRIC_PATTERN=SECONDS, e.g. 'org.nagios.*=300'",
                param_hint="--expect",
            )
    return out


@click.command("audit")
@click.option("--store", "store_url", metavar="URL", help="SQLAlchemy URL (default: store_url).")
@config_option
@click.option("--since", help="Only gaps noticed since: an age (30m, 24h, 7d) or an ISO time.")
@click.option("--site", help="Only this site's producers and series.")
@click.option(
    "--expect",
    multiple=True,
    metavar="PATTERN=SECONDS",
    help="Expected interval of metrics matching PATTERN (else learned from the last two "
    "results); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@metrics_textfile_option
def audit_cmd(
    store_url: str | None,
    config_file: Path | None,
    since: str | None,
    site: str | None,
    expect: tuple[str, ...],
    as_json: bool,
    metrics_textfile: Path | None,
) -> None:
    """Report missing messages (per producer, as number ranges) and stale series.

    Exits 1 when anything is missing or stale, so cron or a Nagios check can run it.
    """
    # Imported here: `msgbus audit --help` does not load the store (SQLAlchemy).
    from msgbus.config import load_config
    from msgbus.store.audit import audit, audit_metrics
    from msgbus.store.database import Store

    now = datetime.now(timezone.utc)
    config = load_config(config_file, {"store_url": store_url})
    store = Store(config.store_url)
    try:
        store.check()
        report = audit(store, now=now, since=_since(since, now), site=site, expect=_expect(expect))
    finally:
        store.close()
    if metrics_textfile is not None:
        audit_metrics(report).write_textfile(metrics_textfile)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print(report, now)
    if not report.complete:
        raise SystemExit(1)


def _print(report: AuditReport, now: datetime) -> None:
    click.echo(
        f"{report.producers} producers, {report.received} numbered messages received, "
        f"{report.missing} missing, {report.skipped} given up by their producers, "
        f"{report.unsequenced} unnumbered"
    )
    for gap in report.gaps:
        ago = (now - gap.detected_at).total_seconds()
        click.echo(
            f"MISSING site={gap.site or '-'} host={gap.host or '-'} producer={gap.producer} "
            f"epoch={gap.epoch} messages {gap.first}-{gap.last} ({gap.count}) "
            f"to {gap.destination or '-'}, noticed {ago:.0f} s ago"
        )
    for series in report.stale:
        click.echo(
            f"STALE site={series.site or '-'} host={series.host or '-'} metric={series.metric} "
            f"silent for {series.silent_for:.0f} s (expected every {series.interval:.0f} s)"
        )
    if report.complete:
        click.echo("nothing missing, nothing stale")
