"""Brokers and agent factories for the presence/control tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from msgbus.config import MsgbusConfig, load_config
from msgbus.presence.agent import ComponentAgent

ConfigFactory = Callable[..., MsgbusConfig]


@pytest.fixture
def make_config(embedded_or_activemq: str) -> ConfigFactory:
    """Configurations sharing this test's own control destinations."""
    prefix = "t" + uuid.uuid4().hex[:10]

    def make(site: str | None = None, **control: Any) -> MsgbusConfig:
        settings = {
            "prefix": prefix,
            "presence_topic": f"/topic/{prefix}.presence",
            "presence_interval": 0.5,
            **control,
        }
        return load_config(
            None,
            {"site": site, "connection": {"brokers": [embedded_or_activemq]}, "control": settings},
        )

    return make


class Fake:
    """A component with the control surface of a consumer."""

    def __init__(self) -> None:
        self.state = "running"
        self.stored = 0

    def stats(self) -> Mapping[str, object]:
        return {"stored": self.stored, "state": self.state}

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], object]]:
        def pause(args: Mapping[str, Any]) -> object:
            self.state = "paused"
            return None

        def resume(args: Mapping[str, Any]) -> object:
            self.state = "running"
            return None

        def boom(args: Mapping[str, Any]) -> object:
            raise RuntimeError("the handler broke")

        return {"pause": pause, "resume": resume, "boom": boom}


AgentFactory = Callable[..., tuple[ComponentAgent, Fake]]


@pytest.fixture
def start_agent() -> Iterator[AgentFactory]:
    agents: list[ComponentAgent] = []

    def start(config: MsgbusConfig, kind: str, name: str) -> tuple[ComponentAgent, Fake]:
        fake = Fake()
        agent = ComponentAgent(
            config, kind=kind, name=name, stats=fake.stats, state=lambda: fake.state,
            handlers=fake.handlers(),
        )  # fmt: skip
        agent.start()
        agents.append(agent)
        assert agent.wait_connected(20), f"agent {name} did not connect"
        return agent, fake

    yield start
    for agent in agents:
        agent.stop()
