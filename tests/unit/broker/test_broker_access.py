"""Who may use which destination, and how many a client may create (in memory)."""

from __future__ import annotations

from typing import Any

from msgbus.broker import BrokerLimits
from msgbus.broker.server import EmbeddedBroker
from msgbus.stomp.frames import Frame
from tests.unit.broker.test_broker_session import connected, run
from tests.unit.broker.wire import open_broker

USERS = {
    "probe": {"password": "p", "groups": ["probes"]},
    "reader": {"password": "r", "groups": ["readers"]},
}
PERMISSIONS = [
    {"destination": "/queue/grid.>", "write": ["probes"], "read": ["readers"]},
    {"destination": "/queue/grid.new.>", "admin": ["probes"]},
    {"destination": "/topic/grid.>", "write": ["probes"], "read": ["readers"]},
]


async def _sent(broker: EmbeddedBroker, login: str, destinations: list[str]) -> list[Frame]:
    """Send one message to each destination with a receipt; the frames that came back."""
    wire = await connected(broker, login=login, passcode=login[0])
    for i, destination in enumerate(destinations):
        wire.send("SEND", b"x", destination=destination, receipt=str(i))
    return await wire.receive()


def _refusal(frames: list[Frame]) -> str:
    [error] = [f for f in frames if f.command == "ERROR"]
    return f"{error.headers['message']}: {error.body.decode()}"


def test_each_action_needs_its_permission() -> None:
    async def scenario() -> None:
        broker = await open_broker(users=USERS, permissions=PERMISSIONS)
        # admin on grid.new.> lets probes create queues there; write alone sends to existing ones.
        frames = await _sent(broker, "probe", ["/queue/grid.new.a", "/queue/grid.a"])
        assert [f.command for f in frames] == ["RECEIPT", "ERROR"]
        assert frames[1].headers["receipt-id"] == "1"
        assert "probe may not create /queue/grid.a" in _refusal(frames)
        assert "/queue/grid.a" not in broker.router.queues
        frames = await _sent(broker, "reader", ["/queue/grid.new.a"])
        assert "reader may not write to /queue/grid.new.a" in _refusal(frames)
        assert broker.router.queues["/queue/grid.new.a"].depth() == 1
        thief = await connected(broker, login="probe", passcode="p")
        thief.send("SUBSCRIBE", destination="/queue/grid.new.a", id="1", receipt="s")
        assert "probe may not read from /queue/grid.new.a" in _refusal(await thief.receive())
        reader = await connected(broker, login="reader", passcode="r")
        reader.send("SUBSCRIBE", destination="/queue/grid.new.a", id="1")
        [message] = await reader.receive()
        assert message.command == "MESSAGE" and message.body == b"x"
        # msgbus's control destinations are open to every user.
        frames = await _sent(broker, "reader", ["/queue/msgbus.control.c1"])
        assert [f.command for f in frames] == ["RECEIPT"]

    run(scenario)


def test_a_send_in_a_transaction_is_refused_when_sent_not_at_commit() -> None:
    async def scenario() -> None:
        broker = await open_broker(users=USERS, permissions=PERMISSIONS)
        wire = await connected(broker, login="reader", passcode="r")
        wire.send("BEGIN", transaction="t")
        wire.send("SEND", b"x", destination="/topic/grid.a", transaction="t", receipt="r")
        assert "reader may not write to /topic/grid.a" in _refusal(await wire.receive())

    run(scenario)


def _limits(**values: Any) -> BrokerLimits:
    return BrokerLimits(**{"max_destinations": 100, **values})


def test_new_destinations_are_budgeted_per_connection_and_per_user() -> None:
    async def scenario() -> None:
        users = {"a": "a", "b": "b"}
        limits = _limits(max_destinations_per_connection=3, max_destinations_per_user=5)
        broker = await open_broker(users=users, limits=limits)
        frames = await _sent(broker, "a", [f"/queue/a{i}" for i in range(4)])
        assert [f.command for f in frames] == ["RECEIPT"] * 3 + ["ERROR"]
        assert "this connection already created 3 queues" in _refusal(frames)
        # Existing queues cost nothing; a second connection of the user has 2 left.
        frames = await _sent(broker, "a", ["/queue/a0", "/queue/a5", "/queue/a6", "/queue/a7"])
        assert [f.command for f in frames] == ["RECEIPT"] * 3 + ["ERROR"]
        assert "a already created 5 queues, the limit is 5" in _refusal(frames)
        frames = await _sent(broker, "b", ["/queue/b0"])
        assert [f.command for f in frames] == ["RECEIPT"]

    run(scenario)


