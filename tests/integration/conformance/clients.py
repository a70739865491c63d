"""The conformance client: stomp.py with a collecting listener and bounded waits."""

from __future__ import annotations

import contextlib
import queue
import time
from dataclasses import dataclass
from typing import Any

import pytest
import stomp
from stomp.utils import Frame as StompPyFrame


@dataclass(frozen=True)
class Target:
    """A broker under test, as a stomp.py client reaches it."""

    kind: str  # "embedded", "activemq" or "rabbitmq"
    host: str
    port: int
    login: str | None = None
    passcode: str | None = None

    def differs(self, reasons: dict[str, str]) -> None:
        """Skip with the documented reason where this broker's semantics differ."""
        if self.kind in reasons:
            pytest.skip(f"documented difference ({self.kind}): {reasons[self.kind]}")

    def client(self, **kwargs: Any) -> Client:
        return Client(self, **kwargs)


class _Collector(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: queue.Queue[StompPyFrame] = queue.Queue()
        self.errors: queue.Queue[StompPyFrame] = queue.Queue()
        self.receipts: queue.Queue[str] = queue.Queue()
        self.connected_headers: dict[str, str] = {}

    def on_connected(self, frame: StompPyFrame) -> None:
        self.connected_headers = dict(frame.headers)

    def on_message(self, frame: StompPyFrame) -> None:
        self.messages.put(frame)

    def on_error(self, frame: StompPyFrame) -> None:
        self.errors.put(frame)

    def on_receipt(self, frame: StompPyFrame) -> None:
        self.receipts.put(frame.headers["receipt-id"])


class Client:
    """A stomp.py connection that collects what arrives, with bounded waits."""

    def __init__(
        self,
        target: Target,
        *,
        version: str = "1.2",
        client_id: str | None = None,
        heartbeats: tuple[int, int] = (0, 0),
    ) -> None:
        cls = {"1.1": stomp.Connection11, "1.2": stomp.Connection12}[version]
        # RabbitMQ reads the host header as its virtual host.
        vhost = "/" if target.kind == "rabbitmq" else None
        self.conn = cls([(target.host, target.port)], heartbeats=heartbeats, vhost=vhost)
        self.events = _Collector()
        self.conn.set_listener("conformance", self.events)
        headers = {"client-id": client_id} if client_id else {}
        self.conn.connect(target.login, target.passcode, wait=True, headers=headers)

    def messages(self, count: int, timeout: float = 10.0) -> list[StompPyFrame]:
        deadline = time.monotonic() + timeout
        got: list[StompPyFrame] = []
        while len(got) < count:
            try:
                got.append(self.events.messages.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {count} messages in {timeout}s") from None
        return got

    def quiet(self, wait: float = 0.7) -> list[StompPyFrame]:
        """Whatever arrives within ``wait`` seconds (used to show nothing does)."""
        time.sleep(wait)
        got: list[StompPyFrame] = []
        while not self.events.messages.empty():
            got.append(self.events.messages.get())
        return got

    def error(self, timeout: float = 10.0) -> StompPyFrame:
        try:
            return self.events.errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no ERROR frame within {timeout}s") from None

    def receipt(self, receipt_id: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.events.receipts.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError(f"no RECEIPT {receipt_id} within {timeout}s") from None
            if got == receipt_id:
                return

    def close(self) -> None:
        if self.conn.is_connected():
            # A broker that sent ERROR may close the socket under us (the embedded one
            # does, as the spec asks): the DISCONNECT then has nowhere to go.
            with contextlib.suppress(OSError, stomp.exception.StompException):
                self.conn.disconnect(receipt="bye")
