"""msgbus ctl across brokers/line.yaml (a - b - c): a component on c answers requests
sent at a (two bridges) and at b (one), a broadcast to a kind gathers the components on
a and c, and the round-trip rates are measured (printed; brokers/README.md quotes them)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from msgbus.config import MsgbusConfig, load_config
from msgbus.network.local import LocalNetwork
from msgbus.presence.agent import ComponentAgent
from msgbus.presence.client import ControlClient
from msgbus.presence.messages import Target


def _config(net: LocalNetwork, broker: str, **control: object) -> MsgbusConfig:
    return load_config(
        None,
        {
            "connection": {"brokers": [net.url(broker)]},
            "control": {"presence_interval": 1.0, **control},
        },
    )


@pytest.fixture
def agents(line_network: LocalNetwork) -> Iterator[dict[str, ComponentAgent]]:
    tag = uuid.uuid4().hex[:6]
    started = {}
    for broker in ("a", "c"):
        name = f"consumer-{broker}-{tag}"
        agent = ComponentAgent(_config(line_network, broker), kind="consumer", name=name)
        agent.start()
        assert agent.wait_connected(30), f"{name} did not connect to {broker}"
        started[broker] = agent
    time.sleep(2)  # the bridges learn the agents' control subscriptions (demand)
    try:
        yield started
    finally:
        for agent in started.values():
            agent.stop()


def _round_trips(client: ControlClient, name: str, seconds: float = 3.0) -> float:
    done, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        [reply] = client.request(Target(scope="name", value=name), "status", timeout=10)
        assert reply.ok and reply.name == name
        done += 1
    return done / (time.monotonic() - start)


def test_ctl_reaches_a_component_through_the_bridges(
    line_network: LocalNetwork, agents: dict[str, ComponentAgent]
) -> None:
    target = agents["c"].name
    rates = {}
    for via, bridges in (("c", 0), ("b", 1), ("a", 2)):
        with ControlClient(_config(line_network, via)) as client:
            rates[bridges] = _round_trips(client, target)
    print(f"\ncontrol round trips/s through 0, 1, 2 bridges: {rates}")
    assert all(rate > 1 for rate in rates.values()), rates


def test_a_broadcast_to_a_kind_gathers_the_whole_network(
    line_network: LocalNetwork, agents: dict[str, ComponentAgent]
) -> None:
    with ControlClient(_config(line_network, "b")) as client:
        client.send(Target(scope="kind", value="consumer"), "status")
        names = {r.name for r in client.gather(5).replies}
    assert {agents["a"].name, agents["c"].name} <= names
