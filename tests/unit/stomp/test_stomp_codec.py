"""Example-based tests of the codec: the spec rules each property test relies on."""

from __future__ import annotations

import pytest

from msgbus.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from msgbus.stomp import FrameParser, Heartbeat, Limits, serialize
from msgbus.stomp.frames import ConnectFrame, MessageFrame, SendFrame


def parse_server(data: bytes, version: str = "1.2", **kw: object) -> list[object]:
    return list(FrameParser(role="server", version=version, **kw).feed(data))  # type: ignore[arg-type]


def test_repeated_header_first_wins() -> None:
    [frame] = parse_server(b"SEND\ndestination:/queue/a\ndestination:/queue/b\n\nx\0")
    assert isinstance(frame, SendFrame)
    assert frame.headers == {"destination": "/queue/a"}


@pytest.mark.parametrize(
    ("version", "wire"),
    [
        ("1.2", b"SEND\na\\cb:c\\\\d\\ne\\rf\n\n\0"),
        ("1.1", b"SEND\na\\cb:c\\\\d\\ne\rf\n\n\0"),
    ],
)
def test_header_escapes_per_version(version: str, wire: bytes) -> None:
    [frame] = parse_server(wire, version)
    assert isinstance(frame, SendFrame)
    assert frame.headers == {"a:b": "c\\d\ne\rf"}
    assert serialize(frame, version) == wire


def test_repeated_escaped_name_first_wins() -> None:
    [frame] = parse_server(b"SEND\na\\cb:1\na\\cb:2\nx:ID\\chost\\c1\n\n\0")
    assert isinstance(frame, SendFrame)
    assert frame.headers == {"a:b": "1", "x": "ID:host:1"}


def test_escaped_colons_next_to_other_escapes() -> None:
    # An escaped backslash followed by "c" is a backslash and a "c", not a colon.
    [frame] = parse_server(b"SEND\nid:ID\\chost\nv:a\\\\cb\\c\r\nw:\\\\\\c\r\n\r\n\0")
    assert isinstance(frame, SendFrame)
    assert frame.headers == {"id": "ID:host", "v": "a\\cb:", "w": "\\:"}


def test_stomp_10_does_not_unescape() -> None:
    [frame] = parse_server(b"SEND\na:b\\c\n\n\0", "1.0")
    assert isinstance(frame, SendFrame)
    assert frame.headers == {"a": "b\\c"}


def test_undefined_escape_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="undefined escape"):
        parse_server(b"SEND\na:\\t\n\n\0")
    with pytest.raises(RemoteProtocolError, match="undefined escape"):
        parse_server(b"SEND\na:\\r\n\n\0", "1.1")


def test_connect_headers_are_never_escaped() -> None:
    [frame] = parse_server(b"CONNECT\npasscode:a\\cb\n\n\0")
    assert isinstance(frame, ConnectFrame)
    assert frame.headers == {"passcode": "a\\cb"}


def test_content_length_carries_nul_bytes() -> None:
    wire = serialize(MessageFrame({"destination": "/queue/a"}, b"a\0b\0"), "1.2")
    [frame] = FrameParser(role="client").feed(wire)
    assert isinstance(frame, MessageFrame)
    assert frame.body == b"a\0b\0"


def test_byte_after_content_length_body_must_be_nul() -> None:
    with pytest.raises(RemoteProtocolError, match="not NUL"):
        parse_server(b"SEND\ncontent-length:1\n\nab\0")


def test_heartbeats_lf_and_crlf_between_frames() -> None:
    events = parse_server(b"\n\r\nSEND\r\na:b\r\n\r\n\0\n")
    assert events[:2] == [Heartbeat(), Heartbeat()]
    assert isinstance(events[2], SendFrame) and events[2].headers == {"a": "b"}
    assert events[3] == Heartbeat()


def test_command_the_peer_may_not_send() -> None:
    with pytest.raises(RemoteProtocolError, match="not a frame this peer may send"):
        parse_server(b"MESSAGE\n\n\0")
    with pytest.raises(RemoteProtocolError, match="unknown STOMP command"):
        parse_server(b"HELLO\n\n\0")


@pytest.mark.parametrize("start", [b"HELLO\nx:y\n", b"\x8f" * 100, b"SUBSCRIBEX\r\n"])
def test_a_wrong_command_is_refused_before_its_head_is_complete(start: bytes) -> None:
    """Garbage (no blank line in 64 KiB of random bytes) gets its error at once, not when
    the peer gives up: CI's hostile test waited 5 s on such sockets."""
    with pytest.raises(RemoteProtocolError, match="unknown STOMP command"):
        parse_server(start)


def test_a_command_line_in_pieces_waits_for_the_rest() -> None:
    parser = FrameParser(role="server", version="1.2")
    assert list(parser.feed(b"SUBSC")) == list(parser.feed(b"RIBE\r")) == []
    assert list(parser.feed(b"\nid:1\ndestination:/queue/a")) == []
    [frame] = parser.feed(b"\n\n\0")
    assert not isinstance(frame, Heartbeat) and frame.command == "SUBSCRIBE"


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (b"SEND\n" + b"a:" + b"x" * 300 + b"\n\n\0", "header section"),
        (b"SEND\n" + b"a:b\n" * 20 + b"\n\0", "headers in one frame"),
        (b"SEND\ncontent-length:5000\n\n", "body of 5000 bytes"),
        (b"SEND\n\n" + b"x" * 3000, "body exceeds"),
        (b"SEND\n" + b"a:" + b"x" * 150 + b"\n\n" + b"y" * 900, "frame of more than"),
    ],
)
def test_limits(wire: bytes, match: str) -> None:
    limits = Limits(max_frame_bytes=1000, max_header_bytes=200, max_headers=10, max_body_bytes=2000)
    with pytest.raises(FrameTooLarge, match=match):
        parse_server(wire, limits=limits)


def test_content_length_must_be_ascii_digits() -> None:
    with pytest.raises(RemoteProtocolError, match="content-length"):
        parse_server("SEND\ncontent-length:²\n\n\0".encode())


def test_failed_parser_stays_failed() -> None:
    parser = FrameParser(role="server")
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"BOGUS\n\n\0")
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"SEND\n\n\0")


def test_serializer_refuses_what_the_version_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        serialize(SendFrame({"a": "b\nc"}), "1.0")
    with pytest.raises(LocalProtocolError):
        serialize(SendFrame({"a": "b\r"}), "1.1")
    with pytest.raises(LocalProtocolError):
        serialize(SendFrame({"a": "\ud800"}), "1.2")


def test_frames_before_a_failure_are_kept() -> None:
    parser = FrameParser(role="server")
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"SEND\na:1\n\n\0\nBOGUS\n\n\0")
    assert [type(e).__name__ for e in parser.before_failure] == ["SendFrame", "Heartbeat"]
