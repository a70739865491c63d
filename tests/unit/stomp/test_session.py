"""The sans-IO STOMP session: a client and a server session wired together in memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.errors import RemoteProtocolError
from msgbus.stomp import SUPPORTED_VERSIONS, HeartBeats, StompSession, Version, make_frame
from msgbus.stomp.frames import ConnectedFrame, Frame, MessageFrame

_OFF = HeartBeats()


def _handshake(
    client_beats: HeartBeats = _OFF,
    server_beats: HeartBeats = _OFF,
    /,
    **connect_headers: str,
) -> tuple[StompSession, StompSession]:
    client, server = StompSession("client"), StompSession("server")
    connect = client.connect_frame(host="h", heartbeats=client_beats, login="u", passcode="p")
    connect.headers.update(connect_headers)
    [frame] = server.receive_data(client.encode(connect))
    assert isinstance(frame, Frame)
    connected = server.accept(frame, heartbeats=server_beats, headers={"server": "test/1"})
    [answer] = client.receive_data(server.encode(connected))
    assert isinstance(answer, ConnectedFrame)
    return client, server


def test_both_ends_agree_on_the_highest_common_version() -> None:
    client, server = _handshake()
    assert client.version == server.version == "1.2"
    assert client.parser.version == server.parser.version == "1.2"
    assert client.connected and server.connected and client.server == "test/1"
    client, server = _handshake(**{"accept-version": "1.0,1.1"})
    assert client.version == server.version == "1.1"


@given(
    st.integers(0, 60_000), st.integers(0, 60_000), st.integers(0, 60_000), st.integers(0, 60_000)
)
def test_heart_beat_intervals_match_on_both_ends(cx: int, cy: int, sx: int, sy: int) -> None:
    client, server = _handshake(
        HeartBeats(send_ms=cx, receive_ms=cy), HeartBeats(send_ms=sx, receive_ms=sy)
    )
    # What one end sends is what the other expects, and 0 means "off" on both.
    assert client.send_interval == server.receive_interval
    assert client.receive_interval == server.send_interval
    assert (client.send_interval == 0) == (cx == 0 or sy == 0)
    if cx and sy:
        assert client.send_interval == max(cx, sy) / 1000


def test_a_connected_of_a_version_not_offered_is_a_protocol_error() -> None:
    client = StompSession("client")
    client.connect_frame(host="h", heartbeats=HeartBeats())
    data = b"CONNECTED\nversion:1.3\n\n\0MESSAGE\nsubscription:s\nmessage-id:a\\cb\n\n\0"
    with pytest.raises(RemoteProtocolError, match=r"1\.3"):
        client.receive_data(data)  # never a KeyError from the unescaping tables


def test_the_server_requires_connect_first_and_once() -> None:
    server = StompSession("server")
    with pytest.raises(RemoteProtocolError, match="SEND before CONNECT"):
        server.check_order(make_frame("SEND", {"destination": "/queue/a"}))
    _, server = _handshake()
    with pytest.raises(RemoteProtocolError, match="already connected"):
        server.accept(
            make_frame("CONNECT", {"accept-version": "1.2"}), heartbeats=HeartBeats(), headers={}
        )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"accept-version": "2.0,3.0"}, "unsupported protocol version"),
        ({"heart-beat": "often"}, "must be two integers"),
        ({"heart-beat": "-1,0"}, "must not be negative"),
    ],
)
def test_a_bad_connect_is_a_protocol_error(headers: dict[str, str], message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        _handshake(**headers)


def test_an_odd_heart_beat_from_a_broker_turns_heart_beats_off() -> None:
    client = StompSession("client")
    client.connect_frame(host="h", heartbeats=HeartBeats(send_ms=1000, receive_ms=1000))
    client.receive_data(b"CONNECTED\nversion:1.2\nheart-beat:x\n\n\0")
    assert client.connected and (client.send_interval, client.receive_interval) == (0, 0)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_an_ack_names_the_message_the_server_looks_up(version: Version) -> None:
    client, server = _handshake(**{"accept-version": version})
    message = MessageFrame(
        {"subscription": "s1", "message-id": "m:1", "ack": "a:1", "destination": "/queue/q"}
    )
    for nack in (False, True):
        frame = client.ack_frame(message, nack=nack)
        [received] = server.receive_data(client.encode(frame))
        assert isinstance(received, Frame)
        assert received.command == ("NACK" if nack else "ACK")
        expected = "a:1" if version == "1.2" else "m:1"
        assert server.acked_id(received, server.version) == expected
        if version == "1.1":
            assert received.headers["subscription"] == "s1"


def test_an_ack_without_its_id_header_is_a_protocol_error() -> None:
    _, server = _handshake()
    with pytest.raises(RemoteProtocolError, match="without an id header"):
        server.acked_id(make_frame("ACK", {"message-id": "m"}), "1.2")
