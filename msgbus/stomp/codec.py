"""Sans-IO STOMP 1.0/1.1/1.2 codec: bytes in, frames out; frames in, bytes out.

No sockets here (as h11 does for HTTP): the embedded broker and the client transport
both drive this parser with whatever bytes they read. The parser buffers at most
``limits.max_frame_bytes`` (plus one read) and fails loudly on anything invalid; once
it failed it stays failed, because after a framing error the byte stream has no
trustworthy frame boundary left to resynchronise on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from msgbus.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from msgbus.stomp.frames import (
    CLIENT_COMMANDS,
    FRAME_TYPES,
    SERVER_COMMANDS,
    AckFrame,
    Frame,
    Heartbeat,
    NackFrame,
)

__all__ = [
    "HEARTBEAT",
    "SUPPORTED_VERSIONS",
    "FrameParser",
    "Limits",
    "Version",
    "encode_acks",
    "encode_headers",
    "serialize",
]

Version = Literal["1.0", "1.1", "1.2"]
SUPPORTED_VERSIONS: tuple[Version, ...] = ("1.0", "1.1", "1.2")
HEARTBEAT = b"\n"

_LONGEST_COMMAND = max(len(c) for c in FRAME_TYPES)
# CONNECT and CONNECTED are never escaped: they are exchanged before a version is agreed.
_UNESCAPED_COMMANDS = frozenset({"CONNECT", "STOMP", "CONNECTED"})
_ESCAPES_12 = {"\\": "\\\\", "\r": "\\r", "\n": "\\n", ":": "\\c"}
_ESCAPES_11 = {"\\": "\\\\", "\n": "\\n", ":": "\\c"}
_ENCODE_TABLE = {
    "1.2": str.maketrans(_ESCAPES_12),
    "1.1": str.maketrans(_ESCAPES_11),
}
_NEEDS_ESCAPE = {"1.2": re.compile(r"[\\\r\n:]"), "1.1": re.compile(r"[\\\n:]")}
_DECODE = {
    "1.2": {"\\\\": "\\", "\\r": "\r", "\\n": "\n", "\\c": ":"},
    "1.1": {"\\\\": "\\", "\\n": "\n", "\\c": ":"},
}
_COLON = "\\c"
_ESCAPE_SEQ = re.compile(r"\\(.?)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one frame may make us buffer."""

    max_frame_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_headers: int = 256
    max_body_bytes: int = 16 * 1024 * 1024


def _unescape(value: str, version: str) -> str:
    # Brokers escape the colons of their ids (ActiveMQ's "ID\\chost-..."): when "\\c" is
    # the only sequence, one replace does it. A backslash left after it means others.
    plain = value.replace(_COLON, ":")
    if "\\" not in plain:
        return plain
    table = _DECODE[version]

    def repl(match: re.Match[str]) -> str:
        seq = match.group(0)
        try:
            return table[seq]
        except KeyError:
            raise RemoteProtocolError(
                f"undefined escape sequence {seq!r} in a header (STOMP {version}); "
                "the peer must escape backslashes as '\\\\'"
            ) from None

    return _ESCAPE_SEQ.sub(repl, value)


