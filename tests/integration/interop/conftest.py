"""Brokers for the interop suite: ``msgbus broker serve`` as users run it (a process of
this module's own, with its SQLite store) and, where cheap, the session's ActiveMQ.

Each third-party client is driven through its own code path; where a broker's
semantics differ the test says so with ``Target.differs`` (as the conformance suite,
tests/integration/conformance, does for stomp.py)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.pipeline import EmbeddedBroker
from tests.fixtures.services import require_service
from tests.integration.conformance.clients import Target

STEPS = Path(__file__).with_name("net_stomp_steps.pl")

Step = list[Any]


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


def _net_stomp_available() -> bool:
    probe = subprocess.run(["perl", "-MNet::Stomp", "-e", "1"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture
def net_stomp_installed() -> None:
    require_service("Perl Net::Stomp (Debian libnet-stomp-perl)", _net_stomp_available)


def net_stomp(
    target: Target, steps: list[Step], connect: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One Net::Stomp session running ``steps`` (net_stomp_steps.pl says which); the
    MESSAGE frames it received, as ``{"headers": ..., "body": ...}``."""
    login = {"login": target.login, "passcode": target.passcode} if target.login else {}
    plan = {"host": target.host, "port": target.port, "connect": {**login, **(connect or {})}}
    run = subprocess.run(
        ["perl", str(STEPS)],
        input=json.dumps({**plan, "steps": steps}),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    messages: list[dict[str, Any]] = json.loads(run.stdout)
    return messages
