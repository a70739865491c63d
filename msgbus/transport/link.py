"""The managed link: one broker connection that a long-running component keeps up.

What nats.py's connection manager does for NATS clients, once for every component
(consumer, presence agent, dashboard feed, gateway subscriptions, Nagios/Icinga bridge):

* connect with failover over ``connection.brokers`` (:mod:`msgbus.transport.failover`);
* wait between attempts with the one reconnect policy (:mod:`msgbus.transport.reconnect`:
  jittered back-off, reset only after a healthy spell, never a tight loop);
* re-apply every subscription it was given (durable names included) on each new
  connection before handing it out, so a broker restart costs the component nothing;
* liveness: the connection's I/O thread closes it when the broker's heart-beats stop;
  the link notices (a receive or a use raises, or ``connected`` turned false) and
  reconnects;
* reports: one log line per change of state (lost, connected again) and the metrics
  ``<prefix>_link_up`` and ``<prefix>_link_reconnects_total`` labelled by link.

Two ways to use it. A component with its own thread hands :meth:`Link.run` the body of
a session (``serve(conn)``); the link calls it on each new connection and restarts it
after a :class:`TransportError`. A request-driven one (the gateway, the publisher) calls
:meth:`Link.connection` when it needs the connection, with a deadline for waiting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from msgbus.errors import ConnectError, ConnectionLost, TransportError
from msgbus.metrics import MetricsRegistry
from msgbus.transport.failover import first_to_answer
from msgbus.transport.reconnect import Reconnect
from msgbus.transport.settings import ConnectionConfig
from msgbus.transport.url import BrokerURL

__all__ = ["Link", "LinkMetrics", "Linked"]

log = logging.getLogger("msgbus.transport")

# ActiveMQ refuses a client-id still held by a connection whose end it has not noticed
# yet ("Client: X already connected from ..."), as when a component is restarted right
# after a crash. That clears within seconds (or the broker's inactivity timeout), so
# even a first connection that must succeed waits for it rather than failing.
_CLIENT_ID_BUSY = "already connected"
_CLIENT_ID_WAIT = 60.0


class Linked(Protocol):
    """What the link needs of a connection (``msgbus.transport.connection.Connection``)."""

    @property
    def url(self) -> BrokerURL: ...

    @property
    def connected(self) -> bool: ...

    @property
    def closed_reason(self) -> str | None: ...

    def close(self, reason: str = ...) -> None: ...

    def disconnect(self, timeout: float | None = None) -> None: ...


C = TypeVar("C", bound=Linked)


class LinkMetrics:
    """``<prefix>_link_up`` (1 while connected) and ``<prefix>_link_reconnects_total``,
    labelled ``link``: one set per registry, shared by the links of a process."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.up = registry.gauge("link_up", "1 while the broker link is connected", ["link"])
        self.reconnects = registry.counter(
            "link_reconnects", "Broker connections made again after a loss", ["link"]
        )


