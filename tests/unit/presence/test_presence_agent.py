"""The agent's commands and the information lookup, without a broker."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from msgbus.config import MsgbusConfig, load_config
from msgbus.errors import BrokerError, ControlError
from msgbus.presence.agent import ComponentAgent, local_agent
from msgbus.presence.lookup import lookup
from msgbus.presence.messages import Announcement, ControlRequest, Target
from msgbus.presence.table import PresenceTable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def config() -> MsgbusConfig:
    # A port nobody listens on: the agent thread keeps retrying, never reaching a broker.
    return load_config(
        None,
        {
            "site": "S1",
            "connection": {"brokers": [f"stomp://127.0.0.1:{_closed_port()}"]},
            "control": {"log_lines": 10},
        },
    )


class Component:
    def __init__(self) -> None:
        self.paused = False

    def stats(self) -> Mapping[str, object]:
        return {"stored_total": 7, "lag_seconds": 1.5, "queue": "q", "healthy": True}

    def state(self) -> str:
        return "paused" if self.paused else "running"

    def pause(self, args: Mapping[str, Any]) -> object:
        self.paused = True
        return {"paused": True}

    def boom(self, args: Mapping[str, Any]) -> object:
        raise RuntimeError("kaput")


@pytest.fixture
def agent(config: MsgbusConfig) -> Iterator[ComponentAgent]:
    comp = Component()
    agent = ComponentAgent(
        config,
        kind="consumer",
        name="c1",
        stats=comp.stats,
        state=comp.state,
        handlers={"pause": comp.pause, "boom": comp.boom},
    )
    yield agent
    agent.stop()


def _request(command: str, **args: Any) -> ControlRequest:
    return ControlRequest(command=command, args=args, sender="t", target=Target(scope="all"))


def test_announcement_carries_identity_state_and_numeric_counters(agent: ComponentAgent) -> None:
    a = agent.announcement("start")
    assert (a.name, a.kind, a.site, a.event, a.state) == (
        "c1",
        "consumer",
        "S1",
        "start",
        "running",
    )
    assert a.counters == {"stored_total": 7.0, "lag_seconds": 1.5}
    assert a.control == "/queue/msgbus.control.c1"
    assert agent.announcement("stop").state == "stopped"


def test_status_reports_full_stats_and_commands(agent: ComponentAgent) -> None:
    info = agent.execute(_request("status"))
    assert isinstance(info, dict)
    assert info["stats"]["queue"] == "q"
    assert info["commands"] == ["boom", "logs", "pause", "status"]
    Announcement.model_validate(info)  # a status answer is read as an announcement


def test_component_handler_changes_state(agent: ComponentAgent) -> None:
    assert agent.execute(_request("pause")) == {"paused": True}
    assert agent.state() == "paused"


def test_unknown_command_names_the_offered_ones(agent: ComponentAgent) -> None:
    with pytest.raises(ControlError, match="no command 'fly'; it offers: boom, logs, pause"):
        agent.execute(_request("fly"))


def test_logs_returns_the_last_msgbus_log_lines(agent: ComponentAgent) -> None:
    log = logging.getLogger("msgbus.test.agent")
    agent.start()
    old_level = log.level
    log.setLevel(logging.INFO)
    try:
        for i in range(15):
            log.info("event %d", i)
    finally:
        log.setLevel(old_level)
    result = agent.execute(_request("logs", lines=3))
    assert isinstance(result, dict)
    assert [line.rsplit(" ", 1)[-1] for line in result["lines"]] == ["12", "13", "14"]
    with pytest.raises(ControlError, match="'lines' must be a non-negative integer"):
        agent.execute(_request("logs", lines="all"))


def test_started_agent_is_the_local_source_until_stopped(agent: ComponentAgent) -> None:
    assert local_agent("c1") is None
    agent.start()
    assert local_agent("c1") is agent
    result = lookup("c1", PresenceTable(30), None, timeout=1)
    assert result.source == "local"
    assert result.info["stats"]["stored_total"] == 7
    agent.stop()
    assert local_agent("c1") is None
    assert agent.logs not in logging.getLogger("msgbus").handlers


def _announcement(name: str) -> Announcement:
    return Announcement(
        name=name,
        kind="publisher",
        host="h",
        pid=1,
        version="0",
        state="running",
        started_at=0,
        sent_at=0,
        interval=10,
        control="/queue/x",
    )


def test_lookup_uses_a_fresh_presence_announcement() -> None:
    table = PresenceTable(lost_after=30)
    info = _announcement("far")
    table.heard(info, time.time() - 5, "presence")
    result = lookup("far", table, None, timeout=1)
    assert result.source == "presence"
    assert 4 < result.age < 10
    assert result.info["name"] == "far"


def test_lookup_without_any_source_says_so() -> None:
    table = PresenceTable(lost_after=30)
    with pytest.raises(ControlError, match="no component named 'ghost'"):
        lookup("ghost", table, None, timeout=1)
    info = _announcement("gone")
    table.heard(info, time.time() - 100, "presence")
    with pytest.raises(ControlError, match=r"gone did not answer.*\(lost\)"):
        lookup("gone", table, None, timeout=1)


def test_state_defaults_to_the_stats_state(config: MsgbusConfig) -> None:
    stats = {"state": "draining", "n": 1}
    agent = ComponentAgent(config, kind="consumer", name="c9", stats=lambda: stats)
    assert agent.state() == "draining"
    stats["state"] = 3  # not a state name
    assert agent.state() == "running"


def test_reload_applies_control_and_lists_what_needs_a_restart(config: MsgbusConfig) -> None:
    new = config.model_copy(
        update={
            "control": config.control.model_copy(update={"allowed_users": ["ops"]}),
            "store_url": "sqlite:///other.db",
        }
    )
    agent = ComponentAgent(config, kind="consumer", name="c8", reload=lambda: new)
    pause = ControlRequest(command="pause", sender="ops", target=Target(scope="all"))
    body = pause.model_dump_json().encode()
    with pytest.raises(ControlError, match="allowed_users"):
        agent._auth.check(pause, body, None)
    assert agent.execute(_request("reload")) == {
        "applied": ["control"],
        "restart_needed": ["store_url"],
    }
    agent._auth.check(pause, body, None)  # ops is allowed now


def test_reload_is_offered_only_with_a_reload_source(agent: ComponentAgent) -> None:
    with pytest.raises(ControlError, match="no command 'reload'"):
        agent.execute(_request("reload"))


def test_a_failing_stats_callback_does_not_break_announcements(config: MsgbusConfig) -> None:
    def stats() -> Mapping[str, object]:
        raise RuntimeError("dictionary changed size during iteration")

    agent = ComponentAgent(config, kind="broker", name="b1", stats=stats)
    assert agent.announcement().counters == {}
    assert agent.state() == "running"
    assert agent.status_info()["stats"] == {}


def test_a_refused_control_subscription_is_retried_slowly(
    config: MsgbusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconnect storm: a broker that takes the login but refuses the control queues
    got hundreds of connections a second; now they follow the back-off."""
    attempts: list[float] = []

    class Refusing:
        url = "stomp://127.0.0.1:1"

        def subscribe(self, destination: str, **kw: object) -> None:
            raise BrokerError(f"User probe is not authorized to read from: {destination}")

        def close(self, reason: str = "") -> None:
            pass

    def opener(settings: object) -> Callable[[object], Refusing]:
        def connect(url: object) -> Refusing:
            attempts.append(time.monotonic())
            return Refusing()

        return connect

    monkeypatch.setattr("msgbus.presence.agent.opener", opener)
    fast = config.connection.model_copy(
        update={"reconnect_initial_delay": 0.1, "reconnect_max_delay": 1.0}
    )
    storm = ComponentAgent(config.model_copy(update={"connection": fast}), kind="consumer")
    storm.start()
    time.sleep(2.0)
    storm.stop()
    assert 2 <= len(attempts) <= 12, f"{len(attempts)} connections in 2 s"
