"""Consumer behaviour that needs no broker: control calls, start-up failures, prefetch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from msgbus.config import MsgbusConfig, load_config
from msgbus.consume.consumer import Consumer, prefetch_for
from msgbus.errors import ConfigError, ConnectError, StoreError
from msgbus.store.database import Store


def _config(store_url: str, **consumer: object) -> MsgbusConfig:
    return load_config(
        None,
        {
            # Port 1 on loopback refuses at once: no broker, no network.
            "connection": {"brokers": ["stomp://127.0.0.1:1"], "connect_timeout": 2},
            "consumer": {"destination": "/queue/q", **consumer},
            "store_url": store_url,
        },
    )


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    Store(url).init()
    return url


def test_prefetch_is_four_batches_but_never_activemqs_magic_1000() -> None:
    assert prefetch_for(100) == 400
    assert prefetch_for(250) == 1001
    assert prefetch_for(1) == 4


def test_control_calls_before_running(store_url: str) -> None:
    consumer = Consumer(_config(store_url))
    assert consumer.stats()["state"] == "new"
    assert consumer.pause(timeout=0.1) is True
    assert consumer.metrics.paused._value.get() == 1
    consumer.resume()
    assert consumer.metrics.paused._value.get() == 0
    stats = consumer.stats()
    assert {
        "received",
        "stored",
        "duplicates",
        "dead_lettered",
        "acked",
        "in_flight",
        "broker",
        "last_commit",
        "last_lag_seconds",
    } <= set(stats)
    assert stats["broker"] is None and stats["durable"] is False


def test_first_connection_failure_is_raised_and_threads_end(store_url: str) -> None:
    before = threading.active_count()
    consumer = Consumer(_config(store_url))
    with pytest.raises(ConnectError, match="no broker could be reached"):
        consumer.run()
    assert threading.active_count() == before
    assert consumer.stats()["state"] == "stopped"


def test_missing_tables_stop_before_connecting(tmp_path: Path) -> None:
    consumer = Consumer(_config(f"sqlite:///{tmp_path / 'empty.db'}"))
    with pytest.raises(StoreError, match="msgbus db init"):
        consumer.run()


def test_an_allowlist_needs_a_ca(store_url: str) -> None:
    with pytest.raises(ConfigError, match="signer_ca"):
        Consumer(_config(store_url, allowed_signers=["/CN=probe"]))
