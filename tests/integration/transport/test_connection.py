"""Connection and failover against a real ActiveMQ and against scripted fake peers."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from msgbus.config import ConnectionConfig
from msgbus.errors import (
    AuthenticationError,
    BrokerError,
    ConnectError,
    ConnectionLost,
    TimeoutException,
)
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.failover import connect_first
from msgbus.transport.url import BrokerURL
from tests.fixtures.activemq import ActiveMQ, BrokerFactory


def _settings(*urls: str, **kwargs: object) -> ConnectionConfig:
    return ConnectionConfig.model_validate({"brokers": list(urls), **kwargs})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake_peer() -> Iterator[Callable[[bytes | None], int]]:
    """A one-connection TCP peer: answers the first read with ``reply`` (None: never),
    then stays silent without closing. Returns its port."""
    servers: list[socket.socket] = []
    held: list[socket.socket] = []

    def start(reply: bytes | None) -> int:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        servers.append(srv)

        def serve() -> None:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return int(srv.getsockname()[1])

    yield start
    for s in servers + held:
        s.close()


def test_send_subscribe_ack_round_trip(activemq: ActiveMQ) -> None:
    queue = f"/queue/test.transport.{uuid.uuid4().hex}"
    with Connection(BrokerURL.model_validate(activemq.stomp_url)) as conn:
        assert conn.version == "1.2"
        conn.subscribe(queue, id="s1", ack="client-individual")
        for i in range(50):
            conn.send(queue, f"m{i}\0with nul".encode(), {"n": str(i), "odd:key": "a\nb"})
        got: list[MessageFrame] = []
        while len(got) < 50:
            frame = conn.receive(10)
            assert isinstance(frame, MessageFrame)
            got.append(frame)
        conn.ack(got)
        assert [f.headers["n"] for f in got] == [str(i) for i in range(50)]
        assert got[7].body == b"m7\0with nul"
        assert got[0].headers["odd:key"] == "a\nb"
    # Acked: a new session on the same queue receives nothing.
    with Connection(BrokerURL.model_validate(activemq.stomp_url)) as conn:
        conn.subscribe(queue, id="s2", ack="client-individual")
        assert conn.receive(1.0) is None


def test_heartbeats_keep_an_idle_connection_alive(activemq: ActiveMQ) -> None:
    settings = _settings(activemq.stomp_url, heartbeat_ms=(300, 300))
    conn = connect_first(settings)
    try:
        # The caller is "busy" for many heart-beat periods: the I/O thread keeps the link up.
        time.sleep(3)
        assert conn.connected
        queue = f"/queue/test.hb.{uuid.uuid4().hex}"
        conn.send(queue, b"x", receipt="r1")
        conn.wait_for_receipt("r1", 5)
    finally:
        conn.disconnect()


def test_failover_skips_a_refusing_broker(activemq: ActiveMQ) -> None:
    dead = f"stomp://127.0.0.1:{_closed_port()}"
    conn = connect_first(_settings(dead, activemq.stomp_url, connect_timeout=2))
    try:
        assert conn.url.port == activemq.port
    finally:
        conn.disconnect()


def test_no_broker_reachable_names_each_attempt() -> None:
    a, b = _closed_port(), _closed_port()
    with pytest.raises(ConnectError) as info:
        connect_first(_settings(f"stomp://127.0.0.1:{a}", f"stomp://127.0.0.1:{b}"))
    text = str(info.value)
    assert f":{a}" in text and f":{b}" in text and "cannot connect" in text


def test_connect_times_out_on_a_silent_peer(fake_peer: Callable[[bytes | None], int]) -> None:
    port = fake_peer(None)
    conn = Connection(
        BrokerURL(host="127.0.0.1", port=port), _settings("stomp://x", connect_timeout=0.5)
    )
    started = time.monotonic()
    with pytest.raises(TimeoutException, match="did not answer CONNECT"):
        conn.connect()
    assert time.monotonic() - started < 3


def test_peer_that_stops_heartbeating_is_detected(fake_peer: Callable[[bytes | None], int]) -> None:
    port = fake_peer(b"CONNECTED\nversion:1.2\nheart-beat:200,200\n\n\0")
    conn = Connection(
        BrokerURL(host="127.0.0.1", port=port), _settings("stomp://x", heartbeat_ms=(200, 200))
    )
    conn.connect()
    with pytest.raises(ConnectionLost, match="heart-beat"):
        conn.receive(5)
    assert not conn.connected


def test_receipt_and_disconnect_waits_are_bounded(fake_peer: Callable[[bytes | None], int]) -> None:
    port = fake_peer(b"CONNECTED\nversion:1.2\n\n\0")
    conn = Connection(
        BrokerURL(host="127.0.0.1", port=port), _settings("stomp://x", heartbeat_ms=(0, 0))
    )
    conn.connect()
    conn.send("/queue/x", b"body", receipt="never")
    with pytest.raises(TimeoutException, match="no receipt never"):
        conn.wait_for_receipt("never", 0.3)
    started = time.monotonic()
    conn.disconnect(timeout=0.3)
    assert time.monotonic() - started < 2
    assert not conn.connected
    with pytest.raises(ConnectionLost):
        conn.send("/queue/x", b"late")


def test_login_refused_is_one_clear_error(activemq_broker_factory: BrokerFactory) -> None:
    broker = activemq_broker_factory(authentication=True)
    bad = f"stomp://admin:wrong@127.0.0.1:{broker.port}"
    with pytest.raises(AuthenticationError, match="refused the login: User name"):
        Connection(BrokerURL.model_validate(bad)).connect()
    good = f"stomp://admin:admin@127.0.0.1:{broker.port}"
    with Connection(BrokerURL.model_validate(good)) as conn:
        assert conn.connected


def test_broker_error_surfaces_on_the_waiting_call(activemq: ActiveMQ) -> None:
    with (
        Connection(BrokerURL.model_validate(activemq.stomp_url)) as conn,
        pytest.raises(BrokerError),
    ):
        # ActiveMQ rejects an ACK for a message it never delivered with an ERROR frame.
        conn.write_frames([conn.ack_frame(MessageFrame({"ack": "no-such-ack"}))])
        conn.wait_for_receipt("whatever", 5)
