"""The dashboard's reads: latest cells, filters, history; cells from live messages."""

from __future__ import annotations

from collections.abc import Callable

from msgbus.dashboard.data import filters, history, latest, probe_cell, select
from msgbus.schema import ProbeResult
from msgbus.store import Store


def test_latest_has_the_newest_result_per_site_and_metric(store: Store) -> None:
    cells = latest(store)
    grid = {(c["site"], c["metric"]): c["status"] for c in cells}
    assert grid == {
        ("SITE-A", "org.sam.CE-JobSubmit"): "CRITICAL",
        ("SITE-A", "org.sam.SRM-Put"): "WARNING",
        ("SITE-B", "org.sam.CE-JobSubmit"): "OK",
        ("SITE-B", "org.sam.SRM-Put"): "UNKNOWN",
    }
    first = cells[0]
    assert first["timestamp"] == "2026-03-01T12:10:00Z"
    assert first["vo"] == "ops"
    assert first["host"] == "ce.site-a.example.org"
    assert first["summary"] == "CRITICAL - org.sam.CE-JobSubmit"


def test_select_combines_filters(store: Store) -> None:
    cells = latest(store)
    assert len(select(cells)) == 4
    assert {c["metric"] for c in select(cells, site="SITE-A")} == {
        "org.sam.CE-JobSubmit",
        "org.sam.SRM-Put",
    }
    atlas = select(cells, vo="atlas")
    assert [(c["site"], c["metric"]) for c in atlas] == [("SITE-A", "org.sam.SRM-Put")]
    assert select(cells, site="SITE-B", vo="atlas") == []
    assert len(select(cells, metric="org.sam.SRM-Put")) == 2


def test_filters_list_every_value(store: Store) -> None:
    assert filters(latest(store)) == {
        "sites": ["SITE-A", "SITE-B"],
        "vos": ["atlas", "ops"],
        "metrics": ["org.sam.CE-JobSubmit", "org.sam.SRM-Put"],
    }


def test_history_is_oldest_first_and_limited(store: Store) -> None:
    cells = history(store, "SITE-A", "org.sam.CE-JobSubmit")
    assert [c["status"] for c in cells] == ["OK", "CRITICAL"]
    assert [c["status"] for c in history(store, "SITE-A", "org.sam.CE-JobSubmit", limit=1)] == [
        "CRITICAL"
    ]
    assert history(store, "SITE-A", "no.such.metric") == []


def test_live_cell_has_the_same_shape_as_a_stored_one(
    store: Store, make_probe: Callable[..., ProbeResult]
) -> None:
    live = probe_cell(
        make_probe("SITE-A", "org.sam.CE-JobSubmit", "CRITICAL", "2026-03-01T12:10:00Z")
    )
    stored = next(c for c in latest(store) if c["site"] == "SITE-A" and c["status"] == "CRITICAL")
    assert live == stored
