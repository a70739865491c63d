"""Broker semantics through in-memory connections (no sockets): see wire.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from msgbus.broker import BrokerLimits
from msgbus.stomp.frames import Frame
from tests.unit.broker.wire import Wire, open_broker


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def bodies(frames: list[Frame]) -> list[bytes]:
    return [f.body for f in frames if f.command == "MESSAGE"]


async def connected(broker: Any, version: str = "1.2", **headers: str) -> Wire:
    wire = Wire(broker, version)
    frame = await wire.connect(**headers)
    assert frame.command == "CONNECTED", frame
    return wire


@pytest.mark.parametrize(
    ("offered", "agreed"), [("1.0,1.1", "1.1"), ("1.2,1.1", "1.2"), ("1.0", "1.0")]
)
def test_version_negotiation(offered: str, agreed: str) -> None:
    async def scenario() -> None:
        wire = Wire(await open_broker())
        wire.send("CONNECT", accept_version=offered, host="x", heart_beat="0,5000")
        [frame] = await wire.receive()
        assert frame.command == "CONNECTED"
        assert frame.headers["version"] == agreed
        assert frame.headers["heart-beat"] == "10000,10000"

    run(scenario)


def test_unsupported_version_is_an_error_and_closes() -> None:
    async def scenario() -> None:
        wire = Wire(await open_broker())
        wire.send("CONNECT", accept_version="2.0", host="x")
        [frame] = await wire.receive()
        assert frame.command == "ERROR"
        assert frame.headers["version"] == "1.0,1.1,1.2"
        assert wire.transport.closed

    run(scenario)


def test_frame_before_connect_and_malformed_bytes_are_errors() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        early = Wire(broker)
        early.send("SEND", b"x", destination="/queue/a", receipt="r1")
        [frame] = await early.receive()
        assert frame.command == "ERROR" and frame.headers["receipt-id"] == "r1"
        assert early.transport.closed
        garbled = await connected(broker)
        garbled.send_bytes(b"SEND\ndestination:/queue/a\ncontent-length:zz\n\n\0")
        [frame] = await garbled.receive()
        assert frame.command == "ERROR" and "content-length" in frame.body.decode()
        assert garbled.transport.closed
        await asyncio.sleep(0)
        assert broker.gate.connections == 0

    run(scenario)


def test_bad_login_is_refused() -> None:
    async def scenario() -> None:
        broker = await open_broker(users={"probe": "secret"})
        wire = Wire(broker)
        await wire.connect(login="probe", passcode="wrong")
        assert wire.frames[0].command == "ERROR" and wire.transport.closed
        assert (await connected(broker, login="probe", passcode="secret")).session.stomp.connected

    run(scenario)


def test_receipt_on_any_frame_and_disconnect_closes_after_it() -> None:
    async def scenario() -> None:
        wire = await connected(await open_broker())
        wire.send("SUBSCRIBE", destination="/queue/a", id="1", receipt="s")
        wire.send("BEGIN", transaction="t", receipt="b")
        wire.send("ABORT", transaction="t", receipt="a")
        wire.send("UNSUBSCRIBE", id="1", receipt="u")
        wire.send("DISCONNECT", receipt="bye")
        frames = await wire.receive()
        assert [f.headers["receipt-id"] for f in frames] == ["s", "b", "a", "u", "bye"]
        assert wire.transport.closed

    run(scenario)


@pytest.mark.parametrize(
    ("destination", "durable"),
    [("/queue/backlog", {}), ("/topic/backlog", {"activemq.subscriptionName": "d"})],
)
def test_subscribe_receipt_comes_before_the_backlog(
    destination: str, durable: dict[str, str]
) -> None:
    # As ActiveMQ orders them: Net::Stomp reads the next frame after SUBSCRIBE as its receipt.
    async def scenario() -> None:
        broker = await open_broker()
        producer = await connected(broker)
        if durable:
            away = await connected(broker, **{"client-id": "c"})
            away.send("SUBSCRIBE", destination=destination, id="1", **durable)
            away.send("DISCONNECT", receipt="gone")
            await away.receive()
        for i in range(3):
            producer.send("SEND", b"%d" % i, destination=destination, receipt=f"p{i}")
        await producer.receive()
        sub = await connected(broker, **({"client-id": "c"} if durable else {}))
        sub.send("SUBSCRIBE", destination=destination, id="1", receipt="s", **durable)
        frames = await sub.receive()
        assert [f.command for f in frames] == ["RECEIPT", "MESSAGE", "MESSAGE", "MESSAGE"]
        assert bodies(frames) == [b"0", b"1", b"2"]

    run(scenario)


def test_queue_round_robin_between_competing_consumers() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        c1, c2, producer = [await connected(broker) for _ in range(3)]
        c1.send("SUBSCRIBE", destination="/queue/rr", id="s")
        c2.send("SUBSCRIBE", destination="/queue/rr", id="s")
        for i in range(6):
            producer.send("SEND", b"%d" % i, destination="/queue/rr")
        assert bodies(await c1.receive()) == [b"0", b"2", b"4"]
        assert bodies(await c2.receive()) == [b"1", b"3", b"5"]

    run(scenario)


def test_prefetch_window_and_client_individual_ack() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        consumer, producer = await connected(broker), await connected(broker)
        consumer.send(
            "SUBSCRIBE",
            destination="/queue/p",
            id="s",
            ack="client-individual",
            **{"activemq.prefetchSize": "2"},
        )
        for i in range(5):
            producer.send("SEND", b"%d" % i, destination="/queue/p")
        first = await consumer.receive()
        assert bodies(first) == [b"0", b"1"]
        consumer.send("ACK", id=first[1].headers["ack"])
        assert bodies(await consumer.receive()) == [b"2"]
        assert broker.router.queues["/queue/p"].depth() == 4

    run(scenario)


def test_client_ack_is_cumulative_and_unacked_are_redelivered() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        first, producer = await connected(broker), await connected(broker)
        first.send("SUBSCRIBE", destination="/queue/c", id="s", ack="client")
        for i in range(4):
            producer.send("SEND", b"%d" % i, destination="/queue/c")
        got = await first.receive()
        first.send("ACK", id=got[1].headers["ack"])  # acks 0 and 1
        await first.receive()
        first.transport.close()  # the consumer goes away with 2 and 3 unacked
        second = await connected(broker)
        second.send("SUBSCRIBE", destination="/queue/c", id="s", ack="auto")
        again = [f for f in await second.receive() if f.command == "MESSAGE"]
        assert bodies(again) == [b"2", b"3"]
        assert all(f.headers["redelivered"] == "true" for f in again)

    run(scenario)


def test_nack_and_too_many_redeliveries_go_to_the_dead_letter_queue() -> None:
    async def scenario() -> None:
        broker = await open_broker(max_redeliveries=1)
        producer = await connected(broker)
        producer.send("SEND", b"rejected", destination="/queue/d")
        producer.send("SEND", b"poison", destination="/queue/d")
        consumer = await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/d", id="s", ack="client-individual")
        rejected, _ = await consumer.receive()
        consumer.send("NACK", id=rejected.headers["ack"])
        for _ in range(2):  # delivered, consumer vanishes; twice exceeds max_redeliveries=1
            consumer.transport.close()
            consumer = await connected(broker)
            consumer.send("SUBSCRIBE", destination="/queue/d", id="s", ack="client")
            await consumer.receive()
        dlq = await connected(broker)
        dlq.send("SUBSCRIBE", destination="/queue/DLQ.d", id="s")
        assert sorted(bodies(await dlq.receive())) == [b"poison", b"rejected"]

    run(scenario)


def test_topic_fan_out_and_virtual_topic_queues() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        t1, t2, va1, va2, vb, producer = [await connected(broker) for _ in range(6)]
        t1.send("SUBSCRIBE", destination="/topic/VirtualTopic.x", id="s")
        t2.send("SUBSCRIBE", destination="/topic/VirtualTopic.x", id="s")
        va1.send("SUBSCRIBE", destination="/queue/Consumer.A.VirtualTopic.x", id="s")
        va2.send("SUBSCRIBE", destination="/queue/Consumer.A.VirtualTopic.x", id="s")
        vb.send("SUBSCRIBE", destination="/queue/Consumer.B.VirtualTopic.x", id="s")
        for body in (b"1", b"2"):
            producer.send("SEND", body, destination="/topic/VirtualTopic.x")
        assert bodies(await t1.receive()) == bodies(await t2.receive()) == [b"1", b"2"]
        assert bodies(await va1.receive()) + bodies(await va2.receive()) == [b"1", b"2"]
        assert bodies(await vb.receive()) == [b"1", b"2"]

    run(scenario)


@pytest.mark.parametrize(
    ("connect", "subscribe"),
    [
        ({"client_id": "probe-1"}, {"activemq.subscriptionName": "grid"}),
        ({}, {"durable": "true", "auto_delete": "false"}),
    ],
    ids=["activemq-form", "rabbitmq-form"],
)
def test_durable_subscription_keeps_messages_while_away(
    connect: dict[str, str], subscribe: dict[str, str]
) -> None:
    async def scenario() -> None:
        broker = await open_broker()
        producer = await connected(broker)
        sub = await connected(broker, **connect)
        sub.send("SUBSCRIBE", destination="/topic/t", id="d1", **subscribe)
        sub.send("DISCONNECT")
        await sub.receive()
        producer.send("SEND", b"while away", destination="/topic/t")
        back = await connected(broker, **connect)
        back.send("SUBSCRIBE", destination="/topic/t", id="d1", **subscribe)
        assert bodies(await back.receive()) == [b"while away"]
        # UNSUBSCRIBE naming the durable subscription removes it for good.
        back.send("UNSUBSCRIBE", id="d1", **subscribe)
        producer.send("SEND", b"after removal", destination="/topic/t")
        await back.receive()
        assert not any(name.startswith("durable:") for name in broker.router.queues)

    run(scenario)


def test_activemq_durable_subscription_needs_a_client_id() -> None:
    async def scenario() -> None:
        wire = await connected(await open_broker())
        wire.send("SUBSCRIBE", destination="/topic/t", id="1", **{"activemq.subscriptionName": "x"})
        [frame] = await wire.receive()
        assert frame.command == "ERROR" and "client-id" in frame.headers["message"]

    run(scenario)


def test_transactions_deliver_on_commit_only() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        consumer, producer = await connected(broker), await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/tx", id="s")
        producer.send("BEGIN", transaction="t1")
        producer.send("SEND", b"kept", destination="/queue/tx", transaction="t1")
        producer.send("BEGIN", transaction="t2")
        producer.send("SEND", b"dropped", destination="/queue/tx", transaction="t2")
        assert bodies(await consumer.receive()) == []
        producer.send("ABORT", transaction="t2")
        producer.send("COMMIT", transaction="t1")
        assert bodies(await consumer.receive()) == [b"kept"]

    run(scenario)


@pytest.mark.parametrize(
    ("limits", "destinations", "reason"),
    [
        # The last of three queues is one more than the broker may create.
        (
            BrokerLimits(max_destinations=2),
            ["/queue/a", "/queue/b", "/queue/a", "/queue/c"],
            "limit is 2",
        ),
        (BrokerLimits(), ["/queue/ok", "/topic/"], "unsupported destination"),
    ],
)
def test_a_refused_commit_delivers_nothing(
    limits: BrokerLimits, destinations: list[str], reason: str
) -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=limits)
        producer = await connected(broker)
        producer.send("BEGIN", transaction="t")
        for i, destination in enumerate(destinations):
            producer.send("SEND", b"%d" % i, destination=destination, transaction="t")
        producer.send("COMMIT", transaction="t", receipt="c")
        [error] = await producer.receive()
        assert error.command == "ERROR" and reason in error.body.decode()
        assert "msgbus-transient" not in error.headers
        assert broker.router.received == 0
        assert all(q.depth() == 0 for q in broker.router.queues.values())
        assert not {"/queue/b", "/queue/c"} & set(broker.router.queues)

    run(scenario)


def test_limits_answer_with_error_frames() -> None:
    async def scenario() -> None:
        limits = BrokerLimits(
            max_queue_depth=2, max_subscriptions=1, max_frame_bytes=2048, flow_control_wait=0.05
        )
        broker = await open_broker(limits=limits)
        producer = await connected(broker)
        for i in range(3):
            producer.send("SEND", b"%d" % i, destination="/queue/full", receipt=str(i))
        frames = await producer.receive()
        assert [f.command for f in frames] == ["RECEIPT", "RECEIPT"]  # the third is held
        await asyncio.sleep(0.1)
        [error] = await producer.receive()
        assert error.headers["message"] == "queue full"
        assert error.headers["msgbus-transient"] == "true"
        assert "/queue/full holds 2 messages" in error.body.decode()
        subs = await connected(broker)
        subs.send("SUBSCRIBE", destination="/queue/a", id="1")
        subs.send("SUBSCRIBE", destination="/queue/b", id="2")
        assert (await subs.receive())[-1].command == "ERROR"
        big = await connected(broker)
        big.send("SEND", b"x" * 5000, destination="/queue/a")
        [frame] = await big.receive()
        assert frame.command == "ERROR" and "exceeds" in frame.body.decode()

    run(scenario)


def test_two_topic_subscriptions_of_one_connection_ack_independently() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        wire, producer = await connected(broker), await connected(broker)
        for sub_id in ("a", "b"):
            wire.send("SUBSCRIBE", destination="/topic/twice", id=sub_id, ack="client-individual")
        producer.send("SEND", b"one", destination="/topic/twice")
        copies = await wire.receive()
        assert [f.headers["subscription"] for f in copies] == ["a", "b"]
        assert copies[0].headers["message-id"] == copies[1].headers["message-id"]
        assert copies[0].headers["ack"] != copies[1].headers["ack"]
        for copy in copies:
            wire.send("ACK", id=copy.headers["ack"], receipt=copy.headers["subscription"])
        assert [f.command for f in await wire.receive()] == ["RECEIPT", "RECEIPT"]
        assert all(q.unacked == 0 for targets in broker.router.topics.values() for q in targets)

    run(scenario)


def test_frames_before_malformed_bytes_are_still_honoured() -> None:
    async def scenario() -> None:
        broker = await open_broker()
        wire = await connected(broker)
        wire.send_bytes(
            b"SEND\ndestination:/queue/ok\nreceipt:r1\ncontent-length:2\n\nhi\0BOGUS\n\n\0"
        )
        frames = await wire.receive()
        assert [f.command for f in frames] == ["RECEIPT", "ERROR"]
        assert broker.router.queues["/queue/ok"].depth() == 1

    run(scenario)


def test_slow_topic_subscriber_loses_oldest_instead_of_blocking_producers() -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=BrokerLimits(max_queue_depth=3))
        slow, producer = await connected(broker), await connected(broker)
        slow.send("SUBSCRIBE", destination="/topic/fast", id="s")
        await slow.receive()
        slow.session.pause_writing()  # its socket buffer is full
        for i in range(5):
            producer.send("SEND", b"%d" % i, destination="/topic/fast", receipt=str(i))
        assert [f.command for f in await producer.receive()] == ["RECEIPT"] * 5
        slow.session.resume_writing()
        assert bodies(await slow.receive()) == [b"2", b"3", b"4"]

    run(scenario)


def test_destination_limit() -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=BrokerLimits(max_destinations=2))
        wire = await connected(broker)
        for name in ("a", "b", "c"):
            wire.send("SEND", b"x", destination=f"/queue/{name}")
        [error] = await wire.receive()
        assert error.command == "ERROR" and "limit is 2" in error.body.decode()

    run(scenario)
