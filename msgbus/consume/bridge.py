"""The run loop of ``msgbus nagios-bridge``: probe results from a subscription to Nagios'
command file or Icinga 2's REST API, on a managed link that survives broker restarts.

At least once: a message is acknowledged only after its command lines are in Nagios'
command file, or Icinga answered 200 for each of its results, so a bridge that dies in
between (or loses its broker) gets it again; Nagios and Icinga take a repeated passive
result as one more check of the same state. What is not a probe result, or a result that
Icinga refuses for itself (an unknown service), is reported and acknowledged.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable

from msgbus.consume.icinga import IcingaSink
from msgbus.consume.nagios import CommandFile, NameRule, check_result_line
from msgbus.consume.subscription import Subscription, message_frames
from msgbus.errors import BridgeRefused, SchemaError
from msgbus.schema.body import decode_body
from msgbus.schema.models import ProbeResult
from msgbus.stomp.frames import MessageFrame
from msgbus.stomp.headers import ID_HEADER
from msgbus.transport.connection import Connection
from msgbus.transport.failover import opener
from msgbus.transport.link import Link
from msgbus.transport.settings import ConnectionConfig

__all__ = ["Bridge", "Submit", "to_command_file", "to_icinga"]

log = logging.getLogger("msgbus.consume")

Submit = Callable[[MessageFrame], int]
"""Hands one message's probe results over; returns how many were taken."""

# A small window: what is unacknowledged comes back if the bridge dies.
_PREFETCH = 10
# Messages remembered as submitted: far more than can be in flight when a broker dies.
_REMEMBERED = 10_000


def _skipped(frame: MessageFrame, problem: object) -> None:
    log.warning("skipped %s: %s", frame.headers.get("message-id"), problem)


def _results(frame: MessageFrame) -> list[ProbeResult]:
    """The probe results of one message; what is not one is reported, not sent."""
    results = []
    for decoded in decode_body(frame.body, frame.headers):
        message = decoded.message
        if isinstance(message, ProbeResult):
            results.append(message)
        else:
            _skipped(frame, decoded.reason if message is None else f"a {type(message).__name__}")
    return results


def to_command_file(commands: CommandFile, rule: NameRule) -> Submit:
    def submit(frame: MessageFrame) -> int:
        lines = []
        for result in _results(frame):
            try:
                lines.append(check_result_line(result, rule))
            except SchemaError as exc:
                _skipped(frame, exc)
        commands.write(lines)
        return len(lines)

    return submit


def to_icinga(sink: IcingaSink) -> Submit:
    def submit(frame: MessageFrame) -> int:
        submitted = 0
        for result in _results(frame):
            try:
                sink.submit(result)
            except (SchemaError, BridgeRefused) as exc:
                _skipped(frame, exc)
                continue
            submitted += 1
        return submitted

    return submit


class Bridge:
    """Submit what ``source`` receives with ``submit`` until ``count`` results were
    submitted or ``stop_at`` (``time.monotonic()``) passed; a signal ends the process
    with nothing unsubmitted acknowledged.

    The first connection must succeed (a wrong broker or login is the user's to fix);
    after that a lost broker is reconnected with back-off and the subscription made
    again, durable name and all; what it redelivers of what was submitted already is
    acknowledged only. An error of ``submit`` (Nagios gone) ends the run.
    """

    def __init__(
        self,
        settings: ConnectionConfig,
        source: Subscription,
        submit: Submit,
        *,
        target: str,
        count: int | None = None,
        stop_at: float | None = None,
    ) -> None:
        self.source = source
        self.submit = submit
        self.target = target
        self.count = count
        self.stop_at = stop_at
        self.submitted = 0
        self._link = Link(
            "nagios-bridge: broker connection",
            settings,
            open=opener(settings, source.client_id(None)),
            subscriptions=[lambda conn: source.subscribe(conn, _PREFETCH)],
            fail_first=True,
        )
        self._announced = False
        # A broker that died before it took an ACK redelivers that message on the new
        # connection: taken again by msgbus-id, it is acknowledged, not submitted twice.
        self._done: collections.OrderedDict[str, None] = collections.OrderedDict()

    def run(self) -> int:
        """Bridge until done; returns the number of check results submitted."""
        try:
            self._link.run(self._serve, until=self.stop_at)
        finally:
            self._link.close()
        return self.submitted

    def _serve(self, conn: Connection) -> None:
        if not self._announced:
            log.info("bridging %s to %s", self.source.destination, self.target)
            self._announced = True
        for frame in message_frames(conn, self.stop_at):
            key = frame.headers.get(ID_HEADER)
            if key is None or key not in self._done:
                self.submitted += self.submit(frame)
            conn.ack([frame])  # only now: its results are in Nagios' (Icinga's) hands
            if key is not None:
                self._done[key] = None
                if len(self._done) > _REMEMBERED:
                    self._done.popitem(last=False)
            if self.count is not None and self.submitted >= self.count:
                return
