"""A RECEIPT for a persistent SEND (or for a COMMIT of persistent SENDs) means stored,
also while the store holds producers back (``max_unwritten_bytes``), refuses those held
past ``flow_control_wait`` ("broker busy") and clients drop their connections mid-hold.
Checked for every receipt when it arrives (its row is committed in the broker's SQLite
file) and after the flood (every receipted message delivered exactly once, nothing
refused delivered, nothing received lost). Real sockets to a listening broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from msgbus.broker import BrokerConfig, BrokerLimits, EmbeddedBroker
from msgbus.broker.store import MessageStore
from msgbus.stomp import HeartBeats, StompSession, make_frame
from msgbus.stomp.frames import Frame, SendFrame

_QUEUE = "/queue/burst"
_SIZE = 2000  # bytes of padding per message: 64 KiB unwritten is ~30 messages


class _Site(asyncio.Protocol):
    """Writes its frames at once; checks each RECEIPT against the committed rows."""

    def __init__(self, rows: sqlite3.Connection) -> None:
        self.rows = rows
        self.stomp = StompSession("client")
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.covers: dict[str, list[str]] = {}  # receipt -> the message ids it confirms
        self.confirmed: list[str] = []
        self.unstored: list[str] = []  # confirmed, not committed when the RECEIPT came
        self.refused: list[str] = []  # receipt-ids of ERROR frames
        self.frames: list[Frame] = []
        self.cut = False  # dropped its connection itself

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        connect = self.stomp.connect_frame(host="localhost", heartbeats=HeartBeats())
        transport.write(self.stomp.encode(connect))

    def data_received(self, data: bytes) -> None:
        for event in self.stomp.receive_data(data):
            if not isinstance(event, Frame):
                continue
            self.frames.append(event)
            if event.command == "CONNECTED":
                self.connected.set_result(None)
            elif event.command == "RECEIPT":
                ids = self.covers.get(event.headers["receipt-id"], [])
                self.confirmed += ids
                self.unstored += [i for i in ids if not _committed(self.rows, i)]
            elif event.command == "ERROR" and "receipt-id" in event.headers:
                self.refused += self.covers.get(event.headers["receipt-id"], [])

    def send(self, msg_id: str, tx: str | None = None) -> None:
        headers = {"destination": _QUEUE, "persistent": "true", "msg": msg_id}
        if tx is None:
            headers["receipt"] = msg_id
            self.covers[msg_id] = [msg_id]
        else:
            headers["transaction"] = tx
            self.covers.setdefault(tx, []).append(msg_id)
        self.write(SendFrame(headers, msg_id.encode() + b" " + b"x" * _SIZE))

    def write(self, frame: Frame) -> None:
        assert self.transport is not None
        self.transport.write(self.stomp.encode(frame))


def _committed(rows: sqlite3.Connection, msg_id: str) -> bool:
    found = rows.execute(
        "SELECT 1 FROM messages WHERE json_extract(headers, '$.msg') = ?", (msg_id,)
    ).fetchone()
    return found is not None


async def _connect(port: int, rows: sqlite3.Connection) -> _Site:
    _, site = await asyncio.get_running_loop().create_connection(
        lambda: _Site(rows), "127.0.0.1", port
    )
    await asyncio.wait_for(site.connected, 10)
    return site


async def _flood(port: int, rows: sqlite3.Connection, sites: int, each: int) -> list[_Site]:
    """Every site writes ``each`` persistent SENDs at once (every third one in a
    transaction, with a receipt on its COMMIT); every fifth drops its connection while
    held. Returns once nothing has come back for a second."""
    clients = [await _connect(port, rows) for _ in range(sites)]
    for n, site in enumerate(clients):
        if n % 3 == 2:
            site.write(make_frame("BEGIN", {"transaction": f"t{n}"}))
        for i in range(each):
            site.send(f"{n:03d}-{i:03d}", f"t{n}" if n % 3 == 2 else None)
        if n % 3 == 2:
            site.write(make_frame("COMMIT", {"transaction": f"t{n}", "receipt": f"t{n}"}))
    await asyncio.sleep(0.02)
    for site in clients[::5]:
        assert site.transport is not None
        site.transport.abort()  # a site cut off: the broker holds frames of it
        site.cut = True
    seen = -1
    while seen != (seen := sum(len(s.frames) for s in clients)):
        await asyncio.sleep(1.0)
    for site in clients:
        if site.transport is not None:
            site.transport.abort()
    return clients


async def _drain(port: int, rows: sqlite3.Connection) -> Counter[str]:
    consumer = await _connect(port, rows)
    consumer.write(make_frame("SUBSCRIBE", {"destination": _QUEUE, "id": "s"}))
    seen = -1
    while seen != (seen := len(consumer.frames)):
        await asyncio.sleep(0.5)
    assert consumer.transport is not None
    consumer.transport.close()
    return Counter(f.headers["msg"] for f in consumer.frames if f.command == "MESSAGE")


def test_every_receipt_under_flow_control_means_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A slow disk (30 ms a commit) in a flood of 75 commits' worth, 4 connections let
    # in per commit: most wait past 0.2 s at some turn and are refused, after or before
    # some of their messages were confirmed, whatever the machine's own disk does.
    commit = MessageStore._commit

    def slow_commit(store: MessageStore) -> None:
        time.sleep(0.03)
        commit(store)

    monkeypatch.setattr(MessageStore, "_commit", slow_commit)
    limits = BrokerLimits(max_unwritten_bytes=64 << 10, flow_control_wait=0.2)
    config = BrokerConfig(port=0, data_dir=tmp_path, limits=limits)

    raised: list[str] = []  # by the broker's callbacks, which the loop only logs

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: raised.append(
                f"{context.get('handle')}: {context.get('exception')!r}"
            )
        )
        async with EmbeddedBroker(config) as broker:
            assert broker.port is not None
            with contextlib.closing(sqlite3.connect(tmp_path / "broker.sqlite")) as rows:
                clients = await _flood(broker.port, rows, 60, 40)
                delivered = await _drain(broker.port, rows)
            received, out = broker.router.received, broker.router.delivered
            left = broker.router.queues[_QUEUE].depth()
        confirmed = [i for s in clients for i in s.confirmed]
        refused = [i for s in clients for i in s.refused]
        # What the scenario must go through to mean anything: refusals and confirmations.
        assert refused and len(confirmed) > 100, (len(refused), len(confirmed))
        assert [i for s in clients for i in s.unstored] == []
        assert {i: n for i, n in delivered.items() if n != 1} == {}
        # A site that stayed got every receipt owed for what was stored, before its ERROR.
        unanswered = [
            i
            for n, site in enumerate(clients)
            if not site.cut
            for i in delivered
            if i.startswith(f"{n:03d}-") and i not in site.confirmed
        ]
        assert unanswered == []
        assert [i for i in confirmed if i not in delivered] == []
        assert [i for i in refused if i in delivered] == []
        assert (received, left) == (out, 0)
        # A callback that raised stops what runs after it (other connections' receipts,
        # the next commit, letting the held in), whether the loop or the store logs it.
        assert raised == []
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

    asyncio.run(scenario())
