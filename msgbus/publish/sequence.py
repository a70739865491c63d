"""Per-producer numbering of outgoing messages, for the consumer's completeness ledger.

Every destination a publisher sends to is a *stream* with its own producer id, epoch
and gap-free sequence (headers in :mod:`msgbus.stomp.headers`), so a consumer of one
destination sees 1, 2, 3, ... with nothing in between. Numbers are reserved in blocks,
durably in the spool's SQLite (the same producer and epoch after a restart; a message
spooled and drained later keeps its number), or in memory without a spool (a new epoch
per process). A block reserved and then lost with the process before its messages were
handed over shows as a gap: that is what happened to them.

The last message of each stream in a run ends it (:meth:`Sequencer.end`): headers on
that message, not a message of their own (consumers other than msgbus, such as APEL's
SSM, would take one for data), state its number as the last and the numbers this
publisher gave up on (refused by a broker, or neither delivered nor spooled: the user
was told), so the ledger tells those from messages lost in transit. Numbers given up
on after their run's end went (that last message refused itself, one refused while
draining) are kept with the reservations and told by the next run's end.

On a full spool disk nothing can be reserved or kept durably: messages then go
unnumbered (delivered, but outside the audit) rather than not at all, and the numbers
given up on are kept in memory for this process's run's end.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from msgbus.errors import SpoolFull
from msgbus.numbering import Range, coalesce, format_ranges, parse_ranges
from msgbus.publish.envelope import Envelope
from msgbus.stomp.headers import (
    EPOCH_HEADER,
    LAST_HEADER,
    PRODUCER_HEADER,
    SEQ_HEADER,
    SKIPPED_HEADER,
    SYNC_HEADER,
    compact_number,
    read_number,
)

__all__ = ["HeldBack", "MemoryStreams", "Sequencer", "Stream", "StreamStore"]

_log = logging.getLogger(__name__)

_BLOCK = 1024
"""Messages numbered per reservation: one durable write each."""
_MAX_SKIPPED_TEXT = 2048
"""Characters of skipped ranges one message carries: far below brokers' header limits
(ActiveMQ refuses a STOMP header line over 10 KiB)."""


@dataclass(frozen=True, slots=True)
class Stream:
    producer: str
    epoch: int


class StreamStore(Protocol):
    """Where reservations, and the numbers given up on but not yet told, are kept (the
    spool, so a later run tells them, or memory)."""

    def reserve(self, counts: dict[str, int]) -> dict[str, tuple[Stream, int]]:
        """Reserve ``counts[destination]`` numbers per destination; returns each
        destination's stream and the first number reserved."""
        ...

    def hold_skipped(self, stream: Stream, ranges: list[Range]) -> None:
        """Keep ``ranges`` of ``stream``, given up on, until a run's end tells them."""
        ...

    def take_skipped(self, stream: Stream) -> list[Range]:
        """The ranges held for ``stream``, no longer held."""
        ...


