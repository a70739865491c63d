"""A running dashboard over a seeded SQLite store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from msgbus.dashboard.server import Dashboard
from msgbus.store import Store
from tests.fixtures.results import seeded_store


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
