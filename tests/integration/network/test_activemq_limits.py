"""The rendered limits hold on a real ActiveMQ: an oversized STOMP frame is refused while the
broker keeps serving a normal client."""

from __future__ import annotations

import contextlib
import socket
import uuid

from msgbus.network.topology import BrokerLimits
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.activemq import ActiveMQ


def _refused(sock: socket.socket) -> bytes:
    """What the broker answers until it closes (ERROR frame bytes, or nothing); a broker
    that keeps the connection open times out and fails the test."""
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def test_frame_over_the_rendered_max_is_refused_and_the_broker_keeps_serving(
    activemq: ActiveMQ,
) -> None:
    limit = BrokerLimits().max_frame_bytes
    queue = f"/queue/limits-{uuid.uuid4().hex}"
    with socket.create_connection((activemq.host, activemq.port), timeout=20) as sock:
        sock.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
        connected = sock.recv(65536)
        assert connected.startswith(b"CONNECTED") and b"server:ActiveMQ" in connected
        body = b"x" * (limit + 1024)
        head = f"SEND\ndestination:{queue}\ncontent-length:{len(body)}\n\n".encode()
        # The broker may close mid-frame: that is the refusal.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body + b"\x00")
        answer = _refused(sock)
    assert answer == b"" or answer.startswith(b"ERROR"), answer[:200]

    conn = Connection(BrokerURL.model_validate(activemq.stomp_url))
    conn.connect()
    try:
        conn.subscribe(queue, id="s1")
        conn.send(queue, b"small")
        frame = conn.receive(10.0)
        assert isinstance(frame, MessageFrame), frame
        assert frame.body == b"small"  # the oversized one was not queued
    finally:
        conn.disconnect()
