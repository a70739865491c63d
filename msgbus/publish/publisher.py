"""msgbus.Publisher: validated, confirmed, spooled delivery of messages to brokers.

A message counts as delivered only once the broker's RECEIPT for it is back (see
:mod:`msgbus.publish.pipeline`). When the connection drops, unconfirmed messages are
re-sent, with the same msgbus-id, on the next broker that answers; when none answers
within ``publisher.retry_for`` seconds they go to the local spool. The spool drains,
oldest first, before new messages whenever a broker is reachable again.

Use from one thread; :meth:`Publisher.stats` may be read from any.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from msgbus.config import MsgbusConfig, config_for
from msgbus.errors import (
    AuthenticationError,
    BrokerBusy,
    BrokerError,
    ConnectError,
    MsgbusError,
    SchemaError,
    SpoolFull,
)
from msgbus.publish.envelope import Envelope
from msgbus.publish.metrics import PublisherMetrics
from msgbus.publish.packing import pack_bodies
from msgbus.publish.pipeline import Interrupted, Pipeline
from msgbus.publish.sequence import HeldBack, MemoryStreams, Sequencer
from msgbus.publish.spool import Spool
from msgbus.schema import Message, encode_body, validate_message
from msgbus.schema.body import body_headers
from msgbus.schema.validation import Decoded
from msgbus.security import load_smime
from msgbus.transport.connection import Connection, make_ssl_context
from msgbus.transport.failover import opener
from msgbus.transport.link import Link

if TYPE_CHECKING:
    from msgbus.security.smime import Signer

__all__ = ["DrainReport", "PublishReport", "Publisher", "publish_once"]

_SPOOL_CHUNK = 1000


@dataclass(slots=True)
class PublishReport:
    """What became of the messages of one :meth:`Publisher.publish` call."""

    confirmed: int = 0
    spooled: int = 0
    rejected: list[str] = field(default_factory=list)
    """One line per message refused by the schema or by a broker (not retried)."""
    failed: int = 0
    error: MsgbusError | None = None
    """Why ``failed`` messages could be neither delivered nor spooled."""
    spool_reason: MsgbusError | None = None
    """Why messages went to the spool (no broker reachable)."""

    @property
    def accepted(self) -> int:
        return self.confirmed + self.spooled

    def raise_for_failures(self) -> None:
        if self.error is not None:
            raise self.error


@dataclass(slots=True)
class DrainReport:
    drained: int = 0
    remaining: int = 0
    refused: list[str] = field(default_factory=list)
    """Messages a broker refused for themselves; set aside in the spool's rejected part."""
    error: MsgbusError | None = None
    """Why draining stopped early (no broker, the spool's disk full), None when every
    message was tried."""
    busy: bool = False
    """Another process was draining this spool, so this call did nothing."""
    unmarked: int = 0
    """Messages a broker took or refused but not marked so in the spool (its disk is
    full): they stay, and go again (dropped as duplicates by msgbus-id) at a drain once
    space is freed."""


