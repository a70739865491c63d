"""The reconnect policy of every broker link (msgbus.transport.link) and of the Icinga
bridge's retries: back-off with jitter between attempts, capped; the back-off
starts over (with one attempt at once) only after a connection stayed healthy for a
while, so a broker that
accepts the login and then refuses the subscription is retried slowly, not in a tight
loop; one log line per change of state or of error, not one per attempt.

A retry loop notes each failure with :meth:`Reconnect.failed` and waits for the next
attempt with :meth:`Reconnect.wait`, which may stop at a deadline (the link's callers
and the Icinga bridge try until one); :meth:`Reconnect.up` says a connection is ready.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from msgbus.transport.backoff import Backoff
from msgbus.transport.settings import ConnectionConfig

__all__ = ["Reconnect"]

log = logging.getLogger("msgbus.transport")


class Reconnect:
    """Say :meth:`up` when a connection is ready and :meth:`failed` when one failed or
    could not be made; :meth:`wait` waits before the next attempt (False once ``stop``
    is set). ``on_reconnect`` is called for each connection after the first (a metric)."""

    def __init__(
        self,
        what: str,
        settings: ConnectionConfig,
        stop: threading.Event,
        *,
        on_reconnect: Callable[[], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.WARNING,
    ) -> None:
        self.what = what
        self.level = level
        self.stop = stop
        self.on_reconnect = on_reconnect
        self.backoff = Backoff(
            settings.reconnect_initial_delay, settings.reconnect_max_delay, rng=rng
        )
        # Healthy: up for as long as the longest wait, so flapping never speeds up.
        self.healthy_after = settings.reconnect_max_delay
        self.delay = 0.0
        """The wait before the next attempt (0 while connected)."""
        self.next_attempt = 0.0
        """When (on ``clock``) the next attempt may be made."""
        self._clock = clock
        self._up_since: float | None = None
        self._ever_up = False
        self._error: str | None = None

    @property
    def connected(self) -> bool:
        return self._up_since is not None

    @property
    def ever_up(self) -> bool:
        """A connection was made at least once."""
        return self._ever_up

    def up(self, where: object = "") -> None:
        if self._ever_up and self.on_reconnect is not None:
            self.on_reconnect()
        if self._error is not None:
            log.info("%s: connected again%s", self.what, f" to {where}" if where else "")
        self._ever_up = True
        self._up_since = self._clock()
        self._error = None
        self.delay = 0.0
        self.next_attempt = 0.0

    def failed(self, error: BaseException) -> float:
        """Note a failed attempt or a lost connection; returns the wait before the next
        attempt. The first failure and each new error are logged."""
        was_up = self._up_since is not None
        now = self._clock()
        if self._up_since is not None and now - self._up_since >= self.healthy_after:
            self.backoff.reset()
        # The wait counts from the last attempt, for a lost connection the one that made
        # it: a connection that lasted longer than the wait is tried again at once (a
        # broker restart may be over already), as nats.py waits per server.
        last_attempt = now if self._up_since is None else self._up_since
        self._up_since = None
        self.next_attempt = max(now, last_attempt + self.backoff.next_delay())
        self.delay = self.next_attempt - now
        text = " ".join(str(error).split())
        if text != self._error or was_up:
            log.log(
                self.level,
                "%s %s: %s; next attempt in %.1f s, then with back-off up to %g s (logged "
                "again when the error changes)",
                self.what,
                "lost" if was_up else "failed",
                text,
                self.delay,
                self.backoff.maximum,
            )
        self._error = text
        return self.delay

    def wait(self, until: float | None = None) -> bool:
        """Wait until the next attempt is due: False once ``stop`` is set, or at once when
        it would come after ``until`` (a time on ``clock``)."""
        if until is not None and self.next_attempt > until:
            return False
        left = self.next_attempt - self._clock()
        if left <= 0:
            return not self.stop.is_set()
        return not self.stop.wait(left)
