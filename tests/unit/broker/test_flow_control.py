"""Producer flow control, receipts owed before an ERROR, and a store that cannot write
(issue 24): the broker slows producers where the cause passes and says so."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from msgbus.broker import BrokerLimits
from msgbus.broker.store import MessageStore
from msgbus.stomp import make_frame, serialize
from msgbus.stomp.frames import Frame
from tests.unit.broker.wire import Wire, open_broker


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


async def connected(broker: Any) -> Wire:
    wire = Wire(broker)
    assert (await wire.connect()).command == "CONNECTED"
    return wire


def commands(frames: list[Frame]) -> list[str]:
    return [f.command for f in frames]


def test_a_full_queue_holds_the_producer_until_a_consumer_makes_room() -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=BrokerLimits(max_queue_depth=2))
        producer = await connected(broker)
        for i in range(5):
            producer.send("SEND", b"%d" % i, destination="/queue/q", receipt=str(i))
        assert commands(await producer.receive()) == ["RECEIPT", "RECEIPT"]
        assert not producer.transport.reading  # flow control: its socket is not read
        consumer = await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/q", id="s", ack="client-individual")
        for _ in range(3):
            for message in [f for f in await consumer.receive() if f.command == "MESSAGE"]:
                consumer.send("ACK", id=message.headers["ack"])
        assert [f.body for f in consumer.frames if f.command == "MESSAGE"] == [
            b"0",
            b"1",
            b"2",
            b"3",
            b"4",
        ]
        frames = await producer.receive()
        assert [f.headers["receipt-id"] for f in frames] == ["2", "3", "4"]
        assert producer.transport.reading and not producer.transport.closed

    run(scenario)


def test_no_room_in_time_is_a_transient_refusal_naming_the_held_message() -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=BrokerLimits(max_queue_depth=1, flow_control_wait=0.05))
        producer = await connected(broker)
        producer.send("SEND", b"kept", destination="/queue/q", receipt="r1")
        producer.send("SEND", b"held", destination="/queue/q", receipt="r2")
        assert commands(await producer.receive()) == ["RECEIPT"]
        await asyncio.sleep(0.1)
        [error] = await producer.receive()
        assert error.command == "ERROR" and error.headers["receipt-id"] == "r2"
        assert error.headers["msgbus-transient"] == "true"
        assert "no room came within 0.05 s" in error.body.decode()
        assert broker.router.queues["/queue/q"].depth() == 1
        assert producer.transport.closed
        await asyncio.sleep(0)
        assert not broker.router.blocked  # the waiter went with the connection

    run(scenario)


def test_a_commit_waits_for_room_for_all_of_its_messages() -> None:
    async def scenario() -> None:
        broker = await open_broker(limits=BrokerLimits(max_queue_depth=3))
        producer = await connected(broker)
        producer.send("SEND", b"first", destination="/queue/tx", receipt="r")
        producer.send("SEND", b"second", destination="/queue/tx")
        producer.send("BEGIN", transaction="t")
        for body in (b"a", b"b"):
            producer.send("SEND", body, destination="/queue/tx", transaction="t")
        producer.send("COMMIT", transaction="t", receipt="c")
        assert commands(await producer.receive()) == ["RECEIPT"]  # "c" waits: 2 + 2 > 3
        assert broker.router.queues["/queue/tx"].depth() == 2
        consumer = await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/tx", id="s")  # auto ack: room
        await consumer.receive()
        [receipt] = await producer.receive()
        assert receipt.headers["receipt-id"] == "c"
        bodies = [f.body for f in consumer.frames + await consumer.receive() if f.body]
        assert bodies == [b"first", b"second", b"a", b"b"]

    run(scenario)


def test_a_commit_larger_than_the_limit_waits_for_an_empty_queue() -> None:
    """Its messages are in memory already: refused for good, a publisher's batch of
    2,048 could never go to a queue of 100 (each batch cost a reconnect to find out)."""

    async def scenario() -> None:
        broker = await open_broker(limits=BrokerLimits(max_queue_depth=3))
        producer = await connected(broker)
        producer.send("SEND", b"first", destination="/queue/big", receipt="r")
        producer.send("BEGIN", transaction="t")
        for i in range(5):
            producer.send("SEND", b"%d" % i, destination="/queue/big", transaction="t")
        producer.send("COMMIT", transaction="t", receipt="c")
        assert commands(await producer.receive()) == ["RECEIPT"]  # "c" waits
        consumer = await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/big", id="s", ack="client-individual")
        [first] = await consumer.receive()
        assert broker.router.queues["/queue/big"].depth() == 1  # unacked: not empty yet
        consumer.send("ACK", id=first.headers["ack"])
        await consumer.receive()
        [receipt] = await producer.receive()
        assert receipt.headers["receipt-id"] == "c"
        assert broker.router.queues["/queue/big"].depth() == 5

    run(scenario)


def test_receipts_owed_go_out_before_the_error(tmp_path: Path) -> None:
    """Persistent SENDs wait for the disk; a frame after them that earns an ERROR must not
    cost the client the receipts of what was stored (it would send them again)."""

    async def scenario() -> None:
        broker = await open_broker(data_dir=tmp_path)
        producer = await connected(broker)
        for i in range(3):
            producer.send(
                "SEND", b"%d" % i, destination="/queue/p", persistent="true", receipt=f"r{i}"
            )
        producer.send("SEND", b"nowhere", destination="/elsewhere/x", receipt="bad")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if producer.transport.closed:
                break
        frames = await producer.receive()
        assert [f.headers.get("receipt-id") for f in frames] == ["r0", "r1", "r2", "bad"]
        assert commands(frames) == ["RECEIPT", "RECEIPT", "RECEIPT", "ERROR"]
        await broker.store.close()

    run(scenario)


def test_a_full_store_refuses_persistent_sends_transiently_and_recovers(tmp_path: Path) -> None:
    """SQLite's page limit stands in for a full disk (the real one is on a tmpfs in
    tests/integration/broker/test_flow_control.py): the same SQLITE_FULL error."""

    async def scenario() -> None:
        broker = await open_broker(data_dir=tmp_path)
        store = broker.store
        db = store._db
        assert db is not None
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages}")
        producer = await connected(broker)
        big = b"x" * 20_000  # more than the pages left
        producer.send("SEND", big, destination="/queue/d", persistent="true", receipt="r1")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if producer.transport.closed:
                break
        [error] = await producer.receive()
        assert error.headers["receipt-id"] == "r1"
        assert error.headers["msgbus-transient"] == "true"
        assert error.headers["message"].startswith("disk full: writing the broker store")
        assert "database or disk is full" in error.body.decode()
        assert "rollback" not in error.body.decode()
        assert store.unwritten == 0  # dropped: no longer held against max_unwritten_bytes
        again = await connected(broker)
        again.send("SEND", b"y", destination="/queue/d", persistent="true", receipt="r2")
        [refused] = await again.receive()
        assert refused.headers["msgbus-transient"] == "true"
        assert refused.headers["message"].startswith("disk full")
        db.execute("PRAGMA max_page_count=1000000")  # space freed
        for _ in range(300):
            await asyncio.sleep(0.01)
            if store.failure is None:
                break
        assert store.failure is None  # recovered by itself, no restart
        third = await connected(broker)
        third.send("SEND", b"z", destination="/queue/d", persistent="true", receipt="r3")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if third.transport.written:
                break
        assert commands(await third.receive()) == ["RECEIPT"]
        await store.close()
        # The refused message is neither on disk nor in the queue: its sender sends it
        # again, no duplicate.
        assert store.path is not None
        with sqlite3.connect(store.path) as check:
            rows = [bytes(r[0]) for r in check.execute("SELECT body FROM messages ORDER BY seq")]
        assert rows == [b"z"]
        assert broker.router.queues["/queue/d"].depth() == 1

    run(scenario)


def test_a_message_delivered_before_its_row_failed_is_written_on_retry(tmp_path: Path) -> None:
    """A consumer already holds it, so the broker cannot take it back: its row is
    written once space returns (a redelivery after a restart must find it)."""

    async def scenario() -> None:
        broker = await open_broker(data_dir=tmp_path)
        store = broker.store
        db = store._db
        assert db is not None and store.path is not None
        consumer = await connected(broker)
        consumer.send("SUBSCRIBE", destination="/queue/held", id="s", ack="client-individual")
        await consumer.receive()
        db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
        producer = await connected(broker)
        body = b"x" * 20_000
        producer.send("SEND", body, destination="/queue/held", persistent="true", receipt="r")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if producer.transport.closed:
                break
        [error] = await producer.receive()
        assert error.headers["msgbus-transient"] == "true"
        assert [f.body for f in await consumer.receive()] == [body]
        db.execute("PRAGMA max_page_count=1000000")
        for _ in range(300):
            await asyncio.sleep(0.01)
            if store.failure is None:
                break
        await store.close()
        with sqlite3.connect(store.path) as check:
            rows = [bytes(r[0]) for r in check.execute("SELECT body FROM messages")]
        assert rows == [body]

    run(scenario)


def test_a_store_behind_holds_persistent_senders_and_lets_them_in_by_turns(
    tmp_path: Path,
) -> None:
    """Two producers each write 40 persistent SENDs in one read, 10 times what the store
    may hold unwritten: both are held (not read), and they are let in by turns as
    commits make room, so the second does not wait for all of the first."""

    async def scenario() -> None:
        limits = BrokerLimits(max_unwritten_bytes=64 << 10, flow_control_wait=30)
        broker = await open_broker(data_dir=tmp_path, limits=limits)
        producers = [await connected(broker) for _ in range(2)]
        for name, producer in zip("ab", producers, strict=True):
            producer.send_bytes(
                b"".join(
                    serialize(
                        make_frame(
                            "SEND",
                            {"destination": "/queue/q", "persistent": "true", "receipt": f"{i}"},
                            name.encode() + b"x" * 16_000,
                        ),
                        "1.2",
                    )
                    for i in range(40)
                )
            )
        assert not any(p.transport.reading for p in producers)
        for _ in range(200):
            if all(commands(p.frames)[1:] == ["RECEIPT"] * 40 for p in producers):
                break
            await asyncio.sleep(0.01)
            for producer in producers:
                await producer.receive()
        assert [commands(p.frames)[1:] for p in producers] == [["RECEIPT"] * 40] * 2
        assert all(p.transport.reading for p in producers)
        order = [m.body[:1] for m in broker.router.queues["/queue/q"].ready]
        assert sorted(order) == [b"a"] * 40 + [b"b"] * 40
        # By turns: neither goes on long while the other waits (a commit makes room for ~5).
        runs = [len(list(run)) for _, run in itertools.groupby(order)]
        assert max(runs) <= 10, runs
        assert broker.store.peak_unwritten <= (64 << 10) + 17_000
        await broker.store.close()

    run(scenario)


def test_a_callback_that_raises_after_a_commit_stops_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One connection's fault in its receipt callback costs that connection: the other
    receipts of the commit go, and the held producers are let in (``room``)."""

    async def scenario() -> None:
        store = MessageStore(tmp_path / "broker.sqlite")
        store.open(asyncio.get_running_loop())
        answered: list[bool] = []
        rooms: list[None] = []
        store.room = lambda: rooms.append(None)

        def broken(ok: bool) -> None:
            raise OSError(107, "Transport endpoint is not connected")

        store.insert("/queue/q", {}, b"x", 0)
        store.when_durable(broken)
        store.when_durable(answered.append)
        await asyncio.wait_for(store.close(), 10)  # waited forever for the idle store
        assert (answered, rooms) == ([True], [None])

    run(scenario)
    assert "a callback after a commit of the broker store failed" in caplog.text
