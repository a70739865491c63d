"""The ActiveMQ fixtures run real brokers: STOMP round trips and restart with persistence."""

from __future__ import annotations

import uuid

import pytest

from msgbus.errors import ConnectError
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.activemq import ActiveMQ, BrokerFactory


def _connect(url: str) -> Connection:
    conn = Connection(BrokerURL.model_validate(url))
    conn.connect()
    return conn


def _messages(conn: Connection, count: int, timeout: float = 10.0) -> list[MessageFrame]:
    got: list[MessageFrame] = []
    while len(got) < count:
        frame = conn.receive(timeout)
        if frame is None:
            break
        assert isinstance(frame, MessageFrame), frame
        got.append(frame)
    return got


def test_send_subscribe_round_trip(activemq: ActiveMQ) -> None:
    assert activemq.stomp_url == f"stomp://127.0.0.1:{activemq.port}"
    dest = f"/queue/test.roundtrip.{uuid.uuid4().hex}"
    conn = _connect(activemq.stomp_url)
    try:
        conn.subscribe(dest, id="1")
        conn.send(dest, b"hello grid", {"probe": "check_x"})
        [frame] = _messages(conn, 1)
        assert frame.body == b"hello grid"
        assert frame.headers["probe"] == "check_x"
        assert frame.headers["destination"] == dest
    finally:
        conn.disconnect()


def test_persistent_messages_survive_kill_and_restart(
    activemq_broker_factory: BrokerFactory,
) -> None:
    broker = activemq_broker_factory("persist")
    port, data = broker.port, broker.data_dir
    dest = "/queue/test.persist"
    conn = _connect(broker.stomp_url)
    for i in range(20):
        conn.send(dest, f"m{i}".encode(), {"persistent": "true"}, receipt=f"r{i}")
    for i in range(20):
        # A receipt for a persistent SEND means the broker has it on disk.
        conn.wait_for_receipt(f"r{i}", 10.0)
    conn.disconnect()

    broker.kill()
    assert not broker.is_running()
    broker.start()
    assert (broker.port, broker.data_dir) == (port, data)

    conn = _connect(broker.stomp_url)
    try:
        conn.subscribe(dest, id="1")
        got = [m.body for m in _messages(conn, 20)]
        assert got == [f"m{i}".encode() for i in range(20)]
    finally:
        conn.disconnect()


def test_authenticated_broker_refuses_a_wrong_login(
    activemq_broker_factory: BrokerFactory,
) -> None:
    broker = activemq_broker_factory("secure", authentication=True)
    with pytest.raises(ConnectError):
        _connect(f"stomp://intruder:wrong@127.0.0.1:{broker.port}")
    with pytest.raises(ConnectError):
        _connect(f"stomp://127.0.0.1:{broker.port}")
    good = _connect(broker.stomp_url)
    assert good.connected
    good.disconnect()
