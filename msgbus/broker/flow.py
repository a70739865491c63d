"""Producer flow control of the embedded broker, as ActiveMQ's: a producer that sends to
a queue at ``limits.max_queue_depth`` is not refused but held. Its connection is not
read (its socket buffer fills and its writes block, its receipts wait), the frame that
met the full queue and those after it wait here, and they are handled again as soon as
the queue has room. Past ``limits.flow_control_wait`` the held frame is refused with a
transient ERROR, which publishers retry later with back-off.

The store holds producers the same way while the persistent messages it has not yet
committed reach ``limits.max_unwritten_bytes`` (``StoreBusy``), so that what a burst
costs in memory is that bound and the kernel's socket buffers, not what the clients
manage to write. As commits make room, the held connections are let in one by one, the
longest held first, while room lasts; one let in and held again goes to the back (fair
reading across connections). The wait is counted from the last frame let in.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from msgbus.broker.auth import QueueFull
from msgbus.stomp.frames import Frame, Heartbeat

__all__ = ["STORE", "FlowControl", "StoreBusy", "Waiters"]

Events = list[Frame | Heartbeat]
STORE = "(store)"
"""What producers held for the store wait for, among the queue names."""


class StoreBusy(QueueFull):
    """Too much is not yet written to the store: the producer waits for a commit."""

    def __init__(self, unwritten: int) -> None:
        super().__init__(
            f"broker busy: {unwritten:,} bytes of persistent messages wait for the disk",
            STORE,
        )


class Waiters:
    """Producers held by flow control, by the name of the full queue they wait for. A
    callback must not route messages itself (the router is busy), only schedule that."""

    def __init__(self) -> None:
        self._by_queue: dict[str, deque[Callable[[], None]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_queue)

    def __contains__(self, queue: str) -> bool:
        return queue in self._by_queue

    def add(self, queue: str, callback: Callable[[], None]) -> None:
        self._by_queue.setdefault(queue, deque()).append(callback)

    def discard(self, queue: str, callback: Callable[[], None]) -> None:
        waiting = self._by_queue.get(queue, deque())
        if callback in waiting:
            waiting.remove(callback)
            if not waiting:
                del self._by_queue[queue]

    def wake(self, queue: str) -> None:
        """``queue`` has room: call (once) everything waiting for it."""
        for callback in self._by_queue.pop(queue, ()):
            callback()

    def wake_while(self, queue: str, room: Callable[[], bool]) -> None:
        """Call the oldest callback waiting for ``queue`` while ``room()``; unlike
        ``wake``'s, these callbacks run frames at once (and may wait again, last)."""
        waiting = self._by_queue.get(queue)
        while waiting and room():
            waiting.popleft()()
        if not waiting:
            self._by_queue.pop(queue, None)


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
        refuse: Callable[[Frame | None, str, str], None],
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
        self._waiting = False  # a callback of ours is among the waiters
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0  # held, or last let in, at (loop time)
        self._wake_pending = False

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self, events: Events, full: QueueFull, transport: asyncio.Transport) -> None:
        """Keep ``events`` (from the one ``full`` refused) until its queue has room."""
        self._held = events
        self._full = full
        self._waiters.add(full.queue, self._let_in if full.queue == STORE else self._wake)
        self._waiting = True
        if self._timer is None:
            self._transport = transport
            transport.pause_reading()
            self._since = self._loop.time()
            self._timer = self._loop.call_later(self._wait, self._too_long)

    def keep(self, data: bytes) -> None:
        """Bytes read before the pause took effect: run after the held frames."""
        self._unread.append(data)

    def stop(self) -> None:
        """Forget what is held (the connection fails or is gone)."""
        if self._full is not None and self._waiting:
            queue = self._full.queue
            self._waiters.discard(queue, self._let_in if queue == STORE else self._wake)
        if self._timer is not None:
            self._timer.cancel()
        self._held = self._full = self._timer = None
        self._waiting = False
        self._unread.clear()

    def _wake(self) -> None:
        self._waiting = False
        if not self._wake_pending:  # run from the loop: the router is mid-ack now
            self._wake_pending = True
            self._loop.call_soon(self._retry)

    def _let_in(self) -> None:
        """The store made room: called from its commit, not the router, so run now."""
        self._waiting = False
        self._retry()

    def _retry(self) -> None:
        self._wake_pending = False
        events, self._held = self._held, None
        if events is None:
            return
        self._handle(events)
        while self._unread and self._held is None:
            self._feed(self._unread.pop(0))
        if self._held is None:
            if self._timer is not None:
                self.stop()
                assert self._transport is not None
                self._transport.resume_reading()
        elif self._held[0] is not events[0]:
            self._since = self._loop.time()  # a frame went in: the wait starts again

    def _too_long(self) -> None:
        waited = self._loop.time() - self._since
        if waited < self._wait:  # let in since: wait the rest
            self._timer = self._loop.call_later(self._wait - waited, self._too_long)
            return
        self._timer = None
        frame = next((e for e in self._held or () if isinstance(e, Frame)), None)
        title = "broker busy" if isinstance(self._full, StoreBusy) else "queue full"
        self._refuse(
            frame,
            title,
            f"{self._full}; no room came within {self._wait:g} s: send it again later",
        )
