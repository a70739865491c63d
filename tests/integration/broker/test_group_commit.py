"""Persistent SENDs from many connections at once (issue 25): the store commits them in
groups, and what it holds unwritten stays under ``limits.max_unwritten_bytes`` however
much the clients write, every message confirmed once written and stored once. Counted
(commits, bytes, messages), not timed; real sockets to a listening broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from msgbus.broker import BrokerConfig, BrokerLimits, EmbeddedBroker
from msgbus.stomp import HeartBeats, StompSession, make_frame
from msgbus.stomp.frames import Frame, SendFrame


class _Client(asyncio.Protocol):
    """Connects, writes all its SENDs at once, and keeps the frames it gets."""

    def __init__(self) -> None:
        self.stomp = StompSession("client")
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.frames: list[Frame] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            self.stomp.encode(self.stomp.connect_frame(host="localhost", heartbeats=HeartBeats()))
        )

    def data_received(self, data: bytes) -> None:
        self.frames += [e for e in self.stomp.receive_data(data) if isinstance(e, Frame)]
        if self.frames and not self.connected.done():
            self.connected.set_result(None)

    def of(self, command: str) -> list[Frame]:
        return [f for f in self.frames if f.command == command]

    @property
    def receipts(self) -> list[str]:
        return [f.headers["receipt-id"] for f in self.of("RECEIPT")]

    def write(self, frame: Frame) -> None:
        assert self.transport is not None
        self.transport.write(self.stomp.encode(frame))


async def _connect(port: int) -> _Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(_Client, "127.0.0.1", port)
    await asyncio.wait_for(client.connected, 10)
    return client


async def _flood(
    broker: EmbeddedBroker, connections: int, each: int, size: int
) -> tuple[list[_Client], Counter[bytes]]:
    """Every connection writes ``each`` persistent SENDs with receipts at once; returns
    the clients once all receipts came, and how often each body was delivered."""
    assert broker.port is not None
    consumer = await _connect(broker.port)
    consumer.write(make_frame("SUBSCRIBE", {"destination": "/queue/flood", "id": "s"}))
    clients = [await _connect(broker.port) for _ in range(connections)]
    for n, client in enumerate(clients):
        for i in range(each):
            body = b"%05d-%05d-" % (n, i) + b"x" * size
            headers = {"destination": "/queue/flood", "persistent": "true", "receipt": f"{i}"}
            client.write(SendFrame(headers, body))
    total = connections * each
    for _ in range(600):
        if sum(len(c.receipts) for c in clients) >= total and len(consumer.of("MESSAGE")) >= total:
            break
        await asyncio.sleep(0.1)
    delivered = Counter(m.body[:12] for m in consumer.of("MESSAGE"))
    for client in [consumer, *clients]:
        assert client.transport is not None
        client.transport.close()
    return clients, delivered


def test_persistent_sends_of_many_connections_share_commits(tmp_path: Path) -> None:
    connections, each = 100, 20

    async def scenario() -> None:
        async with EmbeddedBroker(BrokerConfig(port=0, data_dir=tmp_path)) as broker:
            before = broker.store.commits
            clients, delivered = await _flood(broker, connections, each, 200)
            commits = broker.store.commits - before
        assert [c.of("ERROR") for c in clients if c.of("ERROR")] == []
        assert all(c.receipts == [str(i) for i in range(each)] for c in clients)
        assert len(delivered) == connections * each and set(delivered.values()) == {1}
        # One commit per frame would be 2,000 (and more with the consumer's deletes).
        assert commits <= connections * each / 10, commits

    asyncio.run(scenario())


def test_a_flood_is_held_at_the_unwritten_bound(tmp_path: Path) -> None:
    connections, each, size = 100, 40, 2000
    bound = 64 << 10
    limits = BrokerLimits(max_unwritten_bytes=bound, flow_control_wait=60)

    async def scenario() -> None:
        config = BrokerConfig(port=0, data_dir=tmp_path, limits=limits)
        async with EmbeddedBroker(config) as broker:
            clients, delivered = await _flood(broker, connections, each, size)
            peak, unwritten = broker.store.peak_unwritten, broker.store.unwritten
        assert [c.of("ERROR") for c in clients if c.of("ERROR")] == []
        assert all(c.receipts == [str(i) for i in range(each)] for c in clients)
        assert len(delivered) == connections * each and set(delivered.values()) == {1}
        # 8 MB written at once; held to the bound plus the one frame that crossed it.
        assert bound <= peak <= bound + size + 1024, peak
        assert unwritten == 0

    asyncio.run(scenario())
