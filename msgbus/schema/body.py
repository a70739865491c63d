"""Message bodies as publisher and consumer see them: bytes plus STOMP headers.

``encode_body`` writes messages of one type and the headers describing them;
``decode_body`` reads a body back into one result per message, so a consumer can
store the valid messages of a bulk body and dead-letter the invalid ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Literal

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema.jsoncodec import encode_json, read_json
from msgbus.schema.models import Message
from msgbus.schema.registry import DEFAULT_MESSAGE_CLASS, MESSAGE_TYPES, model_for
from msgbus.schema.text import DEFAULT_MAX_BYTES, to_text
from msgbus.schema.validation import Decoded
from msgbus.schema.wlcg import encode_wlcg, read_wlcg

__all__ = [
    "CONTENT_TYPES",
    "HEADER_CONTENT_TYPE",
    "HEADER_MESSAGE_CLASS",
    "HEADER_RECORD_COUNT",
    "Format",
    "decode_body",
    "encode_body",
    "format_of",
    "is_foreign",
]

Format = Literal["wlcg", "json"]

HEADER_CONTENT_TYPE = "content-type"
HEADER_MESSAGE_CLASS = "messageClass"
HEADER_RECORD_COUNT = "recordCount"

CONTENT_TYPES: Mapping[str, str] = {
    "wlcg": "text/plain; charset=utf-8",
    "json": "application/json",
}


def encode_body(
    messages: Message | Sequence[Message], fmt: Format = "wlcg"
) -> tuple[bytes, dict[str, str]]:
    """Encode messages of one type into a body and its STOMP headers.

    Headers: content-type, messageClass, recordCount and, for a single message, its
    selector fields (e.g. siteName, metricStatus) so brokers can filter on them.
    """
    batch = [messages] if isinstance(messages, Message) else list(messages)
    if not batch:
        raise SchemaError("no message to encode; pass at least one")
    kind = type(batch[0])
    if any(type(m) is not kind for m in batch):
        names = sorted({type(m).__name__ for m in batch})
        raise SchemaError(
            f"a body carries one message type, got {', '.join(names)}; send one body per type"
        )
    if fmt == "wlcg":
        text = encode_wlcg(batch)
    elif fmt == "json":
        text = encode_json(batch)
    else:
        raise SchemaError(f"unknown body format {fmt!r}; expected 'wlcg' or 'json'")
    return text.encode("utf-8"), body_headers(batch, fmt)


def body_headers(batch: Sequence[Message], fmt: Format, *, lean: bool = False) -> dict[str, str]:
    """The STOMP headers of a body of ``batch`` (one type) in ``fmt``: content-type,
    messageClass, recordCount and, for a single message, its selector fields. ``lean``
    leaves out the first three where they hold what :func:`decode_body` assumes without
    them (WLCG text, ProbeResult, one message): brokers pay for every header."""
    kind = type(batch[0])
    headers = {
        HEADER_CONTENT_TYPE: CONTENT_TYPES[fmt],
        HEADER_MESSAGE_CLASS: kind.message_class,
        HEADER_RECORD_COUNT: str(len(batch)),
    }
    if lean:
        if fmt == "wlcg":  # sniffed: WLCG text never starts with { or [
            del headers[HEADER_CONTENT_TYPE]
        if kind.message_class == DEFAULT_MESSAGE_CLASS:
            del headers[HEADER_MESSAGE_CLASS]
        if len(batch) == 1:
            del headers[HEADER_RECORD_COUNT]
    if len(batch) == 1:
        for name in kind.selector_fields:
            value = getattr(batch[0], name)
            if value is not None:
                headers[name] = value.value if isinstance(value, Enum) else str(value)
    return headers


def format_of(text: str, content_type: str | None) -> Format:
    """The body format from its content-type, else sniffed: ``{`` or ``[`` is JSON."""
    declared = _declared_format(content_type) if content_type else None
    if declared is not None:
        return declared
    return "json" if text.lstrip()[:1] in ("{", "[") else "wlcg"


@functools.lru_cache(maxsize=64)
def _declared_format(content_type: str) -> Format | None:
    # Cached: a stream carries a handful of content-type values, and parsing one cost
    # more than reading the rest of a body's headers (measured).
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media.startswith("text/"):
        return "wlcg"
    return None


_FIELDS = frozenset(name for model in MESSAGE_TYPES.values() for name in model.model_fields)


def is_foreign(body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether ``body`` is somebody else's payload rather than a (possibly broken) msgbus
    message: no messageClass header, and either not UTF-8 (Avro, any binary) or text
    with something in it but no EOT line (WLCG framing) and no field name of a msgbus
    message type in its first record (``key: value`` lines, or the keys of the first
    JSON object), as APEL records (``%%``-separated) are. Empty bodies, bare separators
    and JSON that does not parse are broken messages of ours: dead letters."""
    if HEADER_MESSAGE_CLASS in headers:
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    if not text.strip():
        return False
    if text.lstrip()[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError:
            return False
        items = data if isinstance(data, list) else [data]
        return bool(items) and not (isinstance(items[0], dict) and _FIELDS & items[0].keys())
    for line in text.splitlines():
        if line.strip() == "EOT":
            return False
        key, colon, _ = line.partition(":")
        if colon and key.strip() in _FIELDS:
            return False
    return True


def _record_count_problem(declared: str, found: int) -> Decoded | None:
    if declared.strip().isdigit() and int(declared) == found:
        return None
    problem = DecodeError(
        f"recordCount header says {declared!r} but the body holds {found} message(s); "
        "the body may be truncated or the producer miscounted",
        field=HEADER_RECORD_COUNT,
    )
    return Decoded(None, None, (problem,))


def decode_body(
    body: bytes,
    headers: Mapping[str, str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Decoded]:
    """Decode a body into one result per message; never raises for bad input.

    The model comes from the messageClass header (default ProbeResult), the format
    from content-type (else sniffed). A body that cannot be split into messages
    (too large, not UTF-8, not JSON, unknown messageClass) gives a single error
    result with ``message_no`` None; so does a body that holds no message at all
    (empty, blank, only separators, ``[]``), which a consumer must not acknowledge
    without a trace, and a recordCount header that does not match, appended after the
    messages.
    """
    try:
        model = model_for(headers.get(HEADER_MESSAGE_CLASS) or DEFAULT_MESSAGE_CLASS)
        text = to_text(body, max_bytes)
        fmt = format_of(text, headers.get(HEADER_CONTENT_TYPE))
        results = read_json(text, model) if fmt == "json" else read_wlcg(text, model)
    except DecodeError as exc:
        return [Decoded(None, None, (exc,))]
    except SchemaError as exc:
        return [Decoded(None, None, (DecodeError(str(exc), field=HEADER_MESSAGE_CLASS),))]
    if not results:
        empty = DecodeError("the body holds no message (empty, blank or only separators)")
        return [Decoded(None, None, (empty,))]
    declared = headers.get(HEADER_RECORD_COUNT)
    if declared is not None:
        mismatch = _record_count_problem(declared, len(results))
        if mismatch is not None:
            results.append(mismatch)
    return results
