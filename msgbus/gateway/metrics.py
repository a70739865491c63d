"""AMS's ``:metrics`` of topics and subscriptions, and the operational ``/v1/metrics``.

Counted by the gateway process, in AMS's metric objects: a topic's messages and bytes
published through the gateway (not those sent over STOMP directly), per day too, and
its publishing rate (messages of the latest publish per second since the one before,
as AMS defines it); a subscription's messages and bytes handed out by pulls
(redeliveries included) and its consumption rate, likewise. Bytes are the decoded
data. A push subscription adds its endpoint's counts and state
(:class:`~msgbus.gateway.push.PushState`).

The counts are kept in ``state_dir/metrics.json``, written when they changed, at most
once a second (:data:`_SAVE_EVERY`) and when the gateway stops: a restart goes on from
them, a gateway killed outright loses at most the last second's counts. A write per
request would cost every publish and pull a file write for numbers that are not data.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from msgbus.gateway.push import PushState

__all__ = ["Counters", "operational"]

_STARTED = (time.monotonic(), time.process_time())
_log = logging.getLogger(__name__)
_SAVE_EVERY = 1.0  # seconds between writes of changed counts


@dataclass
class _Count:
    messages: int = 0
    bytes: int = 0
    rate: float = 0.0
    last: float | None = None
    """Wall-clock time of the latest event: it outlives the process."""
    daily: Counter[str] = field(default_factory=Counter)

    def add(self, messages: int, size: int) -> None:
        now = time.time()
        if self.last is not None and now > self.last:
            self.rate = messages / (now - self.last)
        self.last = now
        self.messages += messages
        self.bytes += size
        self.daily[datetime.now(timezone.utc).strftime("%Y-%m-%d")] += messages

    def state(self) -> dict[str, Any]:
        # Not asdict(): it rebuilds a Counter from its items, counting them.
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "rate": self.rate,
            "last": self.last,
            "daily": dict(self.daily),
        }


class Counters:
    """Per-topic and per-subscription counts, and push subscriptions' states; thread-safe.
    Kept in ``state_dir`` (see the module's text) until :meth:`close`."""

    def __init__(self, state_dir: Path) -> None:
        self._path = Path(state_dir) / "metrics.json"
        self._lock = threading.Lock()
        self._topics: dict[str, _Count] = {}
        self._subs: dict[str, _Count] = {}
        self._push: dict[str, PushState] = {}
        if self._path.exists():
            self._load(json.loads(self._path.read_text()))
        self._written = self._text()  # nothing to write until something is counted
        self._stop = threading.Event()
        self._saver = threading.Thread(target=self._save_loop, name="metrics", daemon=True)
        self._saver.start()

    def _load(self, data: dict[str, Any]) -> None:
        for kind, into in (("topics", self._topics), ("subscriptions", self._subs)):
            for name, c in data.get(kind, {}).items():
                into[name] = _Count(
                    c["messages"], c["bytes"], c["rate"], c["last"], Counter(c["daily"])
                )
        for name, p in data.get("push", {}).items():
            # What it was doing is not known until it pushes again; what it did is.
            self._push[name] = PushState(**{**p, "state": "starting"})

    def _text(self) -> str:
        with self._lock:
            data = {
                "topics": {n: c.state() for n, c in self._topics.items()},
                "subscriptions": {n: c.state() for n, c in self._subs.items()},
                "push": {n: asdict(p) for n, p in self._push.items()},
            }
        return json.dumps(data, indent=1, sort_keys=True)

    def save(self) -> None:
        """Write the counts when they changed since the last write."""
        text = self._text()
        if text == self._written:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self._path)  # never a half-written file
        self._written = text

    def _save_loop(self) -> None:
        while not self._stop.wait(_SAVE_EVERY):
            try:
                self.save()
            except OSError as exc:  # a full disk: counting goes on, and so do the tries
                _log.warning("gateway metrics not saved to %s: %s", self._path, exc)

    def close(self) -> None:
        self._stop.set()
        self._saver.join()
        self.save()

    def push_state(self, sub: str) -> PushState:
        """The state pushers of ``sub`` report into, its counts kept across them."""
        with self._lock:
            return self._push.setdefault(sub, PushState())

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
            self._push.pop(sub or "", None)

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
                "Messages the endpoint took (a 2xx)"),
        _metric(*kind, "push_bytes", "counter", push.pushed_bytes,
                "Bytes of data the endpoint took"),
        _metric(*kind, "push_failures", "counter", push.failures,
                "Pushes that failed (no answer, or not a 2xx)"),
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
