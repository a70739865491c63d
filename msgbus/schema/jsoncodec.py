"""The JSON format: one message as an object, several as a list of objects.

Keys are the model's wire keys; unknown keys are kept. ``NaN`` and ``Infinity`` are
refused (they are not JSON). With duplicate keys the last one wins, as in most
JSON readers.
"""

from __future__ import annotations

import json
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

    A document that is not JSON, or neither an object nor a list, raises DecodeError.
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
    return results


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
