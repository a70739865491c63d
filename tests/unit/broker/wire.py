"""In-memory client <-> broker wiring for unit tests (in the spirit of h11's helpers).

A ``Wire`` is a client speaking to a real broker ``Session`` through a fake transport:
frames go in through ``data_received``, and what the session writes is parsed back
with the same sans-IO codec. No sockets, but the event loop runs, because sessions
batch their writes with ``call_soon``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from msgbus.broker import BrokerConfig, EmbeddedBroker
from msgbus.broker.session import Session
from msgbus.stomp import FrameParser, make_frame, serialize
from msgbus.stomp.frames import Frame


class FakeTransport(asyncio.Transport):
    """Collects what the session writes; closing reports connection_lost like asyncio."""

    def __init__(self, protocol: Session) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return False  # the session closes at once after ERROR, as on a TLS transport

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class Wire:
    """One in-memory client connection to ``broker``."""

    def __init__(self, broker: EmbeddedBroker, version: str = "1.2") -> None:
        self.version = version
        self.session = Session(broker)
        self.transport = FakeTransport(self.session)
        self.session.connection_made(self.transport)
        self.parser = FrameParser(role="client", version=version)
        self.frames: list[Frame] = []

    def send(self, command: str, body: bytes = b"", /, **headers: str) -> None:
        """Deliver one frame to the session (header names with '_' become '-')."""
        names = {k.replace("_", "-"): v for k, v in headers.items()}
        self.send_bytes(serialize(make_frame(command, names, body), self.version))

    def send_bytes(self, data: bytes) -> None:
        self.session.data_received(data)

    async def receive(self) -> list[Frame]:
        """Run the loop until the session has flushed; return the new frames."""
        for _ in range(5):
            await asyncio.sleep(0)
        data = bytes(self.transport.written)
        self.transport.written.clear()
        new = [e for e in self.parser.feed(data) if isinstance(e, Frame)]
        self.frames += new
        return new

    async def connect(self, **headers: str) -> Frame:
        self.send("CONNECT", accept_version=self.version, host="localhost", **headers)
        [connected] = await self.receive()
        return connected


async def open_broker(**config: Any) -> EmbeddedBroker:
    """A broker with its destinations loaded but no listener (memory-only by default)."""
    broker = EmbeddedBroker(BrokerConfig(**config))
    broker.open(asyncio.get_running_loop())
    return broker
