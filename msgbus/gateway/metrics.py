"""AMS's ``:metrics`` of topics and subscriptions, and the operational ``/v1/metrics``.

Counted by the gateway process, in AMS's metric objects: a topic's messages and bytes
published through the gateway (not those sent over STOMP directly), per day too, and
its publishing rate (messages of the latest publish per second since the one before,
as AMS defines it); a subscription's messages and bytes handed out by pulls
(redeliveries included) and its consumption rate, likewise. Bytes are the decoded
data. A push subscription adds its endpoint's counts and state
(:class:`~msgbus.gateway.push.PushState`). The counters start from 0 when the gateway
starts: they are not kept.
"""

from __future__ import annotations

import os
import platform
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from msgbus.gateway.push import PushState

__all__ = ["Counters", "operational"]

_STARTED = (time.monotonic(), time.process_time())


@dataclass
class _Count:
    messages: int = 0
    bytes: int = 0
    rate: float = 0.0
    last: float | None = None
    daily: Counter[str] = field(default_factory=Counter)

    def add(self, messages: int, size: int) -> None:
        now = time.monotonic()
        if self.last is not None and now > self.last:
            self.rate = messages / (now - self.last)
        self.last = now
        self.messages += messages
        self.bytes += size
        self.daily[datetime.now(timezone.utc).strftime("%Y-%m-%d")] += messages


class Counters:
    """Per-topic and per-subscription counts; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, _Count] = {}
        self._subs: dict[str, _Count] = {}

    def published(self, topic: str, messages: int, size: int) -> None:
        with self._lock:
            self._topics.setdefault(topic, _Count()).add(messages, size)

    def pulled(self, sub: str, messages: int, size: int) -> None:
        with self._lock:
            self._subs.setdefault(sub, _Count()).add(messages, size)

    def forget(self, topic: str | None = None, sub: str | None = None) -> None:
        """A deleted topic or subscription: a new one of that name counts from 0."""
        with self._lock:
            self._topics.pop(topic or "", None)
            self._subs.pop(sub or "", None)

    def topic(self, topic: str, subscriptions: int) -> dict[str, Any]:
        with self._lock:
            c = self._topics.get(topic, _Count())
            daily = sorted(c.daily.items(), reverse=True)
        kind = ("topic", topic)
        return {
            "metrics": [
                _metric(*kind, "number_of_subscriptions", "counter", subscriptions,
                        "Counter that displays the number of subscriptions belonging to a "
                        "specific topic"),
                _metric(*kind, "number_of_messages", "counter", c.messages,
                        "Counter that displays the number of messages published to the "
                        "specific topic"),
                _metric(*kind, "number_of_bytes", "counter", c.bytes,
                        "Counter that displays the total size of data (in bytes) published "
                        "to the specific topic"),
                {**_metric(*kind, "number_of_daily_messages", "counter", 0,
                           "A collection of counters that represents the total number of "
                           "messages published each day to a specific topic"),
                 "timeseries": [{"timestamp": d, "value": n} for d, n in daily]},
                _metric(*kind, "publishing_rate", "rate", c.rate,
                        "A rate that displays how many messages were published per second "
                        "between the last two publish events"),
            ]
        }  # fmt: skip

    def subscription(self, sub: str, push: PushState | None = None) -> dict[str, Any]:
        with self._lock:
            c = self._subs.get(sub, _Count())
        kind = ("subscription", sub)
        return {
            "metrics": [
                *_push_metrics(sub, push),
                _metric(*kind, "number_of_messages", "counter", c.messages,
                        "Counter that displays the number of messages consumed from the "
                        "specific subscription"),
                _metric(*kind, "number_of_bytes", "counter", c.bytes,
                        "Counter that displays the total size of data (in bytes) consumed "
                        "from the specific subscription"),
                _metric(*kind, "consumption_rate", "rate", c.rate,
                        "A rate that displays how many messages were consumed per second "
                        "between the last two consume events"),
            ]
        }  # fmt: skip


def _push_metrics(sub: str, push: PushState | None) -> list[dict[str, Any]]:
    """msgbus's own metrics of a push subscription's endpoint (AMS has none)."""
    if push is None:
        return []
    kind = ("subscription", sub)
    return [
        _metric(*kind, "push_messages", "counter", push.pushed,
                "Messages the endpoint took (a 2xx) since the gateway started"),
        _metric(*kind, "push_bytes", "counter", push.pushed_bytes,
                "Bytes of data the endpoint took since the gateway started"),
        _metric(*kind, "push_failures", "counter", push.failures,
                "Pushes that failed (no answer, or not a 2xx) since the gateway started"),
        {**_metric(*kind, "push_state", "state", 0, "The endpoint's state and last error"),
         "value_type": "string",
         "timeseries": [{"timestamp": _now(), "value": push.status()}]},
    ]  # fmt: skip


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def operational() -> dict[str, Any]:
    """AMS's ``/v1/metrics`` for this gateway process: its CPU use since it started and
    its peak memory, in percent of one core and of the machine's memory."""
    wall, cpu = time.monotonic() - _STARTED[0], time.process_time() - _STARTED[1]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    node = ("ams_node", platform.node())
    return {
        "metrics": [
            _metric(*node, "cpu_usage", "percentage", round(100 * cpu / max(wall, 1e-9), 2),
                    "Percentage value that displays the CPU usage of ams service in the "
                    "specific node"),
            _metric(*node, "memory_usage", "percentage", round(100 * peak / total, 2),
                    "Percentage value that displays the Memory usage of ams service in the "
                    "specific node"),
        ]
    }  # fmt: skip


def _metric(
    kind: str, name: str, metric: str, metric_type: str, value: float, description: str
) -> dict[str, Any]:
    return {
        "metric": f"{kind}.{metric}",
        "metric_type": metric_type,
        "value_type": "float64" if isinstance(value, float) else "int64",
        "resource_type": kind,
        "resource_name": name,
        "timeseries": [{"timestamp": _now(), "value": value}],
        "description": description,
    }  # fmt: skip
