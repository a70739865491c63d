"""AMS replay for ``msgbus gateway`` (``gateway.retention.enabled``): each topic's
messages are taken from the broker into the :class:`~msgbus.gateway.retention.RetentionLog`
by one durable STOMP subscription per topic (``gateway.<project>.log.<topic>``), so what is
published over STOMP straight to the broker is in it too, in the order the broker
delivered it; the broker is acknowledged once the log committed them.

Subscriptions are then served from the log, each by a :class:`LogCursor` in place of a
STOMP connection: it hands out messages from the subscription's current offset on, and
an acknowledgement moves the current offset to the lowest one still unacknowledged. A new
cursor (after a restart, a stopped pusher, ``:modifyOffset``) starts from the current
offset: what was handed out and not acknowledged comes again, as a new connection gets
it again from the broker.

The log is filled by one thread every :data:`_FILL_EVERY` seconds, and at each read (a
pull, a push, the offset routes); a message's publish time is the broker's ``timestamp``
header (ActiveMQ sets it), else the time it came into the log. While the broker is away
the log serves what it kept: replay after a lost database does not wait for the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from msgbus.config import MsgbusConfig
from msgbus.consume.subscription import Subscription
from msgbus.errors import MsgbusError, TransportError
from msgbus.gateway.retention import Bounds, RetentionLog, offset_of
from msgbus.stomp.frames import MessageFrame
from msgbus.stomp.headers import SYNC_HEADER
from msgbus.transport.connection import Connection
from msgbus.transport.failover import opener
from msgbus.transport.link import Link

__all__ = ["LogCursor", "Replay", "receive"]

_LOG = logging.getLogger(__name__)
_PREFETCH = 1000
_BATCH = 1000
"""Messages taken from the broker per commit."""
_FILL_EVERY = 0.2
"""Seconds between two fillings of every topic's log by the gateway's filling thread."""
_READ = 100
"""Messages a cursor reads from the log at a time (and holds ahead of a pull)."""


@dataclass
class _Feed:
    link: Link[Connection]
    stomp_sub: Subscription
    lock: threading.Lock = field(default_factory=threading.Lock)
    gone: bool = False
    """The topic was deleted: its subscription must not be made again."""


class Replay:
    """The retention log and the durable subscriptions that fill it. Thread-safe."""

    def __init__(self, config: MsgbusConfig, state_dir: Path, topics: Iterable[str]) -> None:
        self.config = config
        self._project = config.gateway.project
        self._prefix = config.gateway.topic_prefix
        self.log = RetentionLog(state_dir / "retention.db", config.gateway.retention)
        self._feeds: dict[str, _Feed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start(topics)
        self._filler = threading.Thread(
            target=self._fill_all, name="gateway-retention", daemon=True
        )
        self._filler.start()

    def close(self) -> None:
        self._stop.set()
        self._filler.join()
        with self._lock:
            for feed in self._feeds.values():
                feed.link.close()
            self._feeds.clear()
        self.log.close()

    def _start(self, topics: Iterable[str]) -> None:
        """Subscribe for every topic, so the broker keeps what is published from now on;
        a broker away now is tried again at the first read."""
        for topic in topics:
            try:
                self.add_topic(topic)
            except MsgbusError as exc:
                _LOG.warning("gateway: retention log of topic %s: %s", topic, exc)

    def add_topic(self, topic: str) -> None:
        """Make the topic's durable subscription at the broker (keeping what comes next)."""
        feed = self._feed(topic)
        with feed.lock:
            feed.link.connection(until=time.monotonic())

    def forget_topic(self, topic: str) -> None:
        """Drop the topic's durable subscription and log."""
        feed = self._feed(topic)
        with self._lock:
            self._feeds.pop(topic, None)
        with feed.lock:
            feed.gone = True
            conn = feed.link.connection(until=time.monotonic())
            feed.stomp_sub.remove(conn, subscribed=True)
            feed.link.close()
        self.log.forget_topic(topic)

    def _fill_all(self) -> None:
        while not self._stop.wait(_FILL_EVERY):
            with self._lock:
                topics = list(self._feeds)
            for topic in topics:
                try:
                    self.fill(topic)
                except MsgbusError as exc:  # a broker away: the next round tries again
                    _LOG.debug("gateway: retention log of topic %s: %s", topic, exc)

    def _feed(self, topic: str) -> _Feed:
        with self._lock:
            feed = self._feeds.get(topic)
            if feed is None:
                stomp_sub = Subscription(
                    f"{self._prefix}{topic}", f"gateway.{self._project}.log.{topic}"
                )
                settings = self.config.connection
                link = Link(
                    f"gateway: retention log of topic {topic}",
                    settings,
                    open=opener(settings, stomp_sub.client_id(settings.client_id)),
                    subscriptions=[lambda conn: stomp_sub.subscribe(conn, _PREFETCH)],
                )
                feed = self._feeds[topic] = _Feed(link, stomp_sub)
            return feed

    def fill(self, topic: str, wait: float = 0.0) -> int:
        """Take what the broker holds for ``topic`` into the log (waiting ``wait``
        seconds for a first message); returns how many came."""
        with self._lock:
            feed = self._feeds.get(topic)
        came = 0
        if feed is None:  # the topic was deleted: nothing comes, but a pusher waits as asked
            self._stop.wait(wait)
            return came
        with feed.lock:
            if feed.gone:
                return came
            conn = feed.link.connection(until=time.monotonic())
            while True:
                frames = receive(conn, _BATCH, wait)
                if not frames:
                    return came
                self.log.append(topic, frames, int(time.time() * 1000))
                conn.ack(frames)  # only now: a crash before gets them again, kept once
                came += len(frames)
                wait = 0.0

    def refresh(self, topic: str) -> TransportError | None:
        """Take into the log what the broker holds for ``topic`` now; the error when the
        broker does not answer. The log still serves what it kept then: an offset is a
        position in the log, and a message still at the broker has none yet."""
        try:
            self.fill(topic)
        except TransportError as away:
            return away
        return None

    def read(self, topic: str, start: int, count: int, wait: float) -> list[MessageFrame]:
        """Up to ``count`` messages from offset ``start`` on, waiting ``wait`` seconds
        for a first one to come from the broker when the log has none (with the broker
        away and nothing kept from ``start`` on, its error: the client retries)."""
        away = self.refresh(topic)
        got = self.log.read(topic, start, count)
        if not got and away is not None:
            raise away
        if not got and wait > 0 and self.fill(topic, wait):
            got = self.log.read(topic, start, count)
        return got

    def bounds(self, topic: str) -> Bounds:
        self.refresh(topic)
        return self.log.bounds(topic)

    def cursor(self, name: str, topic: str) -> LogCursor:
        """A cursor from the subscription's current offset (the end of the log for a
        subscription new to it, once what was published before it is in the log)."""
        self.refresh(topic)
        return LogCursor(self, name, topic, self.log.current(name, topic))


