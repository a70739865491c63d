"""What the status page shows, as JSON-ready dicts, read through msgbus.store.queries.

The VO is not an indexed column: it is read from each stored message (``voName``);
filters apply to the latest-per-(site, metric) cells, so the filter menus can list
every value while the grid shows the selection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from msgbus.schema.models import ProbeResult
from msgbus.store.database import Store
from msgbus.store.queries import ResultRow, latest_results, metric_history

__all__ = ["Cell", "filters", "history", "latest", "probe_cell", "select"]

Cell = dict[str, Any]
"""One grid cell: site, host, metric, status, timestamp (ISO 8601), vo, summary."""


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _cell(
    site: str | None,
    host: str | None,
    metric: str,
    status: str,
    timestamp: datetime,
    message: dict[str, Any],
) -> Cell:
    return {
        "site": site,
        "host": host,
        "metric": metric,
        "status": status,
        "timestamp": _iso(timestamp),
        "vo": message.get("voName"),
        "summary": message.get("summaryData"),
    }


def _row_cell(row: ResultRow) -> Cell:
    try:
        message = json.loads(row.message)
    except ValueError:
        message = {}
    return _cell(row.site, row.host, row.metric, row.status, row.timestamp, message)


def probe_cell(result: ProbeResult) -> Cell:
    """A cell from a message seen live on the broker."""
    return _cell(
        result.siteName,
        result.hostName,
        result.metricName,
        result.metricStatus.value,
        result.timestamp,
        result.model_dump(mode="json"),
    )


def latest(store: Store) -> list[Cell]:
    """The newest result per (site, metric), ordered by site and metric."""
    return [_row_cell(row) for row in latest_results(store)]


def select(
    cells: Iterable[Cell],
    *,
    site: str | None = None,
    vo: str | None = None,
    metric: str | None = None,
) -> list[Cell]:
    """The cells matching every given filter."""
    wanted = {"site": site, "vo": vo, "metric": metric}
    return [c for c in cells if all(v is None or c[k] == v for k, v in wanted.items())]


def history(
    store: Store, site: str, metric: str, *, host: str | None = None, limit: int = 200
) -> list[Cell]:
    """One metric's results at one site, oldest first (at most ``limit`` newest)."""
    rows = metric_history(store, site, metric, host=host, limit=limit)
    return [_row_cell(row) for row in rows]


def filters(cells: Iterable[Cell]) -> dict[str, list[str]]:
    """The distinct sites, VOs and metrics among ``cells``, for the filter menus."""
    out: dict[str, set[str]] = {"sites": set(), "vos": set(), "metrics": set()}
    for cell in cells:
        for key, field in (("sites", "site"), ("vos", "vo"), ("metrics", "metric")):
            if cell[field]:
                out[key].add(cell[field])
    return {key: sorted(values) for key, values in out.items()}
