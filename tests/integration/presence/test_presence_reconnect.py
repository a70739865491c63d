"""The agent outlives its broker: after a restart it reconnects and answers again."""

from __future__ import annotations

import time

from msgbus.config import load_config
from msgbus.presence.agent import ComponentAgent
from msgbus.presence.client import ControlClient
from msgbus.presence.messages import Target
from tests.fixtures.activemq import BrokerFactory


def test_agent_reconnects_after_a_broker_restart(activemq_broker_factory: BrokerFactory) -> None:
    broker = activemq_broker_factory()
    config = load_config(
        None,
        {
            "connection": {
                "brokers": [broker.stomp_url],
                "heartbeat_ms": (1000, 1000),
                "reconnect_initial_delay": 0.2,
                "reconnect_max_delay": 1.0,
            },
            "control": {"presence_interval": 0.5},
        },
    )
    agent = ComponentAgent(config, kind="consumer", name="survivor@h:1")
    agent.start()
    try:
        assert agent.wait_connected(20)
        broker.kill()
        deadline = time.monotonic() + 10
        while agent.wait_connected(0.1):  # the agent notices the loss
            assert time.monotonic() < deadline, "agent never noticed the broker's death"
        broker.start()
        assert agent.wait_connected(60), "agent did not reconnect"
        with ControlClient(config) as client:
            replies = client.request(
                Target(scope="name", value="survivor@h:1"), "status", timeout=10
            )
        assert [r.name for r in replies] == ["survivor@h:1"]
        assert any("control connection lost" in line for line in agent.logs.lines())
    finally:
        agent.stop()
