"""Raw-socket STOMP clients on the sans-IO codec: the load generator and baseline.

No client library, no threads, no per-message objects on the send path: frames are
pre-encoded and written with ``sendall`` in batches. That makes these the fastest a
Python client can talk to a broker, hence the baseline other benchmarks compare with.

* ``raw_send``: SEND ``count`` messages, with a receipt on each (pipelined within a
  window), on the last one only, or none.
* ``raw_drain``: SUBSCRIBE with ack:auto and count MESSAGE frames.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from msgbus.errors import BrokerError, ConnectError, ConnectionLost, MsgbusError, TimeoutException
from msgbus.stomp import HeartBeats, StompSession, serialize
from msgbus.stomp.frames import DisconnectFrame, Frame, SendFrame, SubscribeFrame

__all__ = ["RawClient", "RunResult", "raw_drain", "raw_send", "subscribe"]

Receipts = Literal["each", "last", "none"]
_BATCH = 64  # frames per sendall when nothing has to be awaited


@dataclass(frozen=True)
class RunResult:
    """``count`` messages between ``started`` and ``finished`` (time.monotonic())."""

    count: int
    started: float
    finished: float

    @property
    def rate(self) -> float:
        return self.count / max(self.finished - self.started, 1e-9)


class RawClient:
    """One STOMP 1.2 connection over a plain socket."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        login: str | None = None,
        passcode: str | None = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._headers = headers or {}
        self._login, self._passcode = login, passcode
        self._timeout = timeout
        self.stomp = StompSession("client")
        self.sock: socket.socket | None = None

    def connect(self) -> RawClient:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to {self.host}:{self.port}: {exc}; is the broker running?"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock = sock
        connect = self.stomp.connect_frame(
            host=self.host,
            heartbeats=HeartBeats(),
            login=self._login,
            passcode=(self._passcode or "") if self._login is not None else None,
        )
        connect.headers.update(self._headers)
        try:
            self.send_bytes(self.stomp.encode(connect))
            frame = self.next_frame()
        except MsgbusError as exc:
            self.close()
            raise ConnectError(f"{self.host}:{self.port} refused the connection: {exc}") from None
        if frame.command != "CONNECTED":
            self.close()
            raise ConnectError(f"{self.host}:{self.port} refused the connection: {frame.headers}")
        return self

    def send_bytes(self, data: bytes) -> None:
        assert self.sock is not None, "connect() first"
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ConnectionLost(f"sending to {self.host}:{self.port} failed: {exc}") from None

    def read(self) -> list[Frame]:
        """Block for the next bytes; return the frames they completed (ERROR raises)."""
        assert self.sock is not None, "connect() first"
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            raise TimeoutException(
                f"{self.host}:{self.port} sent nothing for {self._timeout}s"
            ) from None
        except OSError as exc:
            raise ConnectionLost(f"reading from {self.host}:{self.port} failed: {exc}") from None
        if not data:
            raise ConnectionLost(f"{self.host}:{self.port} closed the connection")
        frames = [e for e in self.stomp.receive_data(data) if isinstance(e, Frame)]
        for frame in frames:
            if frame.command == "ERROR":
                raise BrokerError(
                    f"broker error: {frame.headers.get('message', '')}",
                    headers=frame.headers,
                    body=frame.body,
                )
        return frames

    def next_frame(self) -> Frame:
        while True:
            frames = self.read()
            if frames:
                return frames[0]

    def close(self) -> None:
        if self.sock is not None:
            # Already gone: nothing left to tell the broker.
            with contextlib.suppress(OSError):
                self.sock.sendall(serialize(DisconnectFrame()))
            self.sock.close()
            self.sock = None

    def __enter__(self) -> RawClient:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_SEQ = "\x01"


