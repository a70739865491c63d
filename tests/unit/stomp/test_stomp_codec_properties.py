"""Property-based tests of the sans-IO codec: round trips, chunking, hostile bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgbus.errors import LocalProtocolError, RemoteProtocolError
from msgbus.stomp import FrameParser, Heartbeat, Limits, encode_acks, make_frame, serialize
from msgbus.stomp.frames import (
    CLIENT_COMMANDS,
    SERVER_COMMANDS,
    AckFrame,
    Frame,
    NackFrame,
)

VERSIONS = ("1.0", "1.1", "1.2")
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
header_dicts = st.dictionaries(text.filter(lambda name: name != "content-length"), text, max_size=6)


@st.composite
def frames(draw: st.DrawFn) -> tuple[str, Frame]:
    """A version and a client or server frame, sendable in that version."""
    version = draw(st.sampled_from(VERSIONS))
    command = draw(st.sampled_from(sorted(CLIENT_COMMANDS | SERVER_COMMANDS)))
    frame = make_frame(command, draw(header_dicts), draw(st.binary(max_size=300)))
    return version, frame


def role_for(frame: Frame) -> str:
    return "server" if frame.command in CLIENT_COMMANDS else "client"


def expected_headers(frame: Frame) -> dict[str, str]:
    headers = dict(frame.headers)
    if frame.body:
        headers["content-length"] = str(len(frame.body))
    return headers


def encodable(version: str, frame: Frame) -> bytes | None:
    try:
        return serialize(frame, version)
    except LocalProtocolError:
        # Only a header that the version cannot carry is refused, never anything else.
        unescaped = version == "1.0" or frame.command in ("CONNECT", "STOMP", "CONNECTED")
        assert any(
            (unescaped and ("\n" in n + v or "\r" in n + v or ":" in n))
            or (version == "1.1" and v.endswith("\r"))
            or "\0" in n + v  # ends a frame in every version
            for n, v in frame.headers.items()
        )
        return None


@given(frames())
def test_any_frame_round_trips(case: tuple[str, Frame]) -> None:
    version, frame = case
    wire = encodable(version, frame)
    if wire is None:
        return
    [parsed] = FrameParser(role=role_for(frame), version=version).feed(wire)
    assert isinstance(parsed, Frame)
    assert parsed.command == frame.command
    assert parsed.headers == expected_headers(frame)
    assert parsed.body == frame.body


@given(
    st.lists(frames(), min_size=1, max_size=5),
    st.lists(st.integers(min_value=1, max_value=64), min_size=1),
    st.sampled_from(["\n", "\r\n", ""]),
)
def test_chunking_does_not_change_frames(
    cases: list[tuple[str, Frame]], cuts: list[int], heartbeat: str
) -> None:
    version = cases[0][0]
    role = role_for(cases[0][1])
    sendable = [f for _, f in cases if role_for(f) == role]
    wires = [encodable(version, f) for f in sendable]
    stream = heartbeat.encode().join(w for w in wires if w is not None)
    whole = FrameParser(role=role, version=version).feed(stream)

    byte_parser = FrameParser(role=role, version=version)
    one_by_one = [e for i in range(len(stream)) for e in byte_parser.feed(stream[i : i + 1])]

    chunk_parser = FrameParser(role=role, version=version)
    chunked: list[Frame | Heartbeat] = []
    pos, k = 0, 0
    while pos < len(stream):
        size = cuts[k % len(cuts)]
        chunked += chunk_parser.feed(stream[pos : pos + size])
        pos, k = pos + size, k + 1

    assert one_by_one == whole
    assert chunked == whole
    assert [e for e in whole if isinstance(e, Frame)] == [
        make_frame(f.command, expected_headers(f), f.body)
        for f, w in zip(sendable, wires, strict=True)
        if w is not None
    ]
    assert byte_parser.buffered == 0 and chunk_parser.buffered == 0


SMALL = Limits(max_frame_bytes=600, max_header_bytes=200, max_headers=8, max_body_bytes=400)
# Fragments that make hostile input likely to reach deep parser states.
fragments = st.sampled_from(
    [
        b"SEND\n",
        b"MESSAGE\n",
        b"CONNECT\n",
        b"destination:/q/a\n",
        b"content-length:",
        b"content-length:5\n",
        b"content-length:\xc2\xb2\n",
        b"a:\\x\n",
        b"a:\\",
        b"\n",
        b"\r\n",
        b"\r",
        b"\0",
        b"\xff\xfe",
        b"x" * 150,
        b"nocolon\n",
        b"\n\n",
    ]
)
header_lines = st.lists(
    st.sampled_from(
        [
            b"content-length:5",
            b"content-length:\xc2\xb2",
            b"content-length:-1",
            b"content-length:99999",
            b"a:\\x",
            b"a:\\",
            b"nocolon",
            b"a:\xff",
            b"h:" + b"v" * 60,
            b"a:b\r",
        ]
    ),
    max_size=10,
)
frame_shaped = st.builds(
    lambda cmd, lines, body: cmd + b"\n" + b"".join(line + b"\n" for line in lines) + b"\n" + body,
    st.sampled_from([b"SEND", b"MESSAGE", b"CONNECT", b"BOGUS", b"ERROR\r"]),
    header_lines,
    st.sampled_from([b"", b"\0", b"hello\0", b"a\0b\0", b"x" * 500]),
)
hostile = st.lists(st.one_of(frame_shaped, fragments, st.binary(max_size=40)), max_size=20).map(
    b"".join
)


@settings(max_examples=400)
@given(
    hostile,
    st.sampled_from(VERSIONS),
    st.sampled_from(["client", "server"]),
    st.integers(min_value=1, max_value=50),
)
def test_any_bytes_parse_or_raise_remote_protocol_error(
    data: bytes, version: str, role: str, chunk: int
) -> None:
    parser = FrameParser(role=role, version=version, limits=SMALL)
    try:
        for pos in range(0, len(data), chunk):
            parser.feed(data[pos : pos + chunk])
            # What stays buffered is one incomplete frame, so it is bounded by the limits.
            assert parser.buffered <= SMALL.max_frame_bytes + SMALL.max_header_bytes + 3
    except RemoteProtocolError:
        # A failed parser stays failed: the stream has no frame boundary left.
        try:
            parser.feed(b"\n")
        except RemoteProtocolError:
            return
        raise AssertionError("a failed parser accepted more bytes") from None


@given(st.lists(text, max_size=8), st.booleans())
def test_batched_acks_equal_one_frame_each(ids: list[str], nack: bool) -> None:
    frame = NackFrame if nack else AckFrame

    def outcome(encode: Callable[[], bytes]) -> bytes | str:
        try:
            return encode()
        except LocalProtocolError as exc:  # an id no frame can carry (NUL): the same refusal
            return str(exc)

    batched = outcome(lambda: encode_acks(ids, nack=nack))
    assert batched == outcome(lambda: b"".join(serialize(frame({"id": i})) for i in ids))


header_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\n\r\0:\\"), max_size=20
)


@given(st.sampled_from(VERSIONS), header_text, header_text, st.integers(min_value=0, max_value=40))
def test_nul_anywhere_in_the_headers_is_refused(
    version: str, name: str, value: str, at: int
) -> None:
    head = f"SEND\ndestination:/queue/q\n{name}:{value}"
    at = min(at, len(head) - 5) + 5  # after "SEND\n": inside a header line
    wire = (head[:at] + "\0" + head[at:] + "\n\nbody\0").encode()
    parser = FrameParser(role="server", version=version)
    with pytest.raises(RemoteProtocolError, match="NUL"):
        parser.feed(wire)
