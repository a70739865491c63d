"""What the store can say about completeness: missing messages and silent series.

* **Gaps**: the ledger's missing ranges per producer (``msgbus.store.ledger``), with the
  site and host they speak for and when each was noticed.
* **Stale series**: the latest probe result per (site, host, metric) with its expected
  interval, configured by metric pattern or learned from the last two arrivals; a
  series silent for more than twice its interval is stale.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from msgbus.metrics import MetricsRegistry
from msgbus.schema.models import ProbeResult
from msgbus.store.database import Store
from msgbus.store.tables import ledger_gaps, ledger_producers, ledger_totals, table_for

__all__ = ["AuditReport", "Gap", "StaleSeries", "audit", "audit_metrics"]

STALE_FACTOR = 2.0
"""A series is stale when silent for more than this many expected intervals."""


@dataclass(frozen=True, slots=True)
class Gap:
    producer: str
    epoch: int
    site: str | None
    host: str | None
    destination: str | None
    first: int
    last: int
    detected_at: datetime

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class StaleSeries:
    site: str | None
    host: str | None
    metric: str
    last_at: datetime
    interval: float
    """Expected seconds between results (configured, or learned)."""
    silent_for: float


@dataclass(slots=True)
class AuditReport:
    producers: int = 0
    received: int = 0
    missing: int = 0
    skipped: int = 0
    unsequenced: int = 0
    gaps: list[Gap] = field(default_factory=list)
    stale: list[StaleSeries] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.gaps and not self.stale

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for gap in out["gaps"]:
            gap["detected_at"] = gap["detected_at"].isoformat()
        for series in out["stale"]:
            series["last_at"] = series["last_at"].isoformat()
        return out


def audit(
    store: Store,
    *,
    now: datetime,
    since: datetime | None = None,
    site: str | None = None,
    expect: Mapping[str, float] | None = None,
) -> AuditReport:
    """Gaps noticed since ``since`` and series stale now, for one ``site`` or all."""
    report = AuditReport()
    with store.errors("auditing the store"), store.engine.connect() as conn:
        _producers(conn, report, site)
        _gaps(conn, report, since, site)
        report.stale = _stale(conn, now, since or now - timedelta(days=7), site, expect or {})
    return report


def _producers(conn: sa.Connection, report: AuditReport, site: str | None) -> None:
    p = ledger_producers
    query = sa.select(
        sa.func.count(),
        sa.func.sum(p.c.received),
        sa.func.sum(p.c.missing),
        sa.func.sum(p.c.skipped),
    )
    if site is not None:
        query = query.where(p.c.site == site)
    count, received, missing, skipped = conn.execute(query).one()
    report.producers, report.received = count, int(received or 0)
    report.missing, report.skipped = int(missing or 0), int(skipped or 0)
    unsequenced = conn.execute(sa.select(ledger_totals.c.unsequenced)).scalar()
    report.unsequenced = int(unsequenced or 0)


def _gaps(
    conn: sa.Connection, report: AuditReport, since: datetime | None, site: str | None
) -> None:
    g, p = ledger_gaps, ledger_producers
    query = (
        sa.select(g, p.c.site, p.c.host, p.c.destination)
        .join(p, sa.and_(g.c.producer == p.c.producer, g.c.epoch == p.c.epoch))
        .order_by(p.c.site, g.c.producer, g.c.epoch, g.c.first)
    )
    if since is not None:
        query = query.where(g.c.detected_at >= since)
    if site is not None:
        query = query.where(p.c.site == site)
    report.gaps = [
        Gap(r.producer, r.epoch, r.site, r.host, r.destination, r.first, r.last, r.detected_at)
        for r in conn.execute(query)
    ]


def _stale(
    conn: sa.Connection,
    now: datetime,
    since: datetime,
    site: str | None,
    expect: Mapping[str, float],
) -> list[StaleSeries]:
    t = table_for(ProbeResult.message_class)
    rank = (
        sa.func.row_number()
        .over(partition_by=(t.c.site, t.c.host, t.c.metric), order_by=t.c.timestamp.desc())
        .label("rank")
    )
    recent = sa.select(t.c.site, t.c.host, t.c.metric, t.c.timestamp, rank).where(
        t.c.timestamp >= since
    )
    if site is not None:
        recent = recent.where(t.c.site == site)
    inner = recent.subquery()
    rows = conn.execute(
        sa.select(inner.c.site, inner.c.host, inner.c.metric, inner.c.timestamp)
        .where(inner.c.rank <= 2)
        .order_by(inner.c.site, inner.c.host, inner.c.metric, inner.c.timestamp.desc())
    ).all()
    latest: dict[tuple[str | None, str | None, str], list[datetime]] = {}
    for row in rows:
        latest.setdefault((row.site, row.host, row.metric), []).append(row.timestamp)
    out = []
    for (s, host, metric), times in latest.items():
        interval = _expected(metric, times, expect)
        silent = (now - times[0]).total_seconds()
        if interval and silent > STALE_FACTOR * interval:
            out.append(StaleSeries(s, host, metric, times[0], interval, silent))
    return out


def _expected(metric: str, times: list[datetime], expect: Mapping[str, float]) -> float | None:
    for pattern, seconds in expect.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return seconds
    if len(times) == 2 and times[0] > times[1]:
        return (times[0] - times[1]).total_seconds()
    return None  # one result: nothing to learn an interval from


def audit_metrics(report: AuditReport) -> MetricsRegistry:
    """The report as gauges (prefix ``msgbus_audit``), per site, for Prometheus alerts."""
    registry = MetricsRegistry("msgbus_audit")
    missing = registry.gauge("missing_messages", "Messages missing by the ledger", ("site",))
    stale = registry.gauge(
        "stale_series", "Probe series silent beyond twice their interval", ("site",)
    )
    for gap in report.gaps:
        missing.labels(gap.site or "").inc(gap.count)
    for series in report.stale:
        stale.labels(series.site or "").inc()
    registry.gauge("unsequenced_messages", "Messages from clients that do not number them").set(
        report.unsequenced
    )
    registry.gauge("producers", "Producers known to the ledger").set(report.producers)
    return registry
