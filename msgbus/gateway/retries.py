"""Duplicate-free publish retries: a request replayed after a timeout publishes nothing
twice.

AMS publishes a request's messages one by one and gives each a new id, so a client that
retries a request whose answer it never got (apel/ssm#155, #156) duplicates them. The
gateway gives a message the same msgbus-id when the same message (topic, data,
attributes, and its place among equal ones in the request) comes again within
``gateway.retry_window`` seconds, and does not send again one the broker confirmed:
the retry answers the first request's ``messageIds``. A message resent before its
confirmation reaches consumers with its first msgbus-id, which they drop as a duplicate.

The window lives in the gateway process: a retry after a gateway restart is sent again
(with a new msgbus-id). Publishing the very same message twice on purpose within the
window publishes it once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from msgbus.publish import new_id

__all__ = ["RetryWindow", "Seen"]

_MAX_ENTRIES = 200_000
"""A bound on memory (about 200 bytes each) when a window holds more than that."""


@dataclass(slots=True)
class Seen:
    """The msgbus-id a message got, and whether the broker confirmed it."""

    msgbus_id: str
    confirmed: bool
    expires: float


class RetryWindow:
    """Maps messages seen within ``seconds`` to their msgbus-ids; thread-safe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._seen: OrderedDict[bytes, Seen] = OrderedDict()

    def assign(
        self, destination: str, messages: Sequence[tuple[bytes, Mapping[str, str]]]
    ) -> list[Seen]:
        """One :class:`Seen` per message: the earlier one's within the window, else new."""
        now = time.monotonic()
        occurrences: Counter[bytes] = Counter()
        out: list[Seen] = []
        with self._lock:
            self._expire(now)
            for body, headers in messages:
                content = _digest(destination, body, headers)
                occurrences[content] += 1
                key = hashlib.sha256(content + str(occurrences[content]).encode()).digest()
                seen = self._seen.get(key) if self.seconds > 0 else None
                if seen is None:
                    seen = Seen(new_id(), False, now + self.seconds)
                    if self.seconds > 0:
                        self._seen[key] = seen
                out.append(seen)
            while len(self._seen) > _MAX_ENTRIES:
                self._seen.popitem(last=False)
        return out

    def confirmed(self, seen: Sequence[Seen]) -> None:
        with self._lock:
            for s in seen:
                s.confirmed = True

    def _expire(self, now: float) -> None:
        # Entries are in the order they expire: the same window for all.
        while self._seen:
            key, first = next(iter(self._seen.items()))
            if first.expires > now:
                break
            del self._seen[key]


def _digest(destination: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    meta = json.dumps([destination, sorted(headers.items())], ensure_ascii=False)
    return hashlib.sha256(meta.encode("utf-8", "surrogatepass") + b"\0" + body).digest()
