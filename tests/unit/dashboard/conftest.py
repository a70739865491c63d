"""A small store of probe results for the dashboard tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from msgbus.schema import ProbeResult
from msgbus.store import Store
from tests.fixtures.results import probe, seeded_store


@pytest.fixture
def make_probe() -> Callable[..., ProbeResult]:
    return probe


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    store = seeded_store(sqlite_url)
    yield store
    store.close()
