"""Confirmed delivery over one connection: a bounded window of pipelined receipts.

Messages go out in units, each confirmed by one RECEIPT (the ``confirm`` mode):

* ``receipt``: one SEND with a ``receipt`` header per unit;
* ``transaction`` (the default): BEGIN, a batch of SENDs, COMMIT with the receipt; the
  broker stores the batch atomically, so an unconfirmed unit never leaves duplicates;
* ``cumulative``: a batch of SENDs, the last with the receipt. Brokers
  process a connection's frames in order and answer a failed SEND with ERROR, so the
  receipt vouches for the batch; ActiveMQ appends persistent messages to its journal in
  that order and syncs it before a receipted SEND's RECEIPT. A unit cut short may
  leave some of its messages stored: they go again and consumers drop them by
  msgbus-id. ActiveMQ takes it at up to twice the rate of transactions, whose SENDs
  each carry a ``transaction`` header (docs/performance.md).

Up to ``window`` messages are unconfirmed at any time; the sender never waits for a
receipt while the window has room (no stop-and-wait).

RabbitMQ gets ``receipt`` whatever the mode: its STOMP adapter answers a SEND's receipt
once the queue confirmed the message (publisher confirms), but a COMMIT's as soon as it
has routed the batch, so a 3-node quorum cluster killed after a COMMIT's RECEIPT lost
confirmed batches (3 of 6 fault runs, 199 of 1,000 messages each; 0 of 3 with
per-SEND receipts, tests/chaos/test_cluster_faults.py).

RabbitMQ 3.10 refuses a message to a full queue (``max-length`` with overflow
``reject-publish``, classic or quorum) with a publisher nack its STOMP adapter cannot
handle: the connection process crashes (``function_clause`` on ``basic.nack`` in its
log) and the socket closes with no ERROR and no RECEIPT, even for messages already
stored. So a RabbitMQ connection lost under unconfirmed messages is a transient
refusal (:func:`closed_under_load`): held back and retried with back-off, never
rejected; the re-sent stored ones are dropped by consumers by msgbus-id.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from msgbus.errors import (
    BrokerBusy,
    BrokerError,
    ConnectionLost,
    TimeoutException,
    TransportError,
)
from msgbus.publish.envelope import Envelope
from msgbus.stomp.codec import encode_headers, serialize
from msgbus.stomp.frames import BeginFrame, CommitFrame, ErrorFrame, ReceiptFrame
from msgbus.transport.connection import Connection, broker_error

__all__ = ["Interrupted", "Pipeline", "closed_under_load", "unit_parts"]

Confirmed = Callable[[list[Envelope], float], None]
"""Called with confirmed messages (in send order) and their confirm latency in seconds."""
Refused = Callable[[Envelope, BrokerError], None]
"""Called with a message the broker refused by an ERROR naming its receipt."""

_ids = itertools.count(1)


@dataclass(slots=True)
class Interrupted:
    """The connection failed; ``pending`` were written but not confirmed, in order."""

    error: TransportError
    pending: list[Envelope] = field(default_factory=list)

    @property
    def broker_refused(self) -> bool:
        """The broker refused for good something unidentified among ``pending``."""
        return isinstance(self.error, BrokerError) and not isinstance(self.error, BrokerBusy)


class _ClosedAfterRefusal(ConnectionLost):
    """The connection a broker closed after its ERROR refused a message named in it."""


@dataclass(slots=True)
class _Unit:
    envelopes: list[Envelope]
    sent_at: float
    alone: bool = False
    """Sent one by one to find the message a broker refused without naming it."""


def confirm_mode(confirm: str, server: str) -> str:
    """The mode that confirms storage on the broker that answered as ``server`` (the
    CONNECTED frame's ``server`` header): ``receipt`` on RabbitMQ (see above)."""
    return "receipt" if server.startswith("RabbitMQ/") else confirm


def closed_under_load(conn: Connection, lost: ConnectionLost, pending: int) -> TransportError:
    """Why ``conn`` was lost with ``pending`` messages unconfirmed: on RabbitMQ a
    :class:`BrokerBusy` (a full queue closes the connection, see above), else ``lost``."""
    if not pending or not conn.server.startswith("RabbitMQ/"):
        return lost
    return BrokerBusy(
        f"{conn.url} ({conn.server}) closed the connection with {pending} message(s) "
        "unconfirmed: a queue is full (max-length with overflow reject-publish) or the "
        "node went down; held back and retried with back-off (start or speed up the "
        "queue's consumer)"
    )


def unit_parts(
    chunk: list[Envelope], receipt: str, *, transaction: bool, extra: dict[str, str], version: str
) -> list[bytes]:
    """The frames (as parts for one ``b"".join``) of ``chunk`` confirmed by ``receipt``:
    in a transaction, or cumulative (the receipt on the last SEND); ``extra`` are the
    headers every SEND carries."""
    parts: list[bytes] = []
    if transaction:
        tx = {"transaction": receipt}
        send = b"SEND\n" + encode_headers("SEND", {**extra, **tx}, version)
        parts.append(serialize(BeginFrame(dict(tx)), version))
        for env in chunk:
            parts.extend(env.frame_parts(send, version))
        parts.append(serialize(CommitFrame({**tx, "receipt": receipt}), version))
        return parts
    send = b"SEND\n" + encode_headers("SEND", extra, version)
    for env in chunk[:-1]:
        parts.extend(env.frame_parts(send, version))
    last = encode_headers("SEND", {**extra, "receipt": receipt}, version)
    parts.extend(chunk[-1].frame_parts(b"SEND\n" + last, version))
    return parts


class Pipeline:
    """Send messages over ``conn`` until the source is exhausted and all confirmed."""

    def __init__(
        self,
        conn: Connection,
        *,
        window: int,
        batch: int,
        confirm: str,
        receipt_timeout: float,
        persistent: bool,
    ) -> None:
        self.conn = conn
        self.window = window
        self.batch = max(1, min(batch, window))
        self.confirm = confirm_mode(confirm, conn.server)
        self.receipt_timeout = receipt_timeout
        # No header for non-persistent: it is the default of ActiveMQ, RabbitMQ and the
        # embedded broker, and each header costs ActiveMQ ~1-5 us of CPU per message.
        self._extra = {"persistent": "true"} if persistent else {}
        self._prefix = f"p{next(_ids)}-"
        self._counter = itertools.count(1)
        self._pending: collections.OrderedDict[str, _Unit] = collections.OrderedDict()
        self._in_flight = 0
        self.frames_sent = 0

    def run(
        self,
        source: Iterator[Envelope],
        on_confirmed: Confirmed,
        on_refused: Refused,
        *,
        single: int = 0,
    ) -> Interrupted | None:
        """Deliver everything from ``source``; the first ``single`` go one per unit
        (to find which message a broker refuses). Returns None when all are confirmed."""
        exhausted = False
        try:
            while True:
                while not exhausted and self._in_flight < self.window:
                    size = 1 if single > 0 else min(self.batch, self.window - self._in_flight)
                    chunk = list(itertools.islice(source, size))
                    if not chunk:
                        exhausted = True
                        break
                    self._write(chunk, alone=single > 0)
                    single -= len(chunk)
                    # Take receipts already in without waiting, so latency stays honest.
                    self._collect(0, on_confirmed, on_refused)
                if not self._pending:
                    if exhausted:
                        return None
                    continue
                if not self._collect(self.receipt_timeout, on_confirmed, on_refused):
                    raise TimeoutException(
                        f"no receipt from {self.conn.url} within {self.receipt_timeout:g} s for "
                        f"{self._in_flight} message(s); re-sending them elsewhere"
                    )
        except TransportError as exc:
            cause = (
                exc if isinstance(exc, BrokerError) else self._cause(exc, on_confirmed, on_refused)
            )
            pending = [env for unit in self._pending.values() for env in unit.envelopes]
            if isinstance(cause, ConnectionLost) and not isinstance(cause, _ClosedAfterRefusal):
                cause = closed_under_load(self.conn, cause, len(pending))
            self._pending.clear()
            self._in_flight = 0
            return Interrupted(cause, pending)

    def _cause(
        self, error: TransportError, on_confirmed: Confirmed, on_refused: Refused
    ) -> TransportError:
        """Why the connection failed under a write: what arrived before still counts,
        RECEIPTs confirm and an ERROR (the broker closes the socket under a write still
        in progress) names the refused message and is the cause."""
        try:
            self._collect(0, on_confirmed, on_refused)
        except BrokerError as refusal:
            return refusal
        except TransportError:
            pass
        return error

    def _write(self, chunk: list[Envelope], *, alone: bool = False) -> None:
        version = self.conn.version
        now = time.monotonic()
        parts: list[bytes] = []
        if self.confirm == "receipt" or len(chunk) == 1:
            for env in chunk:
                receipt = self._prefix + str(next(self._counter))
                send = b"SEND\n" + encode_headers(
                    "SEND", {**self._extra, "receipt": receipt}, version
                )
                parts.extend(env.frame_parts(send, version))
                # Registered before writing: a failed write leaves them for a re-send.
                self._pending[receipt] = _Unit([env], now, alone)
        else:
            receipt = self._prefix + str(next(self._counter))
            parts = unit_parts(
                chunk,
                receipt,
                transaction=self.confirm == "transaction",
                extra=self._extra,
                version=version,
            )
            self._pending[receipt] = _Unit(chunk, now)
        self._in_flight += len(chunk)
        self.frames_sent += len(chunk)
        self.conn.write_encoded(b"".join(parts))

    def _collect(self, timeout: float, on_confirmed: Confirmed, on_refused: Refused) -> bool:
        """Process arrived frames (waiting up to ``timeout`` for the first); False if none."""
        frames = self.conn.receive_many(4096, timeout)
        if not frames:
            return False
        now = time.monotonic()
        for frame in frames:
            if isinstance(frame, ReceiptFrame):
                unit = self._pending.pop(frame.headers.get("receipt-id", ""), None)
                if unit is not None:
                    self._in_flight -= len(unit.envelopes)
                    on_confirmed(unit.envelopes, now - unit.sent_at)
            elif isinstance(frame, ErrorFrame):
                self._refused(frame, on_refused)
        return True

    def _refused(self, frame: ErrorFrame, on_refused: Refused) -> None:
        error = broker_error(self.conn.url, frame)
        if isinstance(error, BrokerBusy):
            raise error  # refused for now: every unconfirmed message goes again later
        receipt = frame.headers.get("receipt-id", "")
        unit = self._pending.get(receipt)
        if unit is None and len(self._pending) == 1:
            # A broker that names no receipt (ActiveMQ on an oversized frame), a second
            # time, with only this message in flight: it is the one refused.
            receipt, only = next(iter(self._pending.items()))
            unit = only if only.alone else None
        if unit is not None and len(unit.envelopes) == 1:
            # The broker named the one message it refused; the rest get re-sent.
            del self._pending[receipt]
            self._in_flight -= 1
            on_refused(unit.envelopes[0], error)
            # Brokers close the connection after ERROR (STOMP spec).
            raise _ClosedAfterRefusal(str(error))
        raise error
