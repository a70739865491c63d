"""Reading an input of any size a bounded piece at a time (``msgbus publish`` files).

A body on the wire is read whole (``decode_body``, capped at 16 MiB); a file or a pipe
given to ``msgbus publish`` may hold any number of messages, so it is read in pieces of
about ``piece_bytes``: WLCG text cut after an ``EOT`` line, JSON one list element (or one
top-level object, for JSON Lines) at a time. Message and line numbers stay those of the
whole input, and one message over ``max_bytes`` is one error, not the end of the input.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import BinaryIO

from msgbus.errors import DecodeError
from msgbus.schema.models import Message
from msgbus.schema.text import DEFAULT_MAX_BYTES, to_text
from msgbus.schema.validation import Decoded, validate_message
from msgbus.schema.wlcg import EOT, read_wlcg

__all__ = ["read_stream"]

_PIECE_BYTES = 1 << 20
_READ_BYTES = 1 << 16


def read_stream(
    source: BinaryIO,
    model: type[Message],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    piece_bytes: int = _PIECE_BYTES,
) -> Iterator[Decoded]:
    """One result per message of ``source`` (WLCG text, or JSON when it starts with
    ``{`` or ``[``), holding at most about ``max(piece_bytes, max_bytes)`` in memory."""
    head = source.read(_READ_BYTES)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        yield from _json(head, source, model, max_bytes)
    else:
        yield from _wlcg(head, source, model, max_bytes, piece_bytes)


def _lines(head: bytes, source: BinaryIO) -> Iterator[bytes]:
    rest = b""
    chunk = head
    while chunk:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"
        chunk = source.read(_READ_BYTES)
    if rest:
        yield rest


def _shifted(result: Decoded, messages: int, lines: int) -> Decoded:
    """``result`` of a piece, renumbered as a part of the whole input."""
    errors = tuple(
        DecodeError(
            e.reason,
            message_no=None if e.message_no is None else e.message_no + messages,
            line_no=None if e.line_no is None else e.line_no + lines,
            field=e.field,
        )
        for e in result.errors
    )
    number = None if result.message_no is None else result.message_no + messages
    return Decoded(number, result.message, errors, result.source)


def _at_line(result: Decoded, line_no: int) -> Decoded:
    """``result`` with problems that name no line placed where the message starts."""
    errors = tuple(
        e
        if e.line_no is not None
        else DecodeError(e.reason, message_no=e.message_no, line_no=line_no, field=e.field)
        for e in result.errors
    )
    return Decoded(result.message_no, result.message, errors, result.source)


def _wlcg(
    head: bytes, source: BinaryIO, model: type[Message], max_bytes: int, piece_bytes: int
) -> Iterator[Decoded]:
    piece: list[bytes] = []
    size = messages = lines_before = 0
    started = 0
    """Lines of ``piece`` before the message being read (complete messages)."""
    oversized = False
    eot = EOT.encode()

    def flush(lines: int) -> Iterator[Decoded]:
        """Decode the first ``lines`` lines of the piece (whole messages)."""
        nonlocal messages, lines_before, size, started
        data = b"".join(piece[:lines])
        del piece[:lines]
        size, started = sum(map(len, piece)), 0
        if not data.strip():
            lines_before += lines
            return
        try:
            results = read_wlcg(to_text(data, max_bytes), model)
        except DecodeError as exc:
            results = [Decoded(None, None, (exc,))]
        for result in results:
            yield _shifted(result, messages, lines_before)
        messages += sum(1 for r in results if r.message_no is not None)
        lines_before += lines

    for line in _lines(head, source):
        ends_message = line.rstrip(b"\r\n") == eot
        if oversized:  # skipping the rest of a message that was too large
            lines_before += 1
            oversized = not ends_message
            continue
        piece.append(line)
        size += len(line)
        if ends_message:
            started = len(piece)
            if size >= piece_bytes:
                yield from flush(len(piece))
        elif size > max_bytes:
            # The message being read alone is over the limit: the whole ones before it
            # are read, it is one error, and the rest of it up to its EOT is skipped.
            yield from flush(started)
            messages += 1
            problem = DecodeError(
                f"a message over the limit of {max_bytes} bytes; split it or raise the limit",
                message_no=messages,
                line_no=lines_before + 1,
            )
            yield Decoded(messages, None, (problem,))
            lines_before += len(piece)
            piece.clear()
            size = 0
            oversized = True
    yield from flush(len(piece))


def _json(head: bytes, source: BinaryIO, model: type[Message], max_bytes: int) -> Iterator[Decoded]:
    """A list of objects, or objects one after another (JSON Lines), element by element."""
    decoder = json.JSONDecoder()
    text_of = codecs.getincrementaldecoder("utf-8-sig")()
    buf = text_of.decode(head)
    eof = not head
    pos = line = 0
    in_list: bool | None = None
    message_no = 0

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = source.read(_READ_BYTES)
        eof = not chunk
        buf = buf[pos:] + text_of.decode(chunk, final=eof)
        pos = 0
        return True

    def skip_blank() -> None:
        nonlocal pos, line
        while True:
            blanks = len(buf) - pos - len(buf[pos:].lstrip())
            line += buf.count("\n", pos, pos + blanks)
            pos += blanks
            if pos < len(buf) or not more():
                return

    while True:
        skip_blank()
        if pos >= len(buf):
            return
        if in_list is None:
            in_list = buf[pos] == "["
            if in_list:
                pos += 1
                continue
        if in_list and buf[pos] == "]":
            return
        while True:
            try:
                item, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if len(buf) - pos > max_bytes:
                    yield Decoded(
                        None,
                        None,
                        (
                            DecodeError(
                                f"a JSON element over the limit of {max_bytes} bytes",
                                line_no=line + 1,
                            ),
                        ),
                    )
                    return
                if not more():
                    yield Decoded(
                        None,
                        None,
                        (
                            DecodeError(
                                f"not valid JSON: {exc.msg}; fix the JSON syntax",
                                line_no=line + exc.lineno,
                            ),
                        ),
                    )
                    return
        message_no += 1
        if isinstance(item, dict):
            result = validate_message(model, item, message_no)
            yield _at_line(result, line + 1) if result.errors else result
        else:
            yield Decoded(
                message_no,
                None,
                (DecodeError("expected a JSON object", message_no=message_no, line_no=line + 1),),
            )
        line += buf.count("\n", pos, end)
        pos = end
        skip_blank()
        if in_list and pos < len(buf) and buf[pos] == ",":
            pos += 1
