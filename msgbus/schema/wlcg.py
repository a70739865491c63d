"""The WLCG text format: ``key: value`` lines, one message per block, ``EOT`` between.

::

    serviceURI: ce01.example.org
    hostName: ce01.example.org
    ...
    detailsData: first line
    more lines
    EOT

Lines end in LF (a CR before it is dropped). The model's multi-line field
(``detailsData``) comes last: every line after its key, up to ``EOT``, belongs to it.
Blank lines between messages are ignored; the last ``EOT`` may be missing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema.models import Message, ProbeResult
from msgbus.schema.text import DEFAULT_MAX_BYTES, to_text
from msgbus.schema.types import drop_cr_before_eol
from msgbus.schema.validation import Decoded, messages_or_raise, validate_message

__all__ = ["EOT", "decode_wlcg", "encode_wlcg", "plain_fields", "read_wlcg", "wlcg_chunks"]

EOT = "EOT"
_EOT_LINE = f"\n{EOT}\n"
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _junk(line: str, message_no: int, line_no: int) -> Decoded:
    shown = line if len(line) <= 40 else line[:37] + "..."
    problem = DecodeError(
        f"expected 'key: value' or 'EOT', got {shown!r}", message_no=message_no, line_no=line_no
    )
    return Decoded(message_no, None, (problem,))


def _read_message(chunk: str, line_no: int, message_no: int, model: type[Message]) -> Decoded:
    """Read one message; ``chunk`` holds its lines, each after a newline."""
    fields = plain_fields(chunk, model)
    if fields is not None:
        result = validate_message(model, fields, message_no)
        if result.ok:
            return result
    # Something is wrong: read again line by line, so the problem can name its line.
    return _read_lines(*_cut_multiline(chunk, model), line_no, message_no, model)


def _cut_multiline(chunk: str, model: type[Message]) -> tuple[str, str | None]:
    """The head (``key: value`` lines) and the multi-line field's text, if any: everything
    from the multi-line key on is its value, so it is cut off first."""
    multiline = model.multiline_field
    if multiline:
        cut = chunk.find(f"\n{multiline}:")
        if cut >= 0:
            return chunk[:cut], chunk[cut + len(multiline) + 2 :]
    return chunk, None


def plain_fields(chunk: str, model: type[Message]) -> dict[str, str] | None:
    """The fields of a well-formed message (``key: value`` lines of known keys, each
    once, then the multi-line field), or None when it is anything else. The consumer's
    hot path: no per-line bookkeeping."""
    head, long_text = _cut_multiline(chunk, model)
    multiline = model.multiline_field
    lines = head.split("\n")
    del lines[0]
    try:
        # "key:value" without the space is valid too; it takes the slower path.
        fields = dict([line.split(": ", 1) for line in lines])
    except ValueError:
        return None
    if len(fields) != len(lines) or not _known_keys(model).issuperset(fields):
        return None
    if multiline and long_text is not None:
        fields[multiline] = long_text[1:] if long_text.startswith(" ") else long_text
    return fields


@functools.cache
def _known_keys(model: type[Message]) -> frozenset[str]:
    # Cached: pydantic builds model_fields anew on each access from the class (measured
    # at a sixth of this function's cost).
    return frozenset(model.model_fields)


def _read_lines(
    head: str, long_text: str | None, line_no: int, message_no: int, model: type[Message]
) -> Decoded:
    multiline = model.multiline_field
    known = _known_keys(model)
    fields: dict[str, str] = {}
    lines: dict[str, int] = {}
    for line in head.split("\n")[1:]:
        if line and not line.isspace():
            key, sep, value = line.partition(":")
            if not sep or (key not in known and not _KEY_RE.fullmatch(key)):
                return _junk(line, message_no, line_no)
            if key in fields:
                problem = DecodeError(
                    f"duplicate key (first on line {lines[key]}); is the 'EOT' line before "
                    "it missing?",
                    message_no=message_no,
                    line_no=line_no,
                    field=key,
                )
                return Decoded(message_no, None, (problem,))
            fields[key] = value[1:] if value.startswith(" ") else value
            lines[key] = line_no
        line_no += 1
    if multiline and long_text is not None:
        fields[multiline] = long_text[1:] if long_text.startswith(" ") else long_text
        lines[multiline] = line_no
    return validate_message(model, fields, message_no, lines)


def wlcg_chunks(text: str) -> Iterator[tuple[str, int]]:
    """Each message of ``text``: its lines (each after a newline, no EOT) and the line
    it starts on."""
    text = drop_cr_before_eol(text)  # CRLF producers
    # Newlines around the text make every line, first and last too, "\n"-delimited.
    padded = "\n" + text if text.endswith("\n") else "\n" + text + "\n"
    pos, line_no, last = 0, 1, len(padded) - 1
    while pos < last:
        end = padded.find(_EOT_LINE, pos)
        if end < 0:
            end = last  # the final EOT may be missing
        chunk = padded[pos:end]
        if chunk and not chunk.isspace():
            yield chunk, line_no
        line_no += chunk.count("\n") + 1
        pos = end + len(_EOT_LINE) - 1


def read_wlcg(text: str, model: type[Message] = ProbeResult) -> list[Decoded]:
    """Read every message of ``text``: one result per message, never raising for one."""
    results: list[Decoded] = []
    for chunk, line_no in wlcg_chunks(text):
        result = _read_message(chunk, line_no, len(results) + 1, model)
        if result.message is not None:
            result.source = chunk
        results.append(result)
    return results


def decode_wlcg(
    data: bytes | str, model: type[Message] = ProbeResult, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Message]:
    """Decode WLCG text into messages; raise DecodeError at the first problem."""
    return messages_or_raise(read_wlcg(to_text(data, max_bytes), model))


def _scalar(value: Any, key: str, message_no: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return repr(value)
    raise SchemaError(
        f"message {message_no}: field {key!r} holds {type(value).__name__} {value!r:.40}, "
        "which the WLCG text format cannot carry; send this message as JSON"
    )


def _check_extra(key: str, value: str, message_no: int) -> None:
    if not _KEY_RE.fullmatch(key):
        raise SchemaError(
            f"message {message_no}: key {key!r} cannot be written as WLCG text "
            "(letters, digits, '_', '.', '-' only); send this message as JSON"
        )
    if "\n" in value or "\r" in value:
        raise SchemaError(
            f"message {message_no}: field {key!r} spans lines, which WLCG text allows only "
            "for the last field; send this message as JSON"
        )


def encode_wlcg(messages: Iterable[Message]) -> str:
    """Write messages as WLCG text, each ended by an ``EOT`` line.

    SchemaError when an unknown key or its value cannot be written as text.
    """
    out: list[str] = []
    for message_no, message in enumerate(messages, 1):
        data = message.model_dump(mode="json", exclude_defaults=True)
        multiline = message.multiline_field
        long_text = data.pop(multiline, None) if multiline else None
        extra = message.__pydantic_extra__ or {}
        for key, value in data.items():
            text = _scalar(value, key, message_no)
            if key in extra:
                _check_extra(key, text, message_no)
            out.append(f"{key}: {text}")
        if long_text is not None:
            out.append(f"{multiline}: {long_text}")
        out.append(EOT)
    return "\n".join(out) + "\n" if out else ""
