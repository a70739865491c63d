"""Read API for dashboards and reports: latest result per site and metric, a metric's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from msgbus.schema.models import ProbeResult
from msgbus.store.database import Store
from msgbus.store.tables import table_for

__all__ = ["ResultRow", "latest_results", "metric_history", "status_counts"]

_PROBES = table_for(ProbeResult.message_class)
_COLUMNS = (
    _PROBES.c.site,
    _PROBES.c.host,
    _PROBES.c.metric,
    _PROBES.c.status,
    _PROBES.c.timestamp,
    _PROBES.c.message,
)


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One stored probe result; ``message`` is the whole message as JSON."""

    site: str | None
    host: str | None
    metric: str
    status: str
    timestamp: datetime
    message: str


def _rows(store: Store, query: sa.Select[Any]) -> list[ResultRow]:
    with store.errors("reading results"), store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [ResultRow(*row) for row in rows]


def latest_results(store: Store, *, site: str | None = None) -> list[ResultRow]:
    """The newest result of each (site, metric), optionally of one site; ordered by both."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(_PROBES.c.site, _PROBES.c.metric),
            order_by=(_PROBES.c.timestamp.desc(), _PROBES.c.id.desc()),
        )
        .label("rank")
    )
    inner = sa.select(*_COLUMNS, rank)
    if site is not None:
        inner = inner.where(_PROBES.c.site == site)
    ranked = inner.subquery()
    query = (
        sa.select(*(ranked.c[c.name] for c in _COLUMNS))
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.site, ranked.c.metric)
    )
    return _rows(store, query)


def metric_history(
    store: Store,
    site: str,
    metric: str,
    *,
    host: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[ResultRow]:
    """Results of one metric at one site (optionally one host), oldest first, at most
    ``limit`` of the newest in the [since, until) window."""
    query = sa.select(*_COLUMNS).where(_PROBES.c.site == site, _PROBES.c.metric == metric)
    if host is not None:
        query = query.where(_PROBES.c.host == host)
    if since is not None:
        query = query.where(_PROBES.c.timestamp >= since)
    if until is not None:
        query = query.where(_PROBES.c.timestamp < until)
    newest = query.order_by(_PROBES.c.timestamp.desc(), _PROBES.c.id.desc()).limit(limit).subquery()
    ordered = sa.select(*(newest.c[c.name] for c in _COLUMNS)).order_by(newest.c.timestamp)
    return _rows(store, ordered)


def status_counts(store: Store) -> dict[str, dict[str, int]]:
    """How many results each site has in each status: ``{site: {status: n}}``."""
    query = sa.select(_PROBES.c.site, _PROBES.c.status, sa.func.count()).group_by(
        _PROBES.c.site, _PROBES.c.status
    )
    counts: dict[str, dict[str, int]] = {}
    with store.errors("counting results"), store.engine.connect() as conn:
        for site, status, n in conn.execute(query):
            counts.setdefault(site or "", {})[status] = int(n)
    return counts
