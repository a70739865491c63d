"""The status page in headless Chromium: the grid's content, its colours, live updates."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from msgbus.dashboard.server import Dashboard
from msgbus.store import Store
from tests.fixtures.results import probe, write
from tests.integration.dashboard.browser import COLOURS, Chromium, chromium_or_skip, grid, read_png

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium(tmp_path: Path) -> Chromium:
    return chromium_or_skip(tmp_path)


def test_grid_shows_the_latest_states(chromium: Chromium, dashboard: Dashboard) -> None:
    cells = grid(chromium.dump_dom(dashboard.url)).cells
    assert cells == {
        ("SITE-A", "org.sam.CE-JobSubmit"): "CRITICAL",
        ("SITE-A", "org.sam.SRM-Put"): "WARNING",
        ("SITE-B", "org.sam.CE-JobSubmit"): "OK",
        ("SITE-B", "org.sam.SRM-Put"): "UNKNOWN",
    }


def test_screenshot_has_each_state_in_its_colour_and_place(
    chromium: Chromium, dashboard: Dashboard, tmp_path: Path
) -> None:
    image = read_png(chromium.screenshot(dashboard.url, tmp_path / "grid.png"))
    boxes = image.boxes(COLOURS)
    for status, (pixels, _, _) in boxes.items():
        # A cell is about 110x34 px; its text covers part of it.
        assert pixels > 1500, f"{status}: only {pixels} pixels of its colour"
    # Rows are sites (A above B), columns metrics (CE-JobSubmit left of SRM-Put).
    _, x_crit, y_crit = boxes["CRITICAL"]
    _, x_warn, y_warn = boxes["WARNING"]
    _, x_ok, y_ok = boxes["OK"]
    _, x_unk, y_unk = boxes["UNKNOWN"]
    assert abs(y_crit - y_warn) < 5 and abs(y_ok - y_unk) < 5
    assert y_crit < y_ok
    assert x_crit < x_warn and x_ok < x_unk
    assert abs(x_crit - x_ok) < 5


def test_filters_from_the_url(chromium: Chromium, dashboard: Dashboard) -> None:
    assert grid(chromium.dump_dom(dashboard.url + "?vo=atlas")).cells == {
        ("SITE-A", "org.sam.SRM-Put"): "WARNING"
    }
    assert grid(chromium.dump_dom(dashboard.url + "?site=SITE-B")).order == [
        ("SITE-B", "org.sam.CE-JobSubmit"),
        ("SITE-B", "org.sam.SRM-Put"),
    ]


class HistoryRows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[str] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id") == "history":
            self.inside = "hidden" not in a
        elif tag == "tr" and self.inside and a.get("data-status"):
            self.statuses.append(a["data-status"] or "")


def test_history_view_of_one_metric(chromium: Chromium, dashboard: Dashboard) -> None:
    dom = chromium.dump_dom(dashboard.url + "?site=SITE-A&metric=org.sam.CE-JobSubmit")
    rows = HistoryRows()
    rows.feed(dom)
    assert rows.statuses == ["CRITICAL", "OK"]  # newest first
    assert "History of org.sam.CE-JobSubmit at SITE-A" in dom


def test_live_update_reaches_the_open_page(
    chromium: Chromium, dashboard: Dashboard, store: Store
) -> None:
    with chromium.page(dashboard.url) as page:
        page.wait_title(lambda t: t == "msgbus: 1 CRITICAL, 1 WARNING, 1 UNKNOWN, 1 OK", 30)
        deadline = time.monotonic() + 30
        while dashboard.hub.clients == 0:  # the page's event stream is open
            assert time.monotonic() < deadline, "the page never opened its event stream"
            time.sleep(0.1)
        write(store, probe("SITE-B", "org.sam.CE-JobSubmit", "CRITICAL", "2026-03-01T13:00:00Z"))
        page.wait_title(lambda t: t == "msgbus: 2 CRITICAL, 1 WARNING, 1 UNKNOWN", 30)
