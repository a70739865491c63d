"""AMS message attributes as STOMP headers and back, losslessly.

AMS takes any attribute name and value; STOMP headers cannot take all of them. An
attribute travels:

* as itself (``partition_date: 2026-12-06``) when it can: a STOMP consumer reads it as
  any header, and the codec escapes ``:``, ``\\``, CR and LF in it;
* under an escaped name, ``ams.attr.<name>``, when its name is one that STOMP, the
  brokers or msgbus give a meaning (``type``, ``destination``, ``content-length``,
  ``msgbus-id``, ...), is empty, or starts with ``ams.``;
* JSON-encoded, ``ams.json.<name as JSON>: <value as JSON>``, when its name or value
  holds what no STOMP header can carry (NUL, an unpaired surrogate).

:func:`from_headers` restores exactly the attributes :func:`to_headers` was given and
leaves out every other header a broker or msgbus sets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

__all__ = ["ENCODED", "ESCAPED", "from_headers", "to_headers"]

ESCAPED = "ams.attr."
ENCODED = "ams.json."
_OURS = "ams."
# Headers with a meaning in a SEND or MESSAGE frame (STOMP, ActiveMQ's JMS mapping, the
# embedded broker): an attribute of that name must not set, nor be mistaken for, one.
_RESERVED = frozenset(
    {
        "destination", "content-length", "receipt", "receipt-id", "transaction",
        "message-id", "subscription", "ack", "id", "timestamp", "expires", "priority",
        "persistent", "durable", "redelivered", "correlation-id", "reply-to", "type",
        "transformation", "selector", "original-destination", "",
    }
)  # fmt: skip
_RESERVED_PREFIXES = ("msgbus-", "activemq.", "jms")
# NUL ends a frame; an unpaired surrogate is not UTF-8.
_UNSENDABLE = re.compile("[\0\ud800-\udfff]")


def _reserved(name: str) -> bool:
    lowered = name.lower()
    return lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIXES)


def to_headers(attributes: Mapping[str, str]) -> dict[str, str]:
    """The STOMP headers that carry ``attributes``."""
    headers: dict[str, str] = {}
    for name, value in attributes.items():
        if _UNSENDABLE.search(name) or _UNSENDABLE.search(value):
            headers[ENCODED + json.dumps(name)] = json.dumps(value)
        elif _reserved(name) or name.startswith(_OURS):
            headers[ESCAPED + name] = value
        else:
            headers[name] = value
    return headers


def from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The attributes a message's ``headers`` carry (see :func:`to_headers`)."""
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith(ESCAPED):
            attributes[name[len(ESCAPED) :]] = value
        elif name.startswith(ENCODED):
            try:
                key, text = json.loads(name[len(ENCODED) :]), json.loads(value)
            except ValueError:
                continue  # not ours: some other client's header, not an attribute
            if isinstance(key, str) and isinstance(text, str):
                attributes[key] = text
        elif not (_reserved(name) or name.startswith(_OURS)):
            attributes[name] = value
    return attributes