class Publisher:
    """Publishes to the brokers of ``config.connection`` (failover list).

    ``spool=False`` turns the local spool off: undeliverable messages then count as
    failed. ``metrics`` lets several components share one registry.
    """

    def __init__(
        self,
        config: MsgbusConfig | None = None,
        *,
        spool: bool = True,
        metrics: PublisherMetrics | None = None,
    ) -> None:
        self.config = config or MsgbusConfig()
        self.settings = self.config.connection
        self.options = self.config.publisher
        self.metrics = metrics or PublisherMetrics()
        self.spool = Spool(self.options.spool_dir, self.options.spool_max_bytes) if spool else None
        if any(url.tls for url in self.settings.brokers):
            # Bad TLS material is a configuration problem: say so now, not after spooling.
            make_ssl_context(self.settings.tls)
        self._signer: Signer | None = None
        if self.options.sign_cert:
            # cryptography is the optional "signing" extra: loaded only when signing.
            self._signer = load_smime().Signer(
                self.options.sign_cert, self.options.sign_key or self.options.sign_cert
            )
        self._sequencer = Sequencer(
            self.spool if self.spool is not None else MemoryStreams(),
            ends=self.options.sync,
            compact=self.options.wire == "compact",
        )
        # Failures are in each report (spooled because ...): logged at INFO only.
        self._link = Link(
            "publishing",
            self.settings,
            open=opener(self.settings),
            permanent=(AuthenticationError,),  # waiting out retry_for would only hide it
            on_reconnect=lambda: self._count("reconnects"),
            level=logging.INFO,
        )
        self._spool_count = 0
        if self.spool is not None:
            self._spool_changed()

    # -- life cycle -------------------------------------------------------------

    @classmethod
    def from_url(cls, *urls: str, spool: bool = True, **settings: Any) -> Publisher:
        """A publisher for the brokers at ``urls`` (``stomp[+ssl]://[user:pass@]host:port``,
        in failover order), without a configuration file. ``settings`` are publisher
        options (``destination``, ``confirm``, ``spool_dir``, ``retry_for``, ...) or
        connection options (``login``, ``passcode``, ``tls={...}``, ...)::

            with Publisher.from_url("stomp://mq1:61613", destination="/topic/x") as pub:
                report = pub.publish([result])
        """
        return cls(config_for(urls, "publisher", settings), spool=spool)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect politely (bounded by ``disconnect_timeout``) and close the spool."""
        self._link.close()
        if self.spool is not None:
            self.spool.close()

    @property
    def broker(self) -> str | None:
        """The broker currently connected to, if any."""
        conn = self._link.current
        return str(conn.url) if conn is not None else None

    def stats(self) -> dict[str, int]:
        """Counters since start: sent, confirmed, spooled, drained, failed, rejected,
        reconnects (and spool_messages when a spool is on)."""
        out = self.metrics.counts.snapshot()
        if self.spool is not None:
            out["spool_messages"] = self._spool_count
        return out

    def _count(self, name: str, n: int = 1) -> None:
        self.metrics.counts.add(name, n)

    def _spool_changed(self) -> int:
        assert self.spool is not None
        self._spool_count = len(self.spool)
        self.metrics.spool_messages.set(self._spool_count)
        return self._spool_count

    # -- building messages ----------------------------------------------------------

    def envelope(
        self,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        destination: str | None = None,
    ) -> Envelope:
        """An envelope for an already encoded body (signed when signing is configured,
        then encrypted when an encryption certificate is, as APEL SSM's sender does)."""
        merged = dict(headers or {})
        if self._signer is not None:
            from msgbus.security.smime import SIGNED_HEADER

            body = self._signer.sign(body)
            merged[SIGNED_HEADER] = "smime"
        if self.options.encrypt_cert is not None:
            body = load_smime().encrypt(body, self.options.encrypt_cert)
        return Envelope(destination or self.options.destination, body, merged)

    def _envelopes(
        self, messages: Iterable[Message], destination: str | None, report: PublishReport
    ) -> Iterator[Envelope]:
        return self._packed(self._encoded(messages, report), destination)

    def _encoded(
        self, messages: Iterable[Message], report: PublishReport
    ) -> Iterator[tuple[Message, bytes]]:
        for number, message in enumerate(messages, 1):
            # Re-validate: model_construct and model_copy(update=...) bypass validation.
            data = message.model_dump(warnings=False)
            checked = validate_message(type(message), data, number)
            if checked.message is None:
                report.rejected.append(f"message {number} not sent: {checked.reason}")
                self._count("rejected")
                continue
            try:
                body, _ = encode_body(checked.message, self.options.format)
            except SchemaError as exc:
                report.rejected.append(f"message {number} not sent: {exc}")
                self._count("rejected")
                continue
            yield checked.message, body

    def _read_envelopes(
        self, records: Iterable[Decoded], destination: str | None
    ) -> Iterator[Envelope]:
        return self._packed(self._read_bodies(records), destination)

    def _read_bodies(self, records: Iterable[Decoded]) -> Iterator[tuple[Message, bytes]]:
        wire_is_wlcg = self.options.format == "wlcg"
        for record in records:
            message = record.message
            assert message is not None, "give only the records that hold a message"
            if wire_is_wlcg and record.source is not None:
                # The text that was just validated is the body: no second encoding.
                yield message, (record.source.strip("\n") + "\nEOT\n").encode("utf-8")
            else:
                yield message, encode_body(message, self.options.format)[0]

    def _packed(
        self, items: Iterator[tuple[Message, bytes]], destination: str | None
    ) -> Iterator[Envelope]:
        fmt, pack = self.options.format, self.options.pack
        lean = self.options.wire == "compact"
        if pack == 1:  # the default: no grouping, which cost 9% of the read path (callgrind)
            for message, body in items:
                headers = body_headers([message], fmt, lean=lean)
                yield self.envelope(body, headers, destination=destination)
            return
        for body, headers in pack_bodies(items, fmt, pack, lean=lean):
            yield self.envelope(body, headers, destination=destination)

    # -- publishing ---------------------------------------------------------------

    def publish(
        self, messages: Iterable[Message], *, destination: str | None = None
    ) -> PublishReport:
        """Validate, encode and deliver messages; returns when each one is confirmed,
        spooled, rejected or failed (see the report). Invalid messages are rejected
        with their schema error; the others still go."""
        report = PublishReport()
        self.send(self._envelopes(messages, destination, report), report)
        return report

    def publish_read(
        self, records: Iterable[Decoded], *, destination: str | None = None
    ) -> PublishReport:
        """Deliver the messages of records that ``read_stream`` read and validated:
        not validated again, and sent as the text that was read when both it and the
        wire are WLCG (as ``msgbus publish`` does)."""
        report = PublishReport()
        self.send(self._read_envelopes(records, destination), report)
        return report

    def send(
        self, envelopes: Iterable[Envelope], report: PublishReport | None = None
    ) -> PublishReport:
        """Deliver prepared envelopes (the caller vouches for their bodies). The last
        one per destination ends the run (``publisher.sync``): it goes once the others
        are settled, with the numbers given up on (see msgbus.publish.sequence)."""
        report = report if report is not None else PublishReport()
        stamped = self._sequencer.stamp(iter(envelopes))
        held = HeldBack(stamped) if self.options.sync else None
        source = iter(held) if held is not None else stamped
        if self.spool is not None and len(self.spool):
            drained = self.drain()
            # Stopped because the spool's disk is full, a broker took what was sent: new
            # messages go to it (they could not join the spool; order is not promised).
            if (drained.error is not None and not drained.unmarked) or drained.busy:
                # Keep the order: while older messages wait in the spool, new ones join them.
                self._spool_all(self._then_ends(source, held), report, drained.error)
                return report

        def confirmed(envs: list[Envelope], latency: float) -> None:
            report.confirmed += _records(envs)
            self._confirmed(envs, latency)

        def refused(env: Envelope, error: BrokerError) -> None:
            report.rejected.append(f"message {env.msgbus_id} refused by the broker: {error}")
            self._sequencer.skip([env])
            self._count("failed", env.records)

        leftover = self._deliver(source, confirmed, refused)
        if leftover is None and held is not None and held.last:
            # Every skip of the run is known now (the user told of any later one).
            leftover = self._deliver(self._then_ends(iter(()), held), confirmed, refused)
        elif leftover is not None:
            leftover = self._then_ends(leftover[0], held), leftover[1]
        if leftover is not None:
            rest, error = leftover
            self._spool_all(rest, report, error)
        return report

    def _then_ends(self, source: Iterator[Envelope], held: HeldBack | None) -> Iterator[Envelope]:
        """``source``, then the held-back last messages ending the run (when it is over)."""
        yield from source
        if held is not None:
            last, held.last = list(held.last.values()), {}
            yield from (self._sequencer.end(env) for env in last)

    def _confirmed(self, envs: list[Envelope], latency: float) -> None:
        self._count("confirmed", _records(envs))
        self.metrics.confirm_latency.observe(latency)

    def _spool_all(
        self, rest: Iterator[Envelope], report: PublishReport, error: MsgbusError | None
    ) -> None:
        report.spool_reason = error
        if self.spool is not None and error is not None:
            self.spool.note_error(str(error))
        if self.spool is None:
            failed = self._give_up(rest)
            if failed:
                report.failed += failed
                report.error = error or ConnectError("no broker took the messages")
                self._count("failed", failed)
            return
        while chunk := list(itertools.islice(rest, _SPOOL_CHUNK)):
            stored = self.spool.add(chunk)
            records = _records(chunk[:stored])
            report.spooled += records
            self._count("spooled", records)
            if stored < len(chunk):
                failed = self._give_up(itertools.chain(chunk[stored:], rest))
                report.failed += failed
                report.error = self.spool.full_error(failed)
                self._count("failed", failed)
                break
        self._spool_changed()

    def _give_up(self, envelopes: Iterator[Envelope]) -> int:
        """Count messages neither delivered nor spooled (the report says so)."""
        failed = 0
        # In chunks: one durable write for each, not for each message.
        while chunk := list(itertools.islice(envelopes, _SPOOL_CHUNK)):
            self._sequencer.skip(chunk)
            failed += _records(chunk)
        return failed

    # -- draining the spool ---------------------------------------------------------

    def drain(self, progress: Callable[[int], None] | None = None) -> DrainReport:
        """Deliver spooled messages, oldest first, removing each once confirmed.

        Stops early (see ``DrainReport.error``) when no broker answers; returns at once
        when another process is draining the same spool.
        """
        report = DrainReport()
        spool = self.spool
        if spool is None:
            return report
        with spool.drain_lock() as locked:
            if not locked:
                report.busy = True
                report.remaining = self._spool_changed()
                return report
            self._drain_batches(spool, report, progress)
            report.remaining = self._spool_changed()
            if report.error is not None:
                spool.note_error(str(report.error))
            elif not report.remaining:
                spool.note_error(None)
        return report

    def _drain_batches(
        self, spool: Spool, report: DrainReport, progress: Callable[[int], None] | None
    ) -> None:
        """Deliver and remove batch after batch; stops at the first one that could not
        be delivered or marked delivered (see ``report``)."""
        last_seq = 0
        done: list[str] = []
        drained = [0]  # messages, which a packed body holds several of

        def confirmed(envs: list[Envelope], latency: float) -> None:
            done.extend(e.msgbus_id for e in envs)
            drained[0] += _records(envs)
            self._confirmed(envs, latency)
            if progress is not None:
                progress(len(envs))

        unmarked: list[SpoolFull] = []  # one per message delivered but not marked

        def refused(env: Envelope, error: BrokerError) -> None:
            # Set aside, not retried: it must not hold up the messages behind it.
            try:
                spool.reject(env.msgbus_id, str(error))
            except SpoolFull as exc:
                unmarked.append(exc)  # it stays, and is tried again at the next drain
            self._sequencer.skip([env])
            report.refused.append(f"message {env.msgbus_id} refused: {error}")

        # The first batch is one message: on a spool whose disk is full (nothing can be
        # marked delivered) a drain stops after it instead of sending everything again.
        size = 1
        while batch := spool.peek(size, last_seq):
            size = max(self.options.window, _SPOOL_CHUNK)
            last_seq = batch[-1].seq
            leftover = self._deliver((m.envelope for m in batch), confirmed, refused)
            # Removed per batch, not per receipt: a crash in between re-sends a few
            # messages under the same msgbus-id, which consumers drop.
            try:
                spool.remove(done)
            except SpoolFull as exc:
                unmarked.extend([exc] * len(done))
            else:
                report.drained += drained[0]
                self._count("drained", drained[0])
            if unmarked:
                report.unmarked = len(unmarked)
                report.error = _unmarked_error(len(unmarked), unmarked[0])
                break
            done.clear()
            drained[0] = 0
            if leftover is not None:
                report.error = leftover[1]
                break

    # -- connection and delivery ------------------------------------------------------

    def _deliver(
        self,
        source: Iterator[Envelope],
        confirmed: Callable[[list[Envelope], float], None],
        refused: Callable[[Envelope, BrokerError], None],
    ) -> tuple[Iterator[Envelope], MsgbusError] | None:
        """Run the pipeline, reconnecting on failure. Returns what could not be
        delivered (unconfirmed first, in order) and why, or None when all went."""
        single = 0
        stalls = 0
        progress = [0]
        moving = time.monotonic()  # when the broker last took a message

        def counted(envs: list[Envelope], latency: float) -> None:
            progress[0] += len(envs)
            confirmed(envs, latency)

        def counted_refusal(env: Envelope, error: BrokerError) -> None:
            progress[0] += 1  # an answer, even a refusal, means the broker is working
            refused(env, error)

        while True:
            try:
                conn = self._connection(self.options.retry_for)
            except ConnectError as exc:
                return source, exc
            pipeline = Pipeline(
                conn,
                window=self.options.window,
                batch=self.options.batch,
                confirm=self.options.confirm,
                receipt_timeout=self.settings.receipt_timeout,
                persistent=self.options.persistent,
            )
            before = progress[0]
            outcome = pipeline.run(source, counted, counted_refusal, single=single)
            self._count("sent", pipeline.frames_sent)
            if outcome is None:
                return None
            source = self._after_interruption(outcome, source)
            if isinstance(outcome.error, BrokerBusy):
                # Held back, not refused: retried with back-off (no reconnect per message)
                # until retry_for passes without progress, then the rest is spooled.
                moving = time.monotonic() if progress[0] > before else moving
                self._link.lost(outcome.error)
                if self._link.policy.next_attempt > moving + self.options.retry_for:
                    return source, outcome.error
                continue
            isolating = single > 0
            single = len(outcome.pending) if outcome.broker_refused else 0
            # Brokers that take connections but confirm nothing must not hold us forever;
            # a first refusal of an unnamed message is no stall: it is looked for next.
            found_next = single > 0 and not isolating
            stalls = 0 if progress[0] > before or found_next else stalls + 1
            if stalls > len(self.settings.brokers):
                return source, outcome.error

    def _after_interruption(
        self, outcome: Interrupted, source: Iterator[Envelope]
    ) -> Iterator[Envelope]:
        self._link.retire(f"abandoned after: {outcome.error}")
        return itertools.chain(outcome.pending, source)

    def _connection(self, retry_for: float) -> Connection:
        """The current connection, or a new one: failover over the broker list, with
        back-off between rounds for up to ``retry_for`` seconds."""
        return self._link.connection(until=time.monotonic() + retry_for)


def publish_once(
    messages: Iterable[Message],
    *urls: str,
    destination: str,
    spool: bool = True,
    **settings: Any,
) -> PublishReport:
    """Connect to the first of ``urls`` that answers, publish ``messages`` to
    ``destination``, wait for the confirmations and disconnect: the one-shot case of
    :meth:`Publisher.from_url` (same ``settings``). With ``spool`` (the default) what no
    broker took within ``retry_for`` waits in the local spool for the next run; the
    report says how many were confirmed, spooled, rejected or failed::

        report = msgbus.publish_once([result], "stomp://mq1:61613", destination="/topic/x")
        report.raise_for_failures()
    """
    with Publisher.from_url(*urls, spool=spool, destination=destination, **settings) as pub:
        return pub.publish(messages)


def _unmarked_error(count: int, cause: SpoolFull) -> SpoolFull:
    return SpoolFull(
        f"stopped draining: {count} message(s) a broker took (or refused) cannot be marked so "
        f"in the spool ({cause}); they stay spooled and go once more, dropped by consumers "
        "as duplicates, when a drain runs after space is freed"
    )


def _records(envelopes: Iterable[Envelope]) -> int:
    return sum(env.records for env in envelopes)
