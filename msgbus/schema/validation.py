"""Validating one decoded message against its model, and the per-message result.

pydantic's ValidationError never leaves this module: each problem becomes a
DecodeError naming the message number, the line (when the format has lines) and the
field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema.models import Message

__all__ = ["Decoded", "build_message", "messages_or_raise", "validate_message"]

M = TypeVar("M", bound=Message)

# Error types whose message already shows the offending input.
_SHOWS_INPUT = frozenset(
    {
        "missing",
        "timestamp_format",
        "timestamp_type",
        "timestamp_range",
        "naive_timestamp",
        "perfdata",
        "value_error",
        "wlcg_eot",
    }
)


# Not frozen: one is made per consumed message, and a frozen dataclass's __init__ costs
# two and a half times as much (measured).
@dataclass(slots=True)
class Decoded:
    """One message of a body: the model instance, or the problems that stopped it.

    ``message_no`` is 1-based, None for a problem with the body as a whole.
    """

    message_no: int | None
    message: Message | None
    errors: tuple[DecodeError, ...] = ()
    source: str | None = None
    """The message's own WLCG text (no EOT), when it was read from WLCG: a publisher
    sending WLCG sends these validated bytes instead of encoding the model again."""

    @property
    def ok(self) -> bool:
        return self.message is not None

    @property
    def reason(self) -> str:
        """All problems on one line (for a dead-letter header or a log line)."""
        return "; ".join(str(e) for e in self.errors)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(err: ErrorDetails, message_no: int | None, lines: Mapping[str, int]) -> DecodeError:
    loc = err["loc"]
    field = ".".join(str(part) for part in loc) if loc else None
    kind = err["type"]
    if kind == "missing":
        reason = "mandatory field missing"
    else:
        reason = err["msg"].removeprefix("Value error, ")
        if kind not in _SHOWS_INPUT:
            reason = f"{reason}, got {_show(err['input'])}"
    line_no = lines.get(str(loc[0])) if loc else None
    return DecodeError(reason, message_no=message_no, line_no=line_no, field=field)


def validate_message(
    model: type[Message],
    data: Any,
    message_no: int | None,
    lines: Mapping[str, int] | None = None,
) -> Decoded:
    """Validate ``data`` (normally a dict of wire keys) as ``model``.

    ``lines`` maps a key to the line it was read from, so problems can name it.
    """
    try:
        return Decoded(message_no, model.model_validate(data))
    except ValidationError as exc:
        where = lines or {}
        problems = tuple(_problem(e, message_no, where) for e in exc.errors(include_url=False))
        return Decoded(message_no, None, problems)


def messages_or_raise(results: list[Decoded]) -> list[Message]:
    """The messages of ``results``; raise the first problem if there is any."""
    out: list[Message] = []
    for result in results:
        if result.message is None:
            raise result.errors[0]
        out.append(result.message)
    return out


def build_message(model: type[M], data: Mapping[str, Any]) -> M:
    """Make a ``model`` from wire keys; SchemaError lists every problem.

    For producers building messages in code (``msgbus probe``), so pydantic's
    ValidationError does not reach them.
    """
    result = validate_message(model, dict(data), None)
    if result.message is None:
        raise SchemaError(f"invalid {model.message_class}: {result.reason}")
    return cast(M, result.message)  # model_validate of ``model`` returns a ``model``