class Link(Generic[C]):
    """One managed broker connection named ``what`` (it starts each log line).

    ``open`` logs in to one broker (``failover.opener(settings, client_id)``);
    ``subscriptions`` are applied, in order, to every new connection. With
    ``fail_first`` the first connection must succeed (a failure then is a configuration
    problem the user must see), except a client-id still held elsewhere, which is
    waited out for up to a minute. ``permanent`` errors are never retried.
    """

    def __init__(
        self,
        what: str,
        settings: ConnectionConfig,
        *,
        open: Callable[[BrokerURL], C],
        subscriptions: Iterable[Callable[[C], None]] = (),
        stop: threading.Event | None = None,
        fail_first: bool = False,
        permanent: tuple[type[TransportError], ...] = (),
        metrics: LinkMetrics | None = None,
        on_reconnect: Callable[[], None] | None = None,
        level: int = logging.WARNING,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.settings = settings
        self.stop = stop or threading.Event()
        self._open = open
        self._subscriptions = list(subscriptions)
        self._fail_first = fail_first
        self._permanent = permanent
        self._metrics = metrics
        self._on_reconnect = on_reconnect
        self._rng = rng
        self._clock = clock
        self.policy = Reconnect(
            what, settings, self.stop, on_reconnect=self._reconnected, rng=rng, clock=clock,
            level=level,
        )  # fmt: skip
        self._conn: C | None = None
        self._first_failure: float | None = None
        self._tried: TransportError | None = None
        """The error of the last attempt of the current call, if it made one."""
        self._report(False)

    @property
    def current(self) -> C | None:
        """The connection in use, if it is still connected."""
        conn = self._conn
        return conn if conn is not None and conn.connected else None

    @property
    def connected(self) -> bool:
        return self.current is not None

    def connection(self, until: float | None = None) -> C:
        """The live connection, or a new one (failover, every subscription applied),
        waiting out the back-off. ``until`` (on the link's clock): give up when the next
        attempt would come later, raising the last attempt's error, or ConnectError when
        none was due; None: wait until ``stop``."""
        conn = self._next(until)
        if conn is not None:
            return conn
        if self.stop.is_set():
            raise ConnectError(f"{self.what}: stopped before a broker answered")
        if self._tried is not None:
            raise self._tried
        wait = max(self.policy.next_attempt - self._clock(), 0.0)
        raise ConnectError(
            f"no broker reachable (backing off after earlier failures, next attempt in "
            f"{wait:.1f} s); start a broker or check connection.brokers"
        )

    def run(
        self,
        serve: Callable[[C], None],
        *,
        until: float | None = None,
        retry: tuple[type[Exception], ...] = (TransportError,),
    ) -> None:
        """Call ``serve(conn)`` on each new connection until it returns, ``stop`` is set
        or ``until`` (on the link's clock) has passed. A ``retry`` error from ``serve``
        closes that connection, is reported, and the link connects again."""
        while not self.stop.is_set():
            conn = self._next(until)
            if conn is None:
                if until is not None:
                    # Back-off beyond the end: wait for the end itself, then return.
                    self.stop.wait(max(0.0, until - self._clock()))
                return
            try:
                serve(conn)
                return
            except retry as exc:
                self.lost(exc)

    def lost(self, error: BaseException) -> None:
        """The connection failed (``error``): close it, report it, back off."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(f"abandoned after: {error}")
        self.policy.failed(error)
        self._report(False)

    def retire(self, reason: str) -> None:
        """Close the connection in use without counting a failure: its user gave it up
        (the publisher, after the broker refused one of its messages and closed); the
        next one is made at once."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(reason)
        self._report(False)

    def close(self) -> None:
        """Disconnect politely (bounded by ``disconnect_timeout``)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
        self._report(False)

    # -- internals ---------------------------------------------------------------

    def _next(self, until: float | None) -> C | None:
        """A connected, subscribed connection; None once ``stop`` is set or the next
        attempt would come after ``until``. Errors the caller must see are raised."""
        conn = self._conn
        if conn is not None:
            if conn.connected:
                return conn
            # Dropped while not in use (a broker restart, missed heart-beats).
            self.lost(
                ConnectionLost(f"connection to {conn.url} lost: {conn.closed_reason or 'closed'}")
            )
        self._tried = None
        # No wait owed (a first connection, or the loss of one that lasted longer than
        # the wait): one attempt now, whatever ``until`` says.
        due = self.policy.next_attempt <= self._clock()
        while due or self.policy.wait(until):
            due = False
            try:
                conn = self._attempt()
            except TransportError as exc:
                self._refused(exc)
                self.policy.failed(exc)
                self._tried = exc
                continue
            self._conn = conn
            self._first_failure = None
            self.policy.up(conn.url)
            self._report(True)
            return conn
        return None

    def _attempt(self) -> C:
        conn = first_to_answer(self.settings, self._open, rng=self._rng)
        try:
            for subscribe in self._subscriptions:
                subscribe(conn)
        except BaseException:
            conn.close("a subscription failed")
            raise
        return conn

    def _refused(self, exc: TransportError) -> None:
        """Raise ``exc`` when it must not be retried: a permanent kind, or the failure
        of a first connection that must succeed (bar a client-id still held)."""
        if isinstance(exc, self._permanent):
            raise exc
        if not self._fail_first or self.policy.ever_up:
            return
        now = self._clock()
        self._first_failure = self._first_failure or now
        if _CLIENT_ID_BUSY not in str(exc):
            raise exc
        if now - self._first_failure > _CLIENT_ID_WAIT:
            raise ConnectError(
                f"{exc}\nthe client-id stayed in use for {_CLIENT_ID_WAIT:g} s: is another "
                "process running with this client-id or subscription?"
            ) from None

    def _reconnected(self) -> None:
        if self._metrics is not None:
            self._metrics.reconnects.labels(link=self.what).inc()
        if self._on_reconnect is not None:
            self._on_reconnect()

    def _report(self, up: bool) -> None:
        if self._metrics is not None:
            self._metrics.up.labels(link=self.what).set(1 if up else 0)
