"""Shared fixtures: real brokers and databases (see tests/fixtures/)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# The test machines have 2 cores shared with brokers and databases: generation and
# example speed there say nothing about the code, so only correctness checks fail a run.
settings.register_profile("shared-cpu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-cpu")

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.activemq",
    "tests.fixtures.pipeline",
    "tests.fixtures.chaos",
    "tests.fixtures.hostile",
    "tests.fixtures.pki",
    "tests.fixtures.broker",
    "tests.fixtures.proxy",
    "tests.fixtures.gateway",
    "tests.fixtures.icinga",
    "tests.fixtures.disk",
    "tests.fixtures.rabbitmq_cluster",
]

# A test using one of these fixtures needs that service: mark it, so `-m "not activemq"`
# and friends select without every test repeating the marker.
_FIXTURE_MARKERS = {
    "activemq": "activemq",
    "activemq_broker_factory": "activemq",
    "activemq_tls": "activemq",
    "postgres_url": "postgres",
    "mariadb_url": "mariadb",
    "rabbitmq_stomp": "rabbitmq",
    "rabbit_cluster": "rabbitmq",
    "icinga": "icinga",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="also run the tests marked long: fault rows that repeat what a shorter row "
        "already proves, kept out of CI's 40 minutes (docs/testing.md)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in names:
                item.add_marker(getattr(pytest.mark, marker))
    if not config.getoption("--long"):
        # Deselected, not skipped: CI's summary counts no skip for a row left to --long.
        kept = [item for item in items if item.get_closest_marker("long") is None]
        if len(kept) < len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in kept])
            items[:] = kept
