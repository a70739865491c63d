"""The dashboard's page, JSON API and server-sent events over real HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from msgbus.broker import BrokerThread
from msgbus.config import ConnectionConfig
from msgbus.dashboard.live import BrokerFeed, Hub
from msgbus.dashboard.server import Dashboard
from msgbus.schema import encode_body
from msgbus.store import Store
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.pipeline import EmbeddedBroker, wait_until
from tests.fixtures.results import probe, write


def _get(dashboard: Dashboard, path: str) -> tuple[int, Any]:
    try:
        with urlopen(dashboard.url.rstrip("/") + path, timeout=10) as response:
            body = response.read()
            status = response.status
    except HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, json.loads(body) if path.startswith("/api/") else body.decode()


class EventStream:
    """Reads ``/api/events`` on a thread, collecting the cells."""

    def __init__(self, dashboard: Dashboard) -> None:
        parts = urlsplit(dashboard.url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.conn.request("GET", "/api/events")
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type") == "text/event-stream"
        self.cells: list[dict[str, Any]] = []
        self.lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    with self.lock:
                        self.cells.append(json.loads(line[6:]))
                        self.lock.notify_all()
        except (OSError, ValueError):
            return  # closed by the test

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        with self.lock:
            self.lock.wait_for(lambda: len(self.cells) >= count, timeout)
            return list(self.cells)

    def close(self) -> None:
        self.conn.close()


def _wait_clients(hub: Hub, n: int) -> None:
    deadline = time.monotonic() + 10
    while hub.clients < n:
        assert time.monotonic() < deadline, "the event stream never subscribed"
        time.sleep(0.02)


def test_page_carries_the_current_results(dashboard: Dashboard) -> None:
    status, page = _get(dashboard, "/")
    assert status == 200
    start = page.index('<script id="initial" type="application/json">') + len(
        '<script id="initial" type="application/json">'
    )
    initial = json.loads(page[start : page.index("</script>", start)])
    assert {(c["site"], c["metric"], c["status"]) for c in initial["cells"]} == {
        ("SITE-A", "org.sam.CE-JobSubmit", "CRITICAL"),
        ("SITE-A", "org.sam.SRM-Put", "WARNING"),
        ("SITE-B", "org.sam.CE-JobSubmit", "OK"),
        ("SITE-B", "org.sam.SRM-Put", "UNKNOWN"),
    }


def test_page_cannot_be_broken_out_of_by_a_message(dashboard: Dashboard, store: Store) -> None:
    evil = "</script><script>document.title='owned'</script>"
    write(store, probe("SITE-C", "m", "OK", "2026-03-01T12:00:00Z", summaryData=evil))
    _, page = _get(dashboard, "/")
    assert evil not in page
    assert "<\\/script><script>document.title='owned'<\\/script>" in page


def test_latest_filters_and_menus(dashboard: Dashboard) -> None:
    status, data = _get(dashboard, "/api/latest?vo=atlas")
    assert status == 200
    assert [(c["site"], c["metric"]) for c in data["cells"]] == [("SITE-A", "org.sam.SRM-Put")]
    assert data["filters"]["vos"] == ["atlas", "ops"]
    _, data = _get(dashboard, "/api/latest?site=SITE-B&metric=org.sam.SRM-Put")
    assert [c["status"] for c in data["cells"]] == ["UNKNOWN"]


def test_history_and_bad_requests(dashboard: Dashboard) -> None:
    status, data = _get(dashboard, "/api/history?site=SITE-A&metric=org.sam.CE-JobSubmit")
    assert status == 200
    assert [c["status"] for c in data["cells"]] == ["OK", "CRITICAL"]
    assert _get(dashboard, "/api/history?site=SITE-A")[0] == 400
    assert _get(dashboard, "/api/history?site=A&metric=m&limit=x")[0] == 400
    assert _get(dashboard, "/api/history?site=A&metric=m&limit=0")[0] == 400
    status, data = _get(dashboard, "/api/nothing")
    assert status == 404 and "no such page" in data["error"]


def test_store_without_tables_is_503_with_the_reason(sqlite_url: str) -> None:
    server = Dashboard(Store(sqlite_url), port=0, poll_interval=60)
    server.start()
    try:
        status, data = _get(server, "/api/latest")
    finally:
        server.stop()
    assert status == 503
    assert "no such table: probe_results" in data["error"]
    assert "msgbus db init" in data["error"]


def test_events_push_results_as_the_store_receives_them(dashboard: Dashboard, store: Store) -> None:
    stream = EventStream(dashboard)
    try:
        _wait_clients(dashboard.hub, 1)
        time.sleep(0.3)  # let the poller take its first look at the store
        write(store, probe("SITE-B", "org.sam.CE-JobSubmit", "CRITICAL", "2026-03-01T13:00:00Z"))
        cells = stream.wait_for(1)
    finally:
        stream.close()
    assert [(c["site"], c["metric"], c["status"]) for c in cells] == [
        ("SITE-B", "org.sam.CE-JobSubmit", "CRITICAL")
    ]


TOPIC = "/topic/grid.probe.test.dashboard"


@contextlib.contextmanager
def _live_page(
    store: Store, settings: ConnectionConfig
) -> Iterator[tuple[BrokerFeed, EventStream]]:
    """A dashboard fed from ``TOPIC`` and a page following its events, both connected."""
    feed = BrokerFeed(settings, TOPIC, Hub())
    server = Dashboard(store, port=0, feed=feed)
    server.start()
    stream = EventStream(server)
    try:
        assert feed.connected.wait(10)
        _wait_clients(server.hub, 1)
        yield feed, stream
    finally:
        stream.close()
        server.stop()


def _send(settings: ConnectionConfig, *bodies: tuple[bytes, dict[str, str]]) -> None:
    with Connection(settings.brokers[0], settings) as conn:
        for n, (body, headers) in enumerate(bodies):
            conn.send(TOPIC, body, headers, receipt=f"sent-{n}")
            conn.wait_for_receipt(f"sent-{n}", 10)


def test_events_from_the_broker_topic(store: Store, embedded_broker: BrokerThread) -> None:
    settings = ConnectionConfig(brokers=[BrokerURL.model_validate(embedded_broker.url)])
    with _live_page(store, settings) as (_, stream):
        results = [
            probe("SITE-X", "org.sam.CE-JobSubmit", "WARNING", "2026-03-01T14:00:00Z"),
            probe("SITE-X", "org.sam.SRM-Put", "OK", "2026-03-01T14:00:00Z"),
        ]
        _send(settings, encode_body(results), (b"not a probe result", {}))
        cells = stream.wait_for(2)
    assert [(c["site"], c["metric"], c["status"]) for c in cells] == [
        ("SITE-X", "org.sam.CE-JobSubmit", "WARNING"),
        ("SITE-X", "org.sam.SRM-Put", "OK"),
    ]


def test_the_broker_feed_outlives_a_broker_kill(
    store: Store, embedded_broker_process: Callable[..., EmbeddedBroker]
) -> None:
    """kill -9 of the broker under a live page: the feed's link reconnects by itself and
    what is published after the restart reaches the page."""
    broker = embedded_broker_process()
    settings = ConnectionConfig(
        brokers=[BrokerURL.model_validate(broker.stomp_url)],
        reconnect_initial_delay=0.2,
        reconnect_max_delay=1.0,
    )
    with _live_page(store, settings) as (feed, stream):
        broker.kill()
        wait_until(lambda: not feed.connected.is_set(), 10, "the feed to notice")
        broker.start()
        assert feed.connected.wait(10)
        critical = probe("SITE-Y", "org.sam.CE-JobSubmit", "CRITICAL", "2026-03-01T15:00:00Z")
        _send(settings, encode_body([critical]))
        cells = stream.wait_for(1)
    assert [(c["site"], c["status"]) for c in cells] == [("SITE-Y", "CRITICAL")]


@pytest.mark.parametrize("path", ["/", "/index.html"])
def test_page_is_html(dashboard: Dashboard, path: str) -> None:
    status, page = _get(dashboard, path)
    assert status == 200 and page.startswith("<!DOCTYPE html>")


def test_requests_and_streams_are_counted(dashboard: Dashboard) -> None:
    _get(dashboard, "/api/latest")
    _get(dashboard, "/api/history?site=SITE-A")
    _get(dashboard, "/")
    stream = EventStream(dashboard)
    try:
        _wait_clients(dashboard.hub, 1)
        registry = dashboard.metrics.registry.registry
        value = registry.get_sample_value
        assert (
            value("msgbus_dashboard_http_requests_total", {"route": "latest", "code": "200"}) == 1
        )
        assert (
            value("msgbus_dashboard_http_requests_total", {"route": "history", "code": "400"}) == 1
        )
        assert value("msgbus_dashboard_http_requests_total", {"route": "page", "code": "200"}) == 1
        assert value("msgbus_dashboard_event_streams") == 1
    finally:
        stream.close()