class FrameParser:
    """Incremental STOMP parser.

    ``accept`` is the set of commands the peer may send: a broker parses client
    frames (``role="server"``), a client parses server frames (``role="client"``).
    ``version`` may be changed after negotiation; it governs header unescaping.
    """

    def __init__(
        self,
        *,
        role: str = "client",
        version: str = "1.2",
        limits: Limits | None = None,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError("role must be 'client' or 'server'")
        self.accept = SERVER_COMMANDS if role == "client" else CLIENT_COMMANDS
        self.version = version
        self.limits = limits or Limits()
        self._buf = bytearray()
        self._failed: RemoteProtocolError | None = None
        # Complete events of the feed() that then failed: valid frames sent before the
        # bad bytes, which a broker still honours before answering ERROR.
        self.before_failure: list[Frame | Heartbeat] = []
        # A parsed header section waiting for its body:
        # (command, headers, body start, content-length or None, header section size).
        self._pending: tuple[str, dict[str, str], int, int | None, int] | None = None
        # Bytes of a pending body without content-length already searched for the NUL,
        # so a body arriving in small reads is scanned once, not once per read.
        self._scanned = 0
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | Heartbeat]:
        """Add received bytes; return every complete frame and heart-beat in order."""
        if self._failed is not None:
            raise self._failed
        self._buf += data
        events: list[Frame | Heartbeat] = []
        # Consume by advancing an offset and compact once per feed: deleting from the
        # front of the bytearray per frame would make a large read quadratic.
        self._pos = 0
        try:
            while True:
                event = self._next_event()
                if event is None:
                    break
                events.append(event)
        except RemoteProtocolError as exc:
            self._failed = exc
            self.before_failure = events
            self._buf.clear()
            raise
        finally:
            if self._failed is None and self._pos:
                if self._pending is not None:
                    command, headers, body_start, length, head_size = self._pending
                    self._pending = (command, headers, body_start - self._pos, length, head_size)
                del self._buf[: self._pos]
        return events

    def _next_event(self) -> Frame | Heartbeat | None:
        buf = self._buf
        limits = self.limits
        if self._pending is None:
            pos = self._pos
            if pos >= len(buf):
                return None
            first = buf[pos]
            if first == 0x0A:
                self._pos = pos + 1
                return Heartbeat()
            if first == 0x0D:
                if len(buf) < pos + 2:
                    return None
                if buf[pos + 1] != 0x0A:
                    raise RemoteProtocolError("a CR between frames must be followed by LF")
                self._pos = pos + 2
                return Heartbeat()
            # The header section ends at the first blank line: LF LF, or LF CR LF.
            # Bound both searches: a large buffer of later frames must not be rescanned.
            max_head = limits.max_header_bytes
            limit = pos + max_head + 3
            lf = buf.find(b"\n\n", pos, limit)
            crlf = buf.find(b"\n\r\n", pos, lf + 3 if lf != -1 else limit)
            if crlf != -1 and (lf == -1 or crlf < lf):
                head_end, body_start = crlf, crlf + 3
            elif lf != -1:
                head_end, body_start = lf, lf + 2
            else:
                if len(buf) - pos > max_head:
                    raise FrameTooLarge(f"frame header section exceeds {max_head} bytes")
                self._check_command_line(buf, pos)
                return None
            if head_end - pos > max_head:
                raise FrameTooLarge(f"frame header section exceeds {max_head} bytes")
            command, headers = self._parse_head(buf[pos:head_end])
            length: int | None = None
            raw_len = headers.get("content-length")
            head_size = body_start - pos
            if raw_len is not None:
                # isascii: str.isdigit() also accepts digits such as '²' that int() refuses.
                if not (raw_len.isascii() and raw_len.isdigit()) or len(raw_len) > 18:
                    raise RemoteProtocolError(
                        f"content-length must be a non-negative integer, got {raw_len[:40]!r}"
                    )
                length = int(raw_len)
                if length > limits.max_body_bytes:
                    raise FrameTooLarge(
                        f"body of {length} bytes exceeds the limit of "
                        f"{limits.max_body_bytes} bytes",
                        headers=headers,
                    )
                if head_size + length > limits.max_frame_bytes:
                    self._check_frame_size(head_size + length, headers)
            self._pending = (command, headers, body_start, length, head_size)
            self._scanned = 0
        else:
            command, headers, body_start, length, head_size = self._pending
        if length is not None:
            nul = body_start + length
            if len(buf) <= nul:
                return None
            if buf[nul] != 0:
                raise RemoteProtocolError(
                    f"{command} frame: byte after the {length}-byte body (content-length) "
                    "is not NUL"
                )
        else:
            nul = buf.find(b"\0", body_start + self._scanned)
            if nul == -1:
                self._scanned = len(buf) - body_start
                if self._scanned > limits.max_body_bytes:
                    raise FrameTooLarge(
                        f"body exceeds the limit of {limits.max_body_bytes} bytes", headers=headers
                    )
                self._check_frame_size(head_size + self._scanned, headers)
                return None
            self._check_frame_size(head_size + nul - body_start, headers)
        self._pos = nul + 1
        self._pending = None
        # Through a memoryview: one copy of the body instead of two.
        return FRAME_TYPES[command](headers, bytes(memoryview(buf)[body_start:nul]))

    def _check_frame_size(self, size: int, headers: dict[str, str]) -> None:
        if size > self.limits.max_frame_bytes:
            raise FrameTooLarge(
                f"frame of more than {size} bytes exceeds the limit of "
                f"{self.limits.max_frame_bytes} bytes",
                headers=headers,
            )

    def _refuse_command(self, command: str) -> NoReturn:
        """``command`` is not in ``accept``: say why. Its callers test ``accept`` inline,
        which keeps a method call off every frame's path."""
        if command in FRAME_TYPES:
            raise RemoteProtocolError(f"{command} is not a frame this peer may send")
        raise RemoteProtocolError(f"unknown STOMP command {command[:40]!r}")

    def _check_command_line(self, buf: bytearray, pos: int) -> None:
        """Refuse a frame whose command line is wrong already, before the rest of its
        head comes: garbage gets its error at once, not when the peer gives up (random
        bytes may hold no blank line for the whole header limit)."""
        eol = buf.find(b"\n", pos, pos + _LONGEST_COMMAND + 2)
        if eol != -1:
            command = bytes(buf[pos:eol]).removesuffix(b"\r").decode("utf-8", "replace")
        elif len(buf) - pos > _LONGEST_COMMAND + 1:
            command = bytes(buf[pos : pos + _LONGEST_COMMAND + 2]).decode("latin-1")
        else:
            return
        if command not in self.accept:
            self._refuse_command(command)

    def _parse_head(self, head: bytes | bytearray) -> tuple[str, dict[str, str]]:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"frame header is not valid UTF-8: {exc.reason}") from None
        if "\0" in text:
            # NUL ends a frame: inside a header it can only be an attack on a peer that
            # cuts names and values at it (C clients).
            raise RemoteProtocolError("NUL byte in a frame's headers")
        if "\r" in text:
            # Most peers end lines with LF alone; only then may the fast path split on it.
            text = "\n".join(line.removesuffix("\r") for line in text.split("\n"))
        lines = text.split("\n")
        command = lines[0]
        if command not in self.accept:
            self._refuse_command(command)
        if len(lines) - 1 > self.limits.max_headers:
            raise FrameTooLarge(f"more than {self.limits.max_headers} headers in one frame")
        del lines[0]
        try:
            # Reversed, so that of repeated headers the first wins (STOMP 1.2).
            headers = dict([line.split(":", 1) for line in reversed(lines)])
        except ValueError:
            bad = next(line for line in lines if ":" not in line)
            raise RemoteProtocolError(
                f"{command} frame: header line {bad[:60]!r} has no ':'"
            ) from None
        if "\\" in text and self.version != "1.0" and command not in _UNESCAPED_COMMANDS:
            if "\\" in "".join(headers):
                # An escaped name may equal another once unescaped: first-wins again.
                return command, self._unescaped(lines)
            version = self.version
            for name, value in headers.items():
                if "\\" in value:
                    headers[name] = _unescape(value, version)
        return command, headers

    def _unescaped(self, lines: list[str]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            if "\\" in name:
                name = _unescape(name, self.version)
            if name not in headers:
                headers[name] = _unescape(value, self.version) if "\\" in value else value
        return headers


def _escape(value: str, version: str) -> str:
    if _NEEDS_ESCAPE[version].search(value) is None:
        return value
    return value.translate(_ENCODE_TABLE[version])


def encode_headers(command: str, headers: Mapping[str, str], version: str = "1.2") -> bytes:
    """Encode header lines (each ending in LF) as ``command`` sends them in ``version``.

    ``content-length`` is skipped: the serializer derives it from the body. Exposed so a
    broker can encode the shared part of a MESSAGE once and reuse it for every delivery.
    """
    escaped = version != "1.0" and command not in _UNESCAPED_COMMANDS
    if escaped and "content-length" not in headers:
        # The hot path of a broker encoding every MESSAGE: usually nothing needs escaping,
        # which shows as exactly one ':' and one LF per line and no backslash or CR.
        text = "".join([f"{n}:{v}\n" for n, v in headers.items()])
        count = len(headers)
        if text.count("\n") == count and "\\" not in text and "\r" not in text:
            if text.count(":") != count:
                # Only colons need escaping: ActiveMQ's ids are full of them, and every
                # ACK a consumer sends carries one.
                text = "".join(
                    [
                        f"{n.replace(':', _COLON)}:{v.replace(':', _COLON)}\n"
                        for n, v in headers.items()
                    ]
                )
            return _encode_head(command, text)
    parts = []
    for name, value in headers.items():
        if name == "content-length":
            continue
        if escaped:
            # STOMP 1.1 has no escape for CR and a reader strips a CR before the LF.
            if version == "1.1" and value.endswith("\r"):
                raise LocalProtocolError(
                    f"header {name!r} cannot be sent in STOMP 1.1: its value ends with CR"
                )
            parts.append(f"{_escape(name, version)}:{_escape(value, version)}\n")
        else:
            if "\n" in name or "\n" in value or ":" in name or "\r" in name or "\r" in value:
                raise LocalProtocolError(
                    f"header {name!r} cannot be sent in STOMP {version} or a {command} frame: "
                    "it contains a newline or its name contains ':'"
                )
            parts.append(f"{name}:{value}\n")
    return _encode_head(command, "".join(parts))


def _encode_head(command: str, text: str) -> bytes:
    if "\0" in text:
        raise LocalProtocolError(f"{command} frame: a header contains NUL, which ends a frame")
    return _encode_text(command, text)


def _encode_text(command: str, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(
            f"{command} frame: a header is not encodable as UTF-8 ({exc.reason})"
        ) from None


def serialize(frame: Frame, version: str = "1.2") -> bytes:
    """Encode ``frame`` for the wire, adding ``content-length`` for any body."""
    command = frame.command
    if command not in FRAME_TYPES:
        raise LocalProtocolError(f"cannot send unknown STOMP command {command!r}")
    head = encode_headers(command, frame.headers, version)
    body = frame.body
    length = b"content-length:%d\n" % len(body) if body else b""
    return b"".join((command.encode("ascii"), b"\n", head, length, b"\n", body, b"\0"))


def encode_acks(ids: Sequence[str], *, nack: bool = False) -> bytes:
    """STOMP 1.2 ACK (or NACK) frames, one per ``id``, for one write.

    The consumer acknowledges every message it stores, so this is its hot path: the
    ids are escaped together and the frames written as one text, instead of one
    header dict and one serialize() per message.
    """
    if not ids:
        return b""
    command = "NACK" if nack else "ACK"
    joined = "\n".join(ids)
    if "\r" in joined or "\0" in joined or joined.count("\n") != len(ids) - 1:
        # An id with a line break or NUL: the general encoder escapes it (or says why not).
        frame = NackFrame if nack else AckFrame
        return b"".join(serialize(frame({"id": ident})) for ident in ids)
    escaped = joined.replace("\\", "\\\\").replace(":", _COLON)
    text = f"{command}\nid:" + escaped.replace("\n", f"\n\n\0{command}\nid:") + "\n\n\0"
    return _encode_text(command, text)
