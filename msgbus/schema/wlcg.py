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

import re
from collections.abc import Iterable
from typing import Any

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema.models import Message, ProbeResult
from msgbus.schema.text import DEFAULT_MAX_BYTES, to_text
from msgbus.schema.validation import Decoded, messages_or_raise, validate_message

__all__ = ["EOT", "decode_wlcg", "encode_wlcg", "read_wlcg"]

EOT = "EOT"
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class _Block:
    """The message being read: its keys, their lines, and its first problem."""

    __slots__ = ("fields", "lines", "message_no", "multi", "problem")

    def __init__(self, message_no: int) -> None:
        self.message_no = message_no
        self.fields: dict[str, str] = {}
        self.lines: dict[str, int] = {}
        self.multi: list[str] | None = None
        self.problem: DecodeError | None = None


def _finish(block: _Block, model: type[Message]) -> Decoded:
    if block.problem is not None:
        return Decoded(block.message_no, None, (block.problem,))
    if block.multi is not None and model.multiline_field:
        block.fields[model.multiline_field] = "\n".join(block.multi)
    return validate_message(model, block.fields, block.message_no, block.lines)


def _add_line(block: _Block, line: str, line_no: int, model: type[Message]) -> None:
    key, sep, value = line.partition(":")
    if not sep or not _KEY_RE.fullmatch(key):
        shown = line if len(line) <= 40 else line[:37] + "..."
        block.problem = DecodeError(
            f"expected 'key: value' or 'EOT', got {shown!r}",
            message_no=block.message_no,
            line_no=line_no,
        )
        return
    if key in block.fields:
        block.problem = DecodeError(
            f"duplicate key (first on line {block.lines[key]}); is the 'EOT' line before "
            "it missing?",
            message_no=block.message_no,
            line_no=line_no,
            field=key,
        )
        return
    if value.startswith(" "):
        value = value[1:]
    block.lines[key] = line_no
    if key == model.multiline_field:
        block.multi = [value]
    else:
        block.fields[key] = value


def read_wlcg(text: str, model: type[Message] = ProbeResult) -> list[Decoded]:
    """Read every message of ``text``: one result per message, never raising for one."""
    if text.endswith("\n"):
        text = text[:-1]
    results: list[Decoded] = []
    block: _Block | None = None
    count = 0
    for line_no, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line.rstrip("\r")
        if line == EOT:
            if block is not None:
                results.append(_finish(block, model))
                block = None
            continue
        if block is None:
            if not line.strip():
                continue
            count += 1
            block = _Block(count)
        if block.multi is not None:
            block.multi.append(line)
        elif block.problem is None and line.strip():
            _add_line(block, line, line_no, model)
    if block is not None:
        results.append(_finish(block, model))
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
