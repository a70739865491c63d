"""Field types shared by the message models: UTC timestamps and single-line text."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "Line",
    "OptionalText",
    "Text",
    "UtcTimestamp",
    "drop_cr_before_eol",
    "format_timestamp",
]

# [0-9], not \d: Python's \d also takes other scripts' digits, JSON Schema's does not.
_TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
_TIMESTAMP_RE = re.compile(_TIMESTAMP_PATTERN)


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PydanticCustomError(
                "naive_timestamp", "expected a timezone-aware datetime (UTC), got a naive one"
            )
        try:
            utc = value.astimezone(timezone.utc)
        except OverflowError:
            raise PydanticCustomError(
                "timestamp_range",
                "'{value}' is outside the years 1-9999 in UTC",
                {"value": value.isoformat()},
            ) from None
        # The wire format has whole seconds; truncating here keeps round trips exact.
        return utc.replace(microsecond=0)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "timestamp_type",
            "expected a UTC time string YYYY-MM-DDTHH:MM:SSZ, got {kind}",
            {"kind": type(value).__name__},
        )
    if _TIMESTAMP_RE.fullmatch(value):
        try:
            # Checked by the pattern, so the C parser needs no "Z" (3.10 lacks it); an
            # offset of zero gives timezone.utc itself, a quarter of the cost of replace().
            return datetime.fromisoformat(value[:19] + "+00:00")
        except ValueError as exc:
            raise PydanticCustomError(
                "timestamp_range",
                "'{value}' is not a real date/time: {why}",
                {"value": value[:40], "why": str(exc)},
            ) from None
    raise PydanticCustomError(
        "timestamp_format",
        "expected UTC time as YYYY-MM-DDTHH:MM:SSZ (e.g. 2026-01-31T12:00:00Z), got '{value}'",
        {"value": value[:40]},
    )


def format_timestamp(value: datetime) -> str:
    """Render a UTC datetime in the wire format ``YYYY-MM-DDTHH:MM:SSZ``."""
    # Not strftime: glibc does not zero-pad years below 1000.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
    )


UtcTimestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    # No serializer of ours: pydantic writes an aware UTC datetime with whole seconds as
    # exactly this format (years below 1000 zero-padded), without a Python call per
    # message; the tests hold it to format_timestamp.
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _TIMESTAMP_PATTERN}),
]
"""A UTC instant with whole seconds, written ``YYYY-MM-DDTHH:MM:SSZ`` on the wire."""

# Single-line values: a line break or NUL would break the WLCG text format (and
# PostgreSQL text columns), so they are refused at the model instead of at write time.
Line = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\r\n\x00]*$")]
"""Mandatory single-line text, not empty."""

OptionalText = Annotated[str, StringConstraints(pattern=r"^[^\r\n\x00]*$")]
"""Optional single-line text (may be empty)."""


def drop_cr_before_eol(text: str) -> str:
    """Drop CRs just before a line end or the end: CRLF noise the text format drops too."""
    if "\r" not in text:
        return text
    # Per line, not a regex: r"\r+(?=\n|$)" is quadratic on long runs of CR.
    return "\n".join(line.rstrip("\r") for line in text.split("\n"))


_TEXT_PATTERN = r"^[^\x00]*$"
_EOT_LINE = re.compile(r"^EOT$", re.MULTILINE)


def _text(value: str) -> str:
    # Membership tests, not patterns: detailsData runs to kilobytes, and a pattern scan
    # cost more than the rest of a ProbeResult's validation (measured).
    if "\x00" in value:
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "String should match pattern '{pattern}' (no NUL characters)",
            {"pattern": _TEXT_PATTERN},
        )
    value = drop_cr_before_eol(value)
    if "EOT" in value and _EOT_LINE.search(value):
        raise PydanticCustomError(
            "wlcg_eot", "a line reading only 'EOT' would end the WLCG message early"
        )
    return value


Text = Annotated[
    str,
    AfterValidator(_text),
    WithJsonSchema({"type": "string", "pattern": _TEXT_PATTERN}),
]
"""Free text that may span lines (``detailsData``, the WLCG format's last field): CRs
before line ends are dropped, and no line may read only ``EOT``, which would end the
message there."""
