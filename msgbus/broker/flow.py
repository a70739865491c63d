"""Producer flow control of the embedded broker, as ActiveMQ's: a producer that sends to
a queue at ``limits.max_queue_depth`` is not refused but held. Its connection is not
read (its socket buffer fills and its writes block, its receipts wait), the frame that
met the full queue and those after it wait here, and they are handled again as soon as
the queue has room. Past ``limits.flow_control_wait`` the held frame is refused with a
transient ERROR, which publishers retry later with back-off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from msgbus.broker.auth import QueueFull
from msgbus.stomp.frames import Frame, Heartbeat

__all__ = ["FlowControl", "Waiters"]

Events = list[Frame | Heartbeat]


class Waiters:
    """Producers held by flow control, by the name of the full queue they wait for. A
    callback must not route messages itself (the router is busy), only schedule that."""

    def __init__(self) -> None:
        self._by_queue: dict[str, list[Callable[[], None]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_queue)

    def __contains__(self, queue: str) -> bool:
        return queue in self._by_queue

    def add(self, queue: str, callback: Callable[[], None]) -> None:
        self._by_queue.setdefault(queue, []).append(callback)

    def discard(self, queue: str, callback: Callable[[], None]) -> None:
        waiting = self._by_queue.get(queue, [])
        if callback in waiting:
            waiting.remove(callback)
            if not waiting:
                del self._by_queue[queue]

    def wake(self, queue: str) -> None:
        """``queue`` has room: call (once) everything waiting for it."""
        for callback in self._by_queue.pop(queue, ()):
            callback()


class FlowControl:
    """The held frames of one connection. ``handle`` runs frames (and may hold them
    again), ``feed`` runs bytes read meanwhile, ``refuse`` answers the held frame with
    the transient ERROR."""

    def __init__(
        self,
        waiters: Waiters,
        wait: float,
        *,
        handle: Callable[[Events], None],
        feed: Callable[[bytes], None],
        refuse: Callable[[Frame | None, str], None],
    ) -> None:
        self._waiters = waiters
        self._transport: asyncio.Transport | None = None
        self._wait = wait
        self._handle = handle
        self._feed = feed
        self._refuse = refuse
        self._loop = asyncio.get_running_loop()
        self._held: Events | None = None
        self._unread: list[bytes] = []
        self._full: QueueFull | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._wake_pending = False

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self, events: Events, full: QueueFull, transport: asyncio.Transport) -> None:
        """Keep ``events`` (from the one ``full`` refused) until its queue has room."""
        self._held = events
        self._full = full
        self._waiters.add(full.queue, self._wake)
        if self._timer is None:
            self._transport = transport
            transport.pause_reading()
            self._timer = self._loop.call_later(self._wait, self._too_long)

    def keep(self, data: bytes) -> None:
        """Bytes read before the pause took effect: run after the held frames."""
        self._unread.append(data)

    def stop(self) -> None:
        """Forget what is held (the connection fails or is gone)."""
        if self._full is not None:
            self._waiters.discard(self._full.queue, self._wake)
        if self._timer is not None:
            self._timer.cancel()
        self._held = self._full = self._timer = None
        self._unread.clear()

    def _wake(self) -> None:
        if not self._wake_pending:  # run from the loop: the router is mid-ack now
            self._wake_pending = True
            self._loop.call_soon(self._retry)

    def _retry(self) -> None:
        self._wake_pending = False
        events, self._held = self._held, None
        if events is None:
            return
        self._handle(events)
        while self._unread and self._held is None:
            self._feed(self._unread.pop(0))
        if self._held is None and self._timer is not None:
            self.stop()
            assert self._transport is not None
            self._transport.resume_reading()

    def _too_long(self) -> None:
        self._timer = None
        frame = next((e for e in self._held or () if isinstance(e, Frame)), None)
        self._refuse(
            frame, f"{self._full}; no room came within {self._wait:g} s: send it again later"
        )