class LogCursor:
    """A subscription's reading of the log, with a STOMP connection's ``receive`` and
    ``ack``: used under the subscription's lock."""

    def __init__(self, replay: Replay, name: str, topic: str, current: int) -> None:
        self._replay = replay
        self.name = name
        self.topic = topic
        self.current = current
        self._next = current
        """The offset of the next message to hand out."""
        self._ahead: deque[MessageFrame] = deque()
        self._handed: set[int] = set()
        self.away: TransportError | None = None
        """Why the last read found nothing: the broker away (see :func:`receive`)."""

    def receive(self, timeout: float | None) -> MessageFrame | None:
        if not self._ahead:
            self.away = None
            try:
                read = self._replay.read(self.topic, self._next, _READ, timeout or 0.0)
            except TransportError as away:
                self.away = away
                return None
            self._ahead.extend(read)
        if not self._ahead:
            return None
        frame = self._ahead.popleft()
        offset = offset_of(frame)
        self._handed.add(offset)
        self._next = offset + 1
        return frame

    def ack(self, frames: Iterable[MessageFrame]) -> None:
        """Acknowledge ``frames``: the current offset moves to the lowest offset handed
        out and not acknowledged, or past the last handed out."""
        self._handed.difference_update(offset_of(f) for f in frames)
        current = min(self._handed, default=self._next)
        if current != self.current:
            self.current = current
            self._replay.log.set_current(self.name, current)

    def forget(self) -> None:
        """The subscription is deleted: forget its current offset."""
        self._replay.log.forget_sub(self.name)


def receive(conn: Connection | LogCursor, count: int, wait: float) -> list[MessageFrame]:
    """Up to ``count`` messages from a subscription's connection or cursor: waits
    ``wait`` seconds for a first, not for more. A cursor that has nothing because the
    broker is away raises its error (the client retries); with some, they are the
    answer."""
    out: list[MessageFrame] = []
    while len(out) < count:
        frame = conn.receive(wait)
        if frame is None:
            break
        if isinstance(frame, MessageFrame):
            if SYNC_HEADER in frame.headers:
                # A publisher's sync record is for consumers' ledgers, not AMS.
                conn.ack([frame])
                continue
            out.append(frame)
            wait = 0.0  # what is there already, no more waiting
    if not out and isinstance(conn, LogCursor) and conn.away is not None:
        raise conn.away
    return out
