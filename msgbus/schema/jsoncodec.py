"""The JSON format: one message as an object, several as a list of objects.

Keys are the model's wire keys; unknown keys are kept. ``NaN`` and ``Infinity`` are
refused (they are not JSON). With duplicate keys the last one wins, as in most
JSON readers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, NoReturn

from pydantic_core import PydanticSerializationError

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema.models import Message, ProbeResult
from msgbus.schema.text import DEFAULT_MAX_BYTES, to_text
from msgbus.schema.validation import Decoded, messages_or_raise, validate_message

__all__ = ["decode_json", "encode_json", "read_json"]


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_strict_decoder = json.JSONDecoder(parse_constant=_no_constant)

_JSON_TYPES = {
    dict: "object",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def read_json(text: str, model: type[Message] = ProbeResult) -> list[Decoded]:
    """Read every message of ``text``: one result per message.

    Problems name the line where their message's object starts. A document that is
    not JSON, or neither an object nor a list, raises DecodeError.
    """
    try:
        doc = _strict_decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"not valid JSON: {exc.msg} (column {exc.colno}); fix the JSON syntax",
            line_no=exc.lineno,
        ) from None
    except (ValueError, RecursionError) as exc:
        # Too-long integers, NaN/Infinity, or nesting deeper than the parser can follow.
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise DecodeError(f"not valid JSON: {reason}") from None
    if isinstance(doc, dict):
        items: list[Any] = [doc]
    elif isinstance(doc, list):
        items = doc
    else:
        raise DecodeError(f"expected a JSON object or a list of objects, got a {_kind(doc)}")
    results: list[Decoded] = []
    for message_no, item in enumerate(items, 1):
        if isinstance(item, dict):
            results.append(validate_message(model, item, message_no))
        else:
            problem = DecodeError(
                f"expected a JSON object, got a {_kind(item)}", message_no=message_no
            )
            results.append(Decoded(message_no, None, (problem,)))
    if any(not r.ok for r in results):
        results = _with_lines(results, text, isinstance(doc, list))
    return results


_BLANK_RE = re.compile(r"[ \t\n\r]*")


def _skip_blank(text: str, pos: int) -> int:
    m = _BLANK_RE.match(text, pos)
    return m.end() if m else pos


def _start_lines(text: str, is_list: bool) -> list[int]:
    """The line each message starts on, for JSON text that is known to parse."""
    pos = _skip_blank(text, 0)
    if not is_list:
        return [text.count("\n", 0, pos) + 1]
    starts: list[int] = []
    line, seen = 1, 0
    pos = _skip_blank(text, pos + 1)  # past "["
    while text[pos] != "]":
        line += text.count("\n", seen, pos)
        starts.append(line)
        _, end = _strict_decoder.raw_decode(text, pos)
        seen = pos
        pos = _skip_blank(text, end)
        if text[pos] == ",":
            pos = _skip_blank(text, pos + 1)
    return starts


def _with_lines(results: list[Decoded], text: str, is_list: bool) -> list[Decoded]:
    # Only bodies with problems pay for a second pass to find where messages start.
    lines = _start_lines(text, is_list)
    out: list[Decoded] = []
    for result, line_no in zip(results, lines, strict=True):
        errors = tuple(
            DecodeError(e.reason, message_no=e.message_no, line_no=line_no, field=e.field)
            for e in result.errors
        )
        out.append(Decoded(result.message_no, result.message, errors))
    return out


def decode_json(
    data: bytes | str, model: type[Message] = ProbeResult, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Message]:
    """Decode JSON into messages; raise DecodeError at the first problem."""
    return messages_or_raise(read_json(to_text(data, max_bytes), model))


def _dump(message: Message, message_no: int) -> str:
    try:
        return message.model_dump_json(exclude_defaults=True)
    except PydanticSerializationError as exc:
        raise SchemaError(
            f"message {message_no} cannot be written as JSON: {exc}; "
            "give unknown keys JSON-compatible values"
        ) from None


def encode_json(messages: Iterable[Message]) -> str:
    """Write one message as a JSON object, several (or none) as a list."""
    dumped = [_dump(m, no) for no, m in enumerate(messages, 1)]
    if len(dumped) == 1:
        return dumped[0]
    return "[" + ",".join(dumped) + "]"
