"""Live updates for the status page: a fan-out hub fed by the broker or the store.

* ``BrokerFeed`` subscribes (non-durable, auto-ack) to the probe destination and
  pushes every ProbeResult the consumer would store (the consumer's own decoding and,
  when configured, S/MIME verification). Only for a ``/topic/``: on a queue it would
  take messages away from the consumer.
* ``StorePoller`` re-reads the latest results every few seconds and pushes those that
  changed; it works without a broker and shows only what was actually stored.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable

from msgbus.config import ConnectionConfig
from msgbus.consume.messages import Verifier, sort_frames
from msgbus.dashboard.data import Cell, probe_cell
from msgbus.errors import ConfigError, MsgbusError
from msgbus.schema.models import ProbeResult
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.failover import opener
from msgbus.transport.link import Link

__all__ = ["BrokerFeed", "Hub", "StorePoller"]

log = logging.getLogger(__name__)

_CLIENT_BACKLOG = 1000


class Hub:
    """Hands each published cell to every subscribed client's bounded queue."""

    def __init__(self) -> None:
        self._clients: set[queue.Queue[Cell]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> queue.Queue[Cell]:
        q: queue.Queue[Cell] = queue.Queue(maxsize=_CLIENT_BACKLOG)
        with self._lock:
            self._clients.add(q)
        return q

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def unsubscribe(self, q: queue.Queue[Cell]) -> None:
        with self._lock:
            self._clients.discard(q)

    def publish(self, cell: Cell) -> None:
        with self._lock:
            clients = list(self._clients)
        for q in clients:
            # A client that stopped reading loses updates, never blocks the others;
            # the page re-reads /api/latest when it reconnects.
            with contextlib.suppress(queue.Full):
                q.put_nowait(cell)


class _Worker:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError


class BrokerFeed(_Worker):
    """Pushes ProbeResults seen on ``destination`` (a topic) to ``hub``."""

    def __init__(
        self,
        settings: ConnectionConfig,
        destination: str,
        hub: Hub,
        verify: Verifier | None = None,
    ) -> None:
        if not destination.startswith("/topic/"):
            raise ConfigError(
                f"live updates from the broker need a /topic/ destination, not {destination!r} "
                "(a queue subscriber would steal the consumer's messages); run the dashboard "
                "without --broker to poll the store instead"
            )
        super().__init__("msgbus-dashboard-feed")
        self.settings = settings.without_client_id()
        self.destination = destination
        self.hub = hub
        self.verify = verify
        self.connected = threading.Event()

    def _run(self) -> None:
        link = Link(
            "dashboard: live feed connection",
            self.settings,
            open=opener(self.settings),
            subscriptions=[lambda conn: conn.subscribe(self.destination, id="dashboard")],
            stop=self._stop,
        )
        link.run(self._serve)
        link.close()

    def _serve(self, conn: Connection) -> None:
        self.connected.set()
        try:
            while not self._stop.is_set():
                frame = conn.receive(0.5)
                if isinstance(frame, MessageFrame):
                    self._push(frame)
        finally:
            self.connected.clear()

    def _push(self, frame: MessageFrame) -> None:
        for stored in sort_frames([frame], self.verify).messages:
            if isinstance(stored.message, ProbeResult):
                self.hub.publish(probe_cell(stored.message))


class StorePoller(_Worker):
    """Pushes cells of ``read()`` (the latest results) that changed since last time."""

    def __init__(self, read: Callable[[], list[Cell]], hub: Hub, interval: float = 2.0) -> None:
        super().__init__("msgbus-dashboard-poll")
        self.read = read
        self.hub = hub
        self.interval = interval

    def _run(self) -> None:
        seen: dict[tuple[str | None, str], Cell] = {}
        first = True
        while not self._stop.is_set():
            try:
                cells = self.read()
            except MsgbusError as exc:
                log.warning("dashboard: cannot read the store (%s)", exc)
                cells = []
            for cell in cells:
                key = (cell["site"], cell["metric"])
                if seen.get(key) != cell:
                    seen[key] = cell
                    if not first:  # the page loads the initial state from /api/latest
                        self.hub.publish(cell)
            first = False
            self._stop.wait(self.interval)