def _encode_send(
    destination: str, body: bytes, persistent: bool, receipt: str | None, id_header: str | None
) -> bytes:
    headers = {"destination": destination}
    if persistent:
        headers["persistent"] = "true"
    if id_header is not None:
        # Unique across runs, as long as the Publisher's ids; _numbered() splits at the
        # placeholder (a control character no header here has; NUL may not be sent).
        headers[id_header] = f"{uuid.uuid4().hex[:20]}-{_SEQ}"
    if receipt is not None:
        headers["receipt"] = receipt
    return serialize(SendFrame(headers, body))


def _numbered(frame: bytes) -> tuple[bytes, bytes]:
    """``frame`` split at its placeholder (in the headers, before any body byte)."""
    head, tail = frame.split(_SEQ.encode(), 1)
    return head, tail


def raw_send(
    client: RawClient,
    destination: str,
    count: int,
    body: bytes,
    *,
    persistent: bool = False,
    receipts: Receipts = "none",
    window: int = 1000,
    id_header: str | None = None,
) -> RunResult:
    """SEND ``count`` copies of ``body``; returns when all requested receipts are in.

    With ``id_header`` every SEND carries that header with a value of its own (as the
    publisher's ``msgbus-id``), else all frames are the same bytes.
    """
    started = time.monotonic()
    if receipts == "each":
        # Pipelined: up to ``window`` receipts outstanding, so the broker can batch.
        # Encode once around a placeholder for the receipt id, then splice ids in (the id
        # header, if any, takes the same number).
        head, tail = _numbered(_encode_send(destination, body, persistent, _SEQ, id_header))
        if id_header is not None:
            middle, tail = _numbered(tail)
        acked = sent = 0
        while acked < count:
            burst: list[bytes] = []
            while sent < count and sent - acked < window and len(burst) < _BATCH:
                if id_header is None:
                    burst.append(b"%s%d%s" % (head, sent, tail))
                else:
                    burst.append(b"%s%d%s%d%s" % (head, sent, middle, sent, tail))
                sent += 1
            if burst:
                client.send_bytes(b"".join(burst))
            if sent - acked >= window or sent == count:
                acked += sum(1 for f in client.read() if f.command == "RECEIPT")
        return RunResult(count, started, time.monotonic())
    last = count if receipts == "none" else count - 1
    if id_header is None:
        plain = _encode_send(destination, body, persistent, None, None)
        for start in range(0, last, _BATCH):
            client.send_bytes(plain * min(_BATCH, last - start))
    else:
        head, tail = _numbered(_encode_send(destination, body, persistent, None, id_header))
        for start in range(0, last, _BATCH):
            end = min(start + _BATCH, last)
            client.send_bytes(b"".join([b"%s%d%s" % (head, i, tail) for i in range(start, end)]))
    if receipts == "last" and count:
        final = _encode_send(destination, body, persistent, "last", id_header)
        client.send_bytes(final.replace(_SEQ.encode(), b"last", 1) if id_header else final)
        while not any(f.command == "RECEIPT" for f in client.read()):
            pass
    return RunResult(count, started, time.monotonic())


def subscribe(client: RawClient, destination: str, *, prefetch: int = 1000) -> int:
    """SUBSCRIBE with ack:auto and wait for the broker to confirm it.

    Returns how many MESSAGE frames arrived before the receipt (a queue that already
    holds messages delivers them at once); pass that to ``raw_drain`` as ``seen``.
    """
    client.send_bytes(
        serialize(
            SubscribeFrame(
                {
                    "destination": destination,
                    "id": "drain",
                    "ack": "auto",
                    "activemq.prefetchSize": str(prefetch),
                    "receipt": "subscribed",
                }
            )
        )
    )
    seen = 0
    while True:
        frames = client.read()
        seen += sum(1 for f in frames if f.command == "MESSAGE")
        if any(f.command == "RECEIPT" for f in frames):
            return seen


def raw_drain(client: RawClient, count: int, *, seen: int = 0) -> RunResult:
    """Count MESSAGE frames on an existing subscription (see ``subscribe``) up to ``count``."""
    started = time.monotonic()
    while seen < count:
        seen += sum(1 for f in client.read() if f.command == "MESSAGE")
    return RunResult(seen, started, time.monotonic())