class MemoryStreams:
    """Reservations in memory: a new producer and epoch per process."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[Stream, int]] = {}
        self._skipped: dict[Stream, list[Range]] = {}

    def reserve(self, counts: dict[str, int]) -> dict[str, tuple[Stream, int]]:
        out = {}
        for destination, n in counts.items():
            stream, last = self._streams.get(destination) or (new_stream(), 0)
            self._streams[destination] = (stream, last + n)
            out[destination] = (stream, last + 1)
        return out

    def hold_skipped(self, stream: Stream, ranges: list[Range]) -> None:
        self._skipped.setdefault(stream, []).extend(ranges)

    def take_skipped(self, stream: Stream) -> list[Range]:
        return self._skipped.pop(stream, [])


def new_stream() -> Stream:
    return Stream(uuid.uuid4().hex, int(time.time() * 1000))


class Sequencer:
    """Numbers envelopes per destination; with ``ends``, keeps the numbers given up on
    for :meth:`end` to tell. ``compact``: one ``msgbus-seq`` header per message, else the
    legacy three (producer, epoch, number) that older consumers read."""

    def __init__(self, store: StreamStore, *, ends: bool = True, compact: bool = True) -> None:
        self._store = store
        self._ends = ends
        self._compact = compact
        self._ours: set[Stream] = set()  # numbered by this process: only these end runs
        self._unsaved: dict[Stream, list[Range]] = {}  # given up on, the spool's disk full
        self._unnumbered = 0

    def stamp(self, envelopes: Iterator[Envelope]) -> Iterator[Envelope]:
        """``envelopes`` numbered (ones already numbered, and sync records, unchanged)."""
        while block := list(itertools.islice(envelopes, _BLOCK)):
            fresh = Counter(e.destination for e in block if not _settled(e))
            try:
                reserved = self._store.reserve(dict(fresh)) if fresh else {}
            except SpoolFull as exc:
                if not self._unnumbered:  # once: the disk stays full for a while
                    _log.warning(
                        "numbering without the spool: the audit will not count "
                        "the messages that follow: %s",
                        exc,
                    )
                self._unnumbered += len(block)
                reserved = {}
            self._ours.update(stream for stream, _ in reserved.values())
            for env in block:
                place = reserved.get(env.destination)
                if place is None or _settled(env):
                    yield env
                    continue
                stream, seq = place
                reserved[env.destination] = (stream, seq + 1)
                yield Envelope(
                    env.destination, env.body, self._number(env, stream, seq), env.msgbus_id
                )

    def _number(self, env: Envelope, stream: Stream, seq: int) -> dict[str, str]:
        if self._compact:
            return {**env.headers, SEQ_HEADER: compact_number(stream.producer, stream.epoch, seq)}
        return {
            **env.headers,
            PRODUCER_HEADER: stream.producer,
            EPOCH_HEADER: str(stream.epoch),
            SEQ_HEADER: str(seq),
        }

    def skip(self, envelopes: Iterable[Envelope]) -> None:
        """This publisher gave up on ``envelopes`` (the user is told): not lost in transit.
        The numbers one announced as skipped, if it ended a run, are to be told again."""
        if not self._ends:
            return
        given_up: dict[Stream, list[Range]] = {}
        for env in envelopes:
            stream, seq = _numbered(env)
            if stream is not None:
                told = parse_ranges(env.headers.get(SKIPPED_HEADER, "")) or []
                given_up.setdefault(stream, []).extend([(seq, seq), *told])
        for stream, ranges in given_up.items():
            self._hold(stream, coalesce(ranges))

    def _hold(self, stream: Stream, ranges: list[Range]) -> None:
        try:
            self._store.hold_skipped(stream, ranges)
        except SpoolFull:
            self._unsaved.setdefault(stream, []).extend(ranges)

    def end(self, env: Envelope) -> Envelope:
        """``env``, the last of its stream in a run, with the end-of-run headers: its
        number as the last one, and the numbers given up on so far (as many as
        :data:`_MAX_SKIPPED_TEXT` allows; the rest wait for the next run's end)."""
        stream, seq = _numbered(env)
        if stream is None or stream not in self._ours:
            return env  # numbered by someone else: not ours to speak for
        headers = {**env.headers, LAST_HEADER: str(seq)}
        try:
            held = self._store.take_skipped(stream)
        except SpoolFull:
            held = []  # still held in the spool, for a later run's end
        pending = coalesce([*held, *self._unsaved.pop(stream, [])])
        told: list[Range] = []
        for piece in pending:
            if len(format_ranges([*told, piece])) > _MAX_SKIPPED_TEXT:
                break
            told.append(piece)
        if told:
            headers[SKIPPED_HEADER] = format_ranges(told)
        if len(told) < len(pending):
            self._hold(stream, pending[len(told) :])
        return Envelope(env.destination, env.body, headers, env.msgbus_id)


class HeldBack:
    """The envelopes of ``source`` but the last one of each destination: those wait in
    :attr:`last` when ``source`` is exhausted, to end the run once the messages before
    them are settled (:meth:`Sequencer.end`)."""

    def __init__(self, source: Iterator[Envelope]) -> None:
        self._source = source
        self.last: dict[str, Envelope] = {}

    def __iter__(self) -> Iterator[Envelope]:
        last = self.last
        for env in self._source:
            previous = last.pop(env.destination, None)
            last[env.destination] = env
            if previous is not None:
                yield previous


def _settled(env: Envelope) -> bool:
    """Numbered already (by this publisher before it spooled it, or by another client),
    or an older publisher's sync record: not to be numbered."""
    headers = env.headers
    return SEQ_HEADER in headers or PRODUCER_HEADER in headers or SYNC_HEADER in headers


def _numbered(env: Envelope) -> tuple[Stream | None, int]:
    """Either form (a spool may hold legacy-numbered messages of an older msgbus)."""
    number = read_number(env.headers)
    if number is None:
        return None, 0
    producer, epoch, seq = number
    return Stream(producer, epoch), seq
