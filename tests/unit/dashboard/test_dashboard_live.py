"""Fan-out of live cells and the store poller (no broker)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import pytest

from msgbus.config import ConnectionConfig
from msgbus.dashboard.data import Cell
from msgbus.dashboard.live import BrokerFeed, Hub, StorePoller
from msgbus.errors import ConfigError, StoreError


def _cell(metric: str, status: str) -> Cell:
    return {"site": "S", "host": "h", "metric": metric, "status": status,
            "timestamp": "2026-03-01T12:00:00Z", "vo": None, "summary": None}  # fmt: skip


def test_hub_gives_every_client_every_cell_and_forgets_the_gone() -> None:
    hub = Hub()
    a, b = hub.subscribe(), hub.subscribe()
    hub.publish(_cell("m", "OK"))
    assert a.get_nowait() == b.get_nowait() == _cell("m", "OK")
    hub.unsubscribe(a)
    hub.publish(_cell("m", "CRITICAL"))
    assert a.empty()
    assert b.get_nowait()["status"] == "CRITICAL"


def test_a_client_that_stops_reading_does_not_block_the_hub() -> None:
    hub = Hub()
    stuck = hub.subscribe()
    for i in range(stuck.maxsize + 10):
        hub.publish(_cell(f"m{i}", "OK"))
    assert stuck.qsize() == stuck.maxsize


def _polled(read: Callable[[], list[Cell]], done: threading.Event) -> queue.Queue[Cell]:
    """Run a StorePoller over ``read`` until ``done``; the hub client it published to."""
    hub = Hub()
    client = hub.subscribe()
    poller = StorePoller(read, hub, interval=0.01)
    poller.start()
    assert done.wait(5)
    poller.stop()
    return client


def test_poller_pushes_only_changes_after_the_first_read() -> None:
    reads = [
        [_cell("m1", "OK"), _cell("m2", "OK")],
        [_cell("m1", "OK"), _cell("m2", "CRITICAL")],
        [_cell("m1", "OK"), _cell("m2", "CRITICAL"), _cell("m3", "WARNING")],
    ]
    done = threading.Event()

    def read() -> list[Cell]:
        if len(reads) == 1:
            done.set()
            return reads[0]
        return reads.pop(0)

    client = _polled(read, done)
    got = []
    while True:
        try:
            got.append(client.get_nowait())
        except queue.Empty:
            break
    assert [(c["metric"], c["status"]) for c in got] == [("m2", "CRITICAL"), ("m3", "WARNING")]


def test_poller_survives_a_store_outage() -> None:
    calls = []
    done = threading.Event()

    def read() -> list[Cell]:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("database down")
        done.set()
        return [_cell("m", "OK")]

    client = _polled(read, done)
    assert client.get_nowait()["status"] == "OK"


def test_broker_feed_refuses_a_queue() -> None:
    with pytest.raises(ConfigError, match="steal the consumer's messages"):
        BrokerFeed(ConnectionConfig(), "/queue/probes", Hub())


def test_broker_feed_shows_only_what_the_consumer_would_store() -> None:
    from msgbus.schema import encode_body
    from msgbus.security import SignatureError
    from msgbus.stomp.frames import MessageFrame
    from tests.fixtures.results import probe

    def verify(body: bytes) -> tuple[bytes, str]:
        if not body.startswith(b"SIGNED\n"):
            raise SignatureError("not signed by an allowed DN")
        return body.removeprefix(b"SIGNED\n"), "/CN=probe"

    hub = Hub()
    client = hub.subscribe()
    feed = BrokerFeed(ConnectionConfig(), "/topic/probes", hub, verify=verify)
    body, headers = encode_body(probe("S", "m", "WARNING", "2026-03-01T12:00:00Z"))
    frame_headers = {**headers, "message-id": "1", "destination": "/topic/probes"}
    feed._push(MessageFrame(frame_headers, body))
    assert client.empty()
    feed._push(MessageFrame({**frame_headers, "message-id": "2"}, b"SIGNED\n" + body))
    assert client.get_nowait()["status"] == "WARNING"
    feed._push(MessageFrame({**frame_headers, "message-id": "3"}, b"SIGNED\nnonsense"))
    assert client.empty()
