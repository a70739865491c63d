"""Hostile bytes against a running embedded broker (hypothesis).

Every connection that sends something invalid gets an ERROR and is closed; the
broker stays up, holds no more than its limits per connection, and the messages
of a well-behaved producer and consumer running alongside all arrive.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from msgbus.bench.raw import RawClient, raw_send, subscribe
from msgbus.broker import BrokerConfig, BrokerLimits, BrokerThread
from msgbus.errors import RemoteProtocolError
from msgbus.stomp import FrameParser
from msgbus.stomp.frames import Frame

LIMITS = BrokerLimits(max_frame_bytes=64 * 1024, max_header_bytes=4096, max_headers=32)
CONNECT = b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:x\n\n\0"

commands = st.sampled_from(
    [b"SEND", b"SUBSCRIBE", b"UNSUBSCRIBE", b"ACK", b"NACK", b"BEGIN", b"COMMIT", b"ABORT",
     b"CONNECT", b"STOMP", b"MESSAGE", b"ERROR", b"HELLO", b"send", b"", b"\xff\xfe"]
)
header_lines = st.sampled_from(
    [b"destination:/queue/fuzz", b"destination:/topic/fuzz", b"destination:/bogus/x",
     b"destination:", b"id:1", b"ack:client", b"ack:sometimes", b"transaction:t",
     b"receipt:r", b"content-length:3", b"content-length:-1", b"content-length:99999999",
     b"content-length:\xc2\xb2", b"a:\\t", b"a:\\", b"no colon", b"\xc3\x28:x",
     b"heart-beat:x,y", b"accept-version:9.9", b"activemq.prefetchSize:0",
     b"activemq.subscriptionName:s", b"message-id:nope", b"h:" + b"v" * 5000]
)
frames = st.builds(
    lambda cmd, lines, body, end: (
        cmd + b"\n" + b"".join(line + b"\n" for line in lines) + b"\n" + body + end
    ),
    commands,
    st.lists(header_lines, max_size=40),
    st.one_of(st.binary(max_size=64), st.just(b"x" * 70_000)),
    st.sampled_from([b"\0", b"", b"\0\n", b"\0\r\nBOGUS"]),
)
payloads = st.lists(st.one_of(frames, st.binary(max_size=256)), min_size=1, max_size=4).map(
    b"".join
)


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerThread]:
    config = BrokerConfig(port=0, limits=LIMITS, heartbeat_ms=(0, 0), connect_timeout=5)
    with BrokerThread(config) as thread:
        yield thread


@pytest.fixture(scope="module")
def bystanders(broker: BrokerThread) -> Iterator[tuple[RawClient, RawClient]]:
    with RawClient("127.0.0.1", broker.port) as producer, RawClient(
        "127.0.0.1", broker.port
    ) as consumer:
        subscribe(consumer, "/queue/bystander")
        yield producer, consumer


def _exchange(port: int, payload: bytes, connect_first: bool) -> tuple[list[Frame], bool]:
    """Send, then read what comes back; True if the broker closed the connection."""
    parser = FrameParser(role="client")
    got: list[Frame] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # The broker may close while we are still sending an oversized frame.
        with contextlib.suppress(OSError):
            sock.sendall((CONNECT if connect_first else b"") + payload)
        while True:
            # After an ERROR the close must follow; otherwise silence means "still open".
            sock.settimeout(5.0 if any(f.command == "ERROR" for f in got) else 0.3)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return got, False  # still open: e.g. a truncated frame awaits more bytes
            except ConnectionResetError:
                return got, True
            if not data:
                return got, True
            got += [e for e in parser.feed(data) if isinstance(e, Frame)]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads, connect_first=st.booleans())
def test_hostile_input_gets_error_and_close_while_others_are_served(
    broker: BrokerThread,
    bystanders: tuple[RawClient, RawClient],
    payload: bytes,
    connect_first: bool,
) -> None:
    producer, consumer = bystanders
    raw_send(producer, "/queue/bystander", 3, b"in flight", receipts="none")

    try:
        got, closed = _exchange(broker.port, payload, connect_first)
    except RemoteProtocolError as exc:  # pragma: no cover - the assertion is the point
        raise AssertionError(f"the broker sent invalid STOMP: {exc}") from None
    commands = [f.command for f in got]
    assert set(commands) <= {"CONNECTED", "RECEIPT", "MESSAGE", "ERROR"}
    if "ERROR" in commands:
        assert commands[-1] == "ERROR" and closed, "an ERROR must be last, then close"
    else:
        # Nothing here sends DISCONNECT: only an ERROR may end the connection.
        assert not closed, commands
    event("ERROR and close" if "ERROR" in commands else "accepted or awaiting more bytes")

    received = 0
    while received < 3:
        received += sum(1 for f in consumer.read() if f.command == "MESSAGE")
    assert received == 3  # nothing from the well-behaved producer was lost


def test_broker_holds_nothing_for_closed_fuzzers(broker: BrokerThread) -> None:
    """After the fuzzing: only the bystanders are left, buffering within the limits."""
    # The broker's loop notices the last fuzzer's closed socket on its own schedule.
    deadline = time.monotonic() + 5
    while len(broker.broker.sessions) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sessions = list(broker.broker.sessions)
    assert len(sessions) <= 2
    assert all(s.stomp.parser.buffered <= LIMITS.max_frame_bytes for s in sessions)
    with RawClient("127.0.0.1", broker.port) as client:
        raw_send(client, "/queue/after", 1, b"still serving", receipts="last")