def test_anonymous_clients_are_budgeted_per_address() -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=_limits(max_destinations_per_user=2))
        wire = await connected(broker)
        for i in range(3):
            wire.send("SEND", b"x", destination=f"/queue/q{i}", receipt=str(i))
        frames = await wire.receive()
        assert "anonymous@127.0.0.1 already created 2 queues" in _refusal(frames)

    run(scenario)


def test_control_stays_usable_when_one_client_used_up_every_destination() -> None:
    async def scenario() -> None:
        limits = _limits(max_destinations=3, max_destinations_per_user=10)
        broker = await open_broker(users={"flood": "f", "ops": "o"}, limits=limits)
        frames = await _sent(broker, "flood", [f"/queue/q{i}" for i in range(4)])
        assert "the broker already holds 3 queues, the limit is 3" in _refusal(frames)
        frames = await _sent(broker, "ops", ["/queue/msgbus.control.c1", "/queue/other"])
        assert [f.command for f in frames] == ["RECEIPT", "ERROR"]

    run(scenario)


def test_idle_queues_are_reclaimed_when_the_limit_is_reached() -> None:
    async def scenario() -> None:
        limits = _limits(max_destinations=3, max_destinations_per_user=3)
        broker = await open_broker(users={"u": "u"}, limits=limits)
        first = await connected(broker, login="u", passcode="u")
        for i in range(3):  # three reply queues, used and left empty
            first.send("SUBSCRIBE", destination=f"/queue/reply.{i}", id=str(i))
            first.send("UNSUBSCRIBE", id=str(i))
        frames = await _sent(broker, "u", ["/queue/kept", "/queue/kept2"])
        assert [f.command for f in frames] == ["RECEIPT", "RECEIPT"]
        # The reclaimed queues no longer count against their creator either.
        assert set(broker.router.queues) == {"/queue/kept", "/queue/kept2"}
        frames = await _sent(broker, "u", ["/queue/kept3", "/queue/kept4"])
        assert [f.command for f in frames] == ["RECEIPT", "ERROR"]
        assert "u already created 3 queues" in _refusal(frames)  # none of them idle

    run(scenario)


def test_a_stranger_spending_the_shared_budget_locks_no_consumer_out() -> None:
    """Issue 24, finding 7: local anonymous clients share one budget (per address); one
    that used it up must not keep a consumer from its destination or a component from
    its control queue."""

    async def scenario() -> None:
        limits = _limits(max_destinations_per_connection=3, max_destinations_per_user=4)
        broker = await open_broker(limits=limits)
        for names in (["/queue/s0", "/queue/s1", "/queue/s2"], ["/queue/s3", "/queue/s4"]):
            frames = await _sent(broker, "stranger", names)  # no users: anonymous
        assert "anonymous@127.0.0.1 already created 4 queues" in _refusal(frames)
        consumer = await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/msgbus.control.consumer-1", id="c")
        consumer.send("SUBSCRIBE", destination="/queue/grid.results", id="1", receipt="r1")
        consumer.send("SUBSCRIBE", destination="/queue/s0", id="2", receipt="r2")
        frames = await consumer.receive()  # /queue/s0 holds the stranger's message
        assert [f.command for f in frames] == ["RECEIPT", "RECEIPT", "MESSAGE"]
        # A control queue is also open to a sender the shared budget refuses.
        frames = await _sent(broker, "x", ["/queue/msgbus.control.consumer-2", "/queue/s9"])
        assert [f.command for f in frames] == ["RECEIPT", "ERROR"]
        assert "anonymous@127.0.0.1 already created" in _refusal(frames)

    run(scenario)


def test_control_queues_have_a_pool_of_their_own() -> None:
    async def scenario() -> None:
        limits = _limits(max_destinations=2, max_destinations_per_user=10)
        broker = await open_broker(users={"u": "u"}, limits=limits)
        frames = await _sent(broker, "u", ["/queue/a", "/queue/b", "/queue/c"])
        assert "the broker already holds 2 queues, the limit is 2" in _refusal(frames)
        names = [f"/queue/msgbus.control.c{i}" for i in range(3)]
        frames = await _sent(broker, "u", names)
        assert [f.command for f in frames] == ["RECEIPT", "RECEIPT", "ERROR"]
        assert "the broker already holds 2 control queues, the limit is 2" in _refusal(frames)

    run(scenario)
