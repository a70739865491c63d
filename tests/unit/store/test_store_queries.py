"""The dashboard's read API on SQLite."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from msgbus.store.database import Store, StoredMessage
from msgbus.store.queries import latest_results, metric_history
from tests.unit.store.conftest import make_probe


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'q.db'}")
    s.init()
    rows = [
        # (site, metric, minute, status)
        ("A", "m1", 1, "OK"),
        ("A", "m1", 3, "CRITICAL"),
        ("A", "m1", 2, "WARNING"),
        ("A", "m2", 1, "OK"),
        ("B", "m1", 5, "UNKNOWN"),
    ]
    s.write(
        [
            StoredMessage(
                f"id{i}",
                1,
                make_probe(
                    siteName=site,
                    metricName=metric,
                    metricStatus=status,
                    timestamp=f"2026-01-01T00:0{minute}:00Z",
                ),
            )
            for i, (site, metric, minute, status) in enumerate(rows)
        ]
    )
    return s


def _at(minute: int) -> datetime:
    return datetime(2026, 1, 1, 0, minute, tzinfo=timezone.utc)


def test_latest_result_per_site_and_metric(store: Store) -> None:
    latest = latest_results(store)
    assert [(r.site, r.metric, r.status, r.timestamp) for r in latest] == [
        ("A", "m1", "CRITICAL", _at(3)),
        ("A", "m2", "OK", _at(1)),
        ("B", "m1", "UNKNOWN", _at(5)),
    ]
    assert [r.site for r in latest_results(store, site="B")] == ["B"]
    assert '"metricStatus":"CRITICAL"' in latest[0].message


def test_metric_history_is_oldest_first_within_limits(store: Store) -> None:
    history = metric_history(store, "A", "m1")
    assert [r.status for r in history] == ["OK", "WARNING", "CRITICAL"]
    assert [r.status for r in metric_history(store, "A", "m1", limit=2)] == ["WARNING", "CRITICAL"]
    window = metric_history(store, "A", "m1", since=_at(2), until=_at(3))
    assert [r.timestamp for r in window] == [_at(2)]
    assert metric_history(store, "A", "m1", host="other.example.org") == []
