"""Presence and control between agents and a client over real brokers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from msgbus.presence.agent import ComponentAgent
from msgbus.presence.client import ControlClient
from msgbus.presence.messages import ControlRequest, Destinations, Target
from tests.integration.presence.conftest import AgentFactory, ConfigFactory, Fake


def by_name(name: str) -> Target:
    return Target(scope="name", value=name)


@dataclass
class Three:
    fakes: dict[str, Fake]
    agents: dict[str, ComponentAgent]

    def __getitem__(self, name: str) -> Fake:
        return self.fakes[name]


@pytest.fixture
def three(make_config: ConfigFactory, start_agent: AgentFactory) -> Three:
    """consumer@a:1 (site S1), consumer@b:2 (S2), publisher@a:3 (S1); user ops allowed."""
    out = Three({}, {})
    for site, kind, name in (
        ("S1", "consumer", "consumer@a:1"),
        ("S2", "consumer", "consumer@b:2"),
        ("S1", "publisher", "publisher@a:3"),
    ):
        agent, fake = start_agent(make_config(site, allowed_users=["ops"]), kind, name)
        out.agents[name], out.fakes[name] = agent, fake
    return out


def test_who_is_there_every_component_answers(make_config: ConfigFactory, three: Three) -> None:
    with ControlClient(make_config(user="anyone")) as client:
        client.send(Target(scope="all"), "status")
        replies = client.gather(3).replies
    assert sorted(r.name for r in replies) == ["consumer@a:1", "consumer@b:2", "publisher@a:3"]
    c1 = next(r for r in replies if r.name == "consumer@a:1")
    assert c1.ok and c1.result["site"] == "S1" and c1.result["stats"]["state"] == "running"


def test_command_to_one_kind_or_one_site(make_config: ConfigFactory, three: Three) -> None:
    with ControlClient(make_config(user="ops")) as client:
        [reply] = client.request(by_name("consumer@b:2"), "pause", timeout=5)
        assert reply.ok and reply.name == "consumer@b:2"
        assert three["consumer@b:2"].state == "paused"
        assert three["consumer@a:1"].state == "running"

        consumers = client.request(Target(scope="kind", value="consumer"), "pause", timeout=2)
        assert sorted(r.name for r in consumers) == ["consumer@a:1", "consumer@b:2"]
        assert three["publisher@a:3"].state == "running"

        site = client.request(Target(scope="site", value="S1"), "resume", timeout=2)
        assert sorted(r.name for r in site) == ["consumer@a:1", "publisher@a:3"]
        assert three["consumer@a:1"].state == "running"
        assert three["consumer@b:2"].state == "paused"


def test_refused_user_gets_a_reason_and_the_attempt_is_logged(
    make_config: ConfigFactory, three: Three
) -> None:
    with ControlClient(make_config(user="mallory")) as client:
        [reply] = client.request(by_name("consumer@a:1"), "pause", timeout=5)
    assert not reply.ok
    assert "'mallory' may not send 'pause'" in (reply.error or "")
    assert three["consumer@a:1"].state == "running"
    agent = three.agents["consumer@a:1"]
    assert any("refused control command 'pause' from 'mallory'" in line
               for line in agent.logs.lines())  # fmt: skip


def test_signed_commands(make_config: ConfigFactory, start_agent: AgentFactory) -> None:
    secured = make_config("S1", allowed_users=["ops"], secrets={"ops": "k3y"})
    _, fake = start_agent(secured, "consumer", "secure@h:1")
    with ControlClient(make_config(user="ops", secrets={"ops": "wrong"})) as client:
        [reply] = client.request(by_name("secure@h:1"), "pause", timeout=5)
    assert not reply.ok and "signature" in (reply.error or "")
    assert fake.state == "running"
    with ControlClient(make_config(user="ops", secrets={"ops": "k3y"})) as client:
        [reply] = client.request(by_name("secure@h:1"), "pause", timeout=5)
    assert reply.ok and fake.state == "paused"


def test_a_captured_signed_command_is_refused_after_the_target_restarts(
    make_config: ConfigFactory, start_agent: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    secured = make_config("S1", allowed_users=["ops"], secrets={"ops": "k3y"})
    agent, fake = start_agent(secured, "consumer", "replay@h:1")
    with ControlClient(make_config(user="ops", secrets={"ops": "k3y"})) as client:
        captured: list[tuple[Any, ...]] = []
        send = client.connection.send

        def spy(*args: Any) -> None:  # what someone on the wire would record
            captured.append(args)
            send(*args)

        monkeypatch.setattr(client.connection, "send", spy)
        [reply] = client.request(by_name("replay@h:1"), "pause", timeout=5)
        assert reply.ok and fake.state == "paused"
        agent.stop()
        _, restarted = start_agent(secured, "consumer", "replay@h:1")
        send(*captured[0])  # the same frame, signature and all
        [refused] = client.gather(5, first_reply=True).replies
    assert not refused.ok
    assert "signed before this component started" in (refused.error or "")
    assert restarted.state == "running"


def test_logs_and_a_failing_handler(make_config: ConfigFactory, three: Three) -> None:
    logging.getLogger("msgbus.test.presence").warning("something to find")
    with ControlClient(make_config(user="ops")) as client:
        [logs] = client.request(by_name("publisher@a:3"), "logs", {"lines": 5}, timeout=5)
        [boom] = client.request(by_name("publisher@a:3"), "boom", timeout=5)
        [unknown] = client.request(by_name("publisher@a:3"), "fly", timeout=5)
    assert logs.ok and any("something to find" in line for line in logs.result["lines"])
    assert len(logs.result["lines"]) <= 5
    assert not boom.ok and "RuntimeError: the handler broke" in (boom.error or "")
    assert not unknown.ok and "no command 'fly'" in (unknown.error or "")
    with ControlClient(make_config(user="ops")) as client:
        [again] = client.request(by_name("publisher@a:3"), "status", timeout=5)
    assert again.ok


def test_announcements_at_start_interval_and_stop(
    make_config: ConfigFactory, start_agent: AgentFactory
) -> None:
    with ControlClient(make_config()) as client:
        client.listen_presence()
        agent, fake = start_agent(make_config("S9"), "publisher", "announcer@h:1")
        fake.stored = 42
        first = client.gather(1.6).announcements
        agent.stop()
        last = client.gather(1.0).announcements
    mine = [a for a in first if a.name == "announcer@h:1"]
    assert mine[0].event == "start"
    assert len([a for a in mine if a.event == "alive"]) >= 2  # every 0.5 s
    assert mine[-1].counters["stored"] == 42.0
    assert mine[-1].site == "S9" and mine[-1].kind == "publisher"
    assert [a.event for a in last if a.name == "announcer@h:1"][-1:] == ["stop"]


def test_no_reply_for_an_unknown_name(make_config: ConfigFactory, three: Three) -> None:
    with ControlClient(make_config(user="ops")) as client:
        assert client.request(by_name("nobody@x:0"), "status", timeout=1) == []


def test_replies_fall_back_to_a_queue_where_the_prefix_is_refused(
    make_config: ConfigFactory, three: Three
) -> None:
    # The embedded broker refuses /bogus/...; ActiveMQ takes it as a queue name, and
    # then the agent will not reply there (not a STOMP destination prefix).
    with ControlClient(make_config(user="ops", reply_prefix="/bogus/")) as client:
        replies = client.request(by_name("consumer@a:1"), "status", timeout=3)
        if client.connection.server.startswith("ActiveMQ/"):
            assert client.reply_to.startswith("/bogus/") and replies == []
            return
        assert client.reply_to.startswith("/queue/t") and ".reply." in client.reply_to
    assert [r.ok for r in replies] == [True]


def test_replies_come_back_on_a_control_queue_unless_a_prefix_is_chosen(
    make_config: ConfigFactory,
) -> None:
    # A control queue crosses a network's bridges (a temporary queue does not) and the
    # embedded broker has no temporary queues; a chosen prefix is kept where it works.
    with ControlClient(make_config()) as client:
        assert client.reply_to.startswith("/queue/t") and ".reply." in client.reply_to
    with ControlClient(make_config(reply_prefix="/temp-queue/")) as client:
        server, reply_to = client.connection.server, client.reply_to
    assert reply_to.startswith("/temp-queue/" if server.startswith("ActiveMQ/") else "/queue/")


def test_agent_and_client_leave_the_components_client_id_alone(
    make_config: ConfigFactory, start_agent: AgentFactory
) -> None:
    from msgbus.transport.connection import Connection

    config = make_config("S1", allowed_users=["ops"])
    config = config.model_copy(
        update={"connection": config.connection.model_copy(update={"client_id": "c-durable"})}
    )
    # The component itself holds the client-id (ActiveMQ allows one connection per id).
    with Connection(config.connection.brokers[0], config.connection):
        start_agent(config, "consumer", "holder@h:1")
        with ControlClient(config) as client:
            [reply] = client.request(by_name("holder@h:1"), "status", timeout=5)
    assert reply.ok


def test_an_odd_reply_to_does_not_cut_the_control_channel(
    make_config: ConfigFactory, three: Three
) -> None:
    with ControlClient(make_config(user="ops")) as client:
        request = ControlRequest(command="status", sender="ops", target=by_name("consumer@a:1"))
        body = request.model_dump_json().encode()
        queue = Destinations(make_config().control.prefix).queue("consumer@a:1")
        client.connection.send(queue, body, {"reply-to": "bogus-destination"})
        [reply] = client.request(by_name("consumer@a:1"), "status", timeout=5)
    assert reply.ok
    agent = three.agents["consumer@a:1"]
    assert any("not replying to 'bogus-destination'" in line for line in agent.logs.lines())
    assert not any("control connection lost" in line for line in agent.logs.lines())
