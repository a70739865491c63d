"""A running dashboard over a seeded SQLite store, and an embedded broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from msgbus.broker import BrokerConfig, BrokerThread
from msgbus.dashboard.server import Dashboard
from msgbus.store import Store
from tests.unit.dashboard.results import seeded_store


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    store = seeded_store(sqlite_url)
    yield store
    store.close()


@pytest.fixture
def dashboard(store: Store) -> Iterator[Dashboard]:
    """Polls the store every 0.1 s for live updates."""
    server = Dashboard(store, port=0, poll_interval=0.1)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def embedded_broker() -> Iterator[BrokerThread]:
    with BrokerThread(BrokerConfig(port=0)) as broker:
        yield broker
