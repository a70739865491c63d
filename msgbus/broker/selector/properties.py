"""A STOMP message's properties as ActiveMQ's selectors see them.

ActiveMQ's STOMP converter (activemq-stomp FrameTranslator) turns the standard headers into
JMS fields and removes them; every other header becomes a string property. So a selector
reads ``priority`` as JMSPriority (an integer, 4 when absent) and never as a property named
``priority``; the same for ``type``, ``timestamp``, ``expires``, ``persistent``,
``correlation-id``, ``reply-to``. A header named like a JMS field (``JMSType``) sets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from msgbus.broker.selector.expressions import Lookup
from msgbus.broker.selector.java import (
    JavaValue,
    JInt,
    JLong,
    NumberFormatError,
    parse_int,
    parse_long,
)

__all__ = ["lookup"]

# Headers ActiveMQ consumes (as JMS fields or STOMP machinery) instead of keeping as properties.
_CONSUMED = frozenset(
    {
        "destination", "correlation-id", "expires", "timestamp", "priority", "type",
        "reply-to", "persistent", "receipt", "message-id", "redelivered", "subscription",
        "JMSXUserID", "transaction",
    }
)  # fmt: skip

_Field = Callable[[Mapping[str, str], int], JavaValue]


def _header(headers: Mapping[str, str], jms: str, stomp: str) -> str | None:
    # The JMS-named header is set after the standard ones: it wins.
    return headers.get(jms, headers.get(stomp))


def _number(parse: Callable[[str], JInt | JLong], raw: str | None, default: int) -> JavaValue:
    try:
        return parse(raw) if raw is not None else parse(str(default))
    except NumberFormatError:  # ActiveMQ refuses such a SEND; here the default stands
        return parse(str(default))


def _destination(raw: str | None) -> str | None:
    for prefix, scheme in (("/queue/", "queue://"), ("/topic/", "topic://")):
        if raw is not None and raw.startswith(prefix):
            return scheme + raw[len(prefix) :]
    return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_FIELDS: dict[str, _Field] = {
    "JMSDestination": lambda h, r: _destination(h.get("destination")),
    "JMSReplyTo": lambda h, r: _destination(h.get("reply-to")),
    "JMSType": lambda h, r: _header(h, "JMSType", "type"),
    "JMSDeliveryMode": lambda h, r: (
        "PERSISTENT" if h.get("persistent") == "true" else "NON_PERSISTENT"
    ),
    "JMSPriority": lambda h, r: _number(parse_int, _header(h, "JMSPriority", "priority"), 4),
    "JMSMessageID": lambda h, r: h.get("message-id"),
    # Without a timestamp header ActiveMQ stamps the send; here, the moment of selection.
    "JMSTimestamp": lambda h, r: _number(
        parse_long, _header(h, "JMSTimestamp", "timestamp"), _now_ms()
    ),
    "JMSCorrelationID": lambda h, r: _header(h, "JMSCorrelationID", "correlation-id"),
    "JMSExpiration": lambda h, r: _number(parse_long, _header(h, "JMSExpiration", "expires"), 0),
    "JMSRedelivered": lambda h, r: r > 0,
    "JMSXDeliveryCount": lambda h, r: JInt(r + 1),
    "JMSXGroupID": lambda h, r: h.get("JMSXGroupID"),
    "JMSXGroupSeq": lambda h, r: _number(parse_int, h.get("JMSXGroupSeq"), 0),
    "JMSXUserID": lambda h, r: None,
    "JMSXProducerTXID": lambda h, r: None,
    "JMSActiveMQBrokerInTime": lambda h, r: JLong(_now_ms()),
    "JMSActiveMQBrokerOutTime": lambda h, r: JLong(_now_ms()),
    "JMSActiveMQBrokerPath": lambda h, r: "null",
    "JMSXGroupFirstForConsumer": lambda h, r: False,
}


def lookup(headers: Mapping[str, str], redeliveries: int = 0) -> Lookup:
    """The selector names of one message: JMS fields, then its other headers as strings."""

    def value(name: str) -> JavaValue:
        field = _FIELDS.get(name)
        if field is not None:
            return field(headers, redeliveries)
        return None if name in _CONSUMED else headers.get(name)

    return value
