"""Ask a running ActiveMQ about itself over STOMP (statistics plugin and advisories).

The statistics plugin answers a message sent to ``ActiveMQ.Statistics.Broker`` (or
``...Destination.<name>``) with a MapMessage to the ``reply-to`` destination; STOMP
delivers it as JSON when the subscription asks for the ``jms-map-json`` transformation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgbus.errors import NetworkError
from msgbus.stomp.frames import ErrorFrame, MessageFrame
from msgbus.transport.connection import Connection

__all__ = [
    "BrokerStats",
    "DestinationStats",
    "DurableSubscription",
    "bridges",
    "broker_stats",
    "destination_stats",
    "durable_subscriptions",
    "parse_map",
]

_QUIET = 0.5  # seconds without a reply that end a multi-reply query
# The first advisory query of a broker's life is slow (class loading): minimum wait.
_FIRST_ADVISORY = 2.0
_END_WITH_NULL = "ActiveMQ.Statistics.Destination.List.End.With.Null"


@dataclass(frozen=True)
class BrokerStats:
    connections: int
    destinations: int
    enqueued: int
    dequeued: int
    consumers: int
    bridges: frozenset[str]  # brokers this one has a running network bridge to


@dataclass(frozen=True)
class DestinationStats:
    name: str
    size: int
    enqueued: int
    dequeued: int
    consumers: int


@dataclass(frozen=True)
class DurableSubscription:
    client_id: str
    name: str
    destination: str  # STOMP form: /topic/NAME
    selector: str | None


def parse_map(body: bytes) -> dict[str, Any]:
    """Decode a ``jms-map-json`` body (XStream's map layout) into a plain dict."""
    try:
        doc = json.loads(body)["map"]
        if not doc:  # the empty map that ends a destination list
            return {}
        entries = doc["entry"]
    except (ValueError, KeyError, TypeError) as exc:
        raise NetworkError(f"statistics reply is not a jms-map-json map: {exc}") from None
    if isinstance(entries, dict):
        entries = [entries]
    out: dict[str, Any] = {}
    for entry in entries:
        key = entry.get("string")
        if isinstance(key, list):  # a string value: ["key", "value"]
            out[str(key[0])] = key[1] if len(key) > 1 else ""
            continue
        values = [v for k, v in entry.items() if k != "string"]
        out[str(key)] = values[0] if values else None
    return out


def _gather(
    conn: Connection,
    listen: str,
    *,
    headers: dict[str, str],
    first: float,
    request: str | None = None,
    request_headers: dict[str, str] | None = None,
    end: Callable[[MessageFrame], bool] | None = None,
) -> list[MessageFrame]:
    """Subscribe to ``listen``, optionally send a request replying there, gather messages.

    Waits ``first`` seconds for the first message, then until ``_QUIET`` passes without
    one, or until a message for which ``end`` is true (not returned).
    """
    sub = uuid.uuid4().hex
    conn.subscribe(listen, id=sub, headers=headers)
    if request is not None:
        conn.send(request, b"", {"reply-to": listen, **(request_headers or {})})
    got: list[MessageFrame] = []
    timeout = first
    while True:
        frame = conn.receive(timeout)
        if frame is None:
            break
        if isinstance(frame, ErrorFrame):
            raise NetworkError(
                f"broker refused the query on {request or listen}: "
                f"{frame.headers.get('message', '')}; check the admin user's permissions"
            )
        if isinstance(frame, MessageFrame):
            if end is not None and end(frame):
                break
            got.append(frame)
            timeout = _QUIET
    conn.unsubscribe(id=sub)
    return got


def _ask(conn: Connection, request: str, first: float) -> list[dict[str, Any]]:
    reply_to = f"/temp-queue/msgbus.stats.{uuid.uuid4().hex}"
    replies = _gather(
        conn,
        reply_to,
        headers={"transformation": "jms-map-json"},
        first=first,
        request=request,
        # Asks for an empty map after the last destination, so no quiet wait is needed.
        request_headers={_END_WITH_NULL: "true"},
        end=lambda frame: not parse_map(frame.body),
    )
    return [parse_map(r.body) for r in replies]


def _advisories(conn: Connection, topic: str) -> list[dict[str, Any]]:
    """What the broker replays to a new subscriber of an advisory topic (current state)."""
    frames = _gather(
        conn, topic, headers={"transformation": "jms-advisory-json"}, first=_FIRST_ADVISORY
    )
    out: list[dict[str, Any]] = []
    for frame in frames:
        try:
            doc = json.loads(frame.body)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.extend(v for v in doc.values() if isinstance(v, dict))
    return out


def broker_stats(conn: Connection, timeout: float = 5.0) -> BrokerStats:
    """Broker-wide counters, plus the number of client connections and destinations."""
    replies = _ask(conn, "/queue/ActiveMQ.Statistics.Broker", timeout)
    if not replies:
        raise NetworkError(
            f"no statistics reply within {timeout:g}s; is the statisticsBrokerPlugin configured?"
        )
    data = replies[0]
    dests = destination_stats(conn, timeout)
    # Current connections are replayed to every new advisory subscriber, ours included.
    connections = _advisories(conn, "/topic/ActiveMQ.Advisory.Connection")
    return BrokerStats(
        connections=max(len(connections) - 1, 0),
        destinations=len(dests),
        enqueued=int(data.get("enqueueCount", 0)),
        dequeued=int(data.get("dequeueCount", 0)),
        consumers=int(data.get("consumerCount", 0)),
        bridges=bridges(conn),
    )


def bridges(conn: Connection) -> frozenset[str]:
    """Names of the brokers this broker has a started network bridge with."""
    frames = _gather(
        conn,
        "/topic/ActiveMQ.Advisory.NetworkBridge",
        headers={"transformation": "jms-advisory-json"},
        first=_FIRST_ADVISORY,
    )
    names = set()
    for frame in frames:
        if frame.headers.get("started") != "true":
            continue
        try:
            names.add(str(json.loads(frame.body)["BrokerInfo"]["brokerName"]))
        except (ValueError, KeyError, TypeError):
            continue
    return frozenset(names)


def destination_stats(conn: Connection, timeout: float = 5.0) -> list[DestinationStats]:
    """Every queue and topic except ActiveMQ's own (advisories, statistics)."""
    out: list[DestinationStats] = []
    for kind in ("queue", "topic"):
        replies = _ask(conn, f"/{kind}/ActiveMQ.Statistics.Destination.>", min(timeout, 1.0))
        for data in replies:
            name = str(data.get("destinationName", ""))
            if not name or name.split("://")[-1].startswith("ActiveMQ."):
                continue
            out.append(
                DestinationStats(
                    name=name,
                    size=int(data.get("size", 0)),
                    enqueued=int(data.get("enqueueCount", 0)),
                    dequeued=int(data.get("dequeueCount", 0)),
                    consumers=int(data.get("consumerCount", 0)),
                )
            )
    return out


def durable_subscriptions(conn: Connection) -> list[DurableSubscription]:
    """Durable topic subscriptions with a connected subscriber (bridges' own left out).

    ActiveMQ shows consumers, not offline subscriptions, over STOMP: a durable
    subscriber that is disconnected at the time is not listed.
    """
    client_ids = {
        str(c.get("connectionId", {}).get("value")): str(c.get("clientId", ""))
        for c in _advisories(conn, "/topic/ActiveMQ.Advisory.Connection")
    }
    out = []
    for info in _advisories(conn, "/topic/ActiveMQ.Advisory.Consumer.Topic.>"):
        name = info.get("subscriptionName")
        if not name or info.get("networkSubscription") or str(name).startswith("NC_"):
            continue
        selector = info.get("selector")
        if isinstance(selector, str):
            selector = selector.removeprefix("convert_string_expressions:")
        connection = str(info.get("consumerId", {}).get("connectionId"))
        dest = info.get("destination", {})
        out.append(
            DurableSubscription(
                client_id=client_ids.get(connection, ""),
                name=str(name),
                destination=f"/topic/{dest.get('string', '')}",
                selector=selector or None,
            )
        )
    return out
