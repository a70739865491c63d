"""Brokers for the interop suite: ``msgbus broker serve`` as users run it (a process of
this module's own, with its SQLite store) and, where cheap, the session's ActiveMQ.

Each third-party client is driven through its own code path; where a broker's
semantics differ the test says so with ``Target.differs`` (as the conformance suite,
tests/integration/conformance, does for stomp.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.fixtures.pipeline import EmbeddedBroker
from tests.integration.conformance.clients import Target


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """``msgbus broker serve`` with a data directory, shared by a module's tests."""
    broker = EmbeddedBroker(tmp_path_factory.mktemp("serve"), args=["--no-presence"])
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture(params=["embedded", pytest.param("activemq", marks=pytest.mark.activemq)])
def target(request: pytest.FixtureRequest) -> Target:
    """``msgbus broker serve``, then the session's ActiveMQ."""
    if request.param == "embedded":
        broker: EmbeddedBroker = request.getfixturevalue("serve")
        return Target("embedded", "127.0.0.1", broker.port)
    amq = request.getfixturevalue("activemq")
    return Target("activemq", amq.host, amq.port, amq.user, amq.password)


@pytest.fixture
def name() -> str:
    """A destination name of this test alone (brokers are shared)."""
    return "interop." + uuid.uuid4().hex[:10]
