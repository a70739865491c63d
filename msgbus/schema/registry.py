"""Message types by name: the STOMP ``messageClass`` header value to its model.

The consumer, the validator and the store look a type up here instead of switching
on it; a new type is one more entry in ``MESSAGE_TYPES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from msgbus.errors import SchemaError
from msgbus.schema.models import JobStatusEvent, Message, ProbeResult, TransferEvent

__all__ = ["DEFAULT_MESSAGE_CLASS", "MESSAGE_TYPES", "model_for"]

MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {model.message_class: model for model in (ProbeResult, JobStatusEvent, TransferEvent)}
)
"""Every message type, keyed by its ``messageClass`` name."""

DEFAULT_MESSAGE_CLASS = ProbeResult.message_class
"""Assumed when a body carries no ``messageClass`` header (plain WLCG/MSG traffic)."""


def model_for(message_class: str) -> type[Message]:
    """The model named ``message_class``; SchemaError lists the known names otherwise."""
    try:
        return MESSAGE_TYPES[message_class]
    except KeyError:
        known = ", ".join(MESSAGE_TYPES)
        raise SchemaError(
            f"unknown messageClass {message_class!r}; expected one of: {known}"
        ) from None
