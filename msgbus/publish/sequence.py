"""Per-producer numbering of outgoing messages, for the consumer's completeness ledger.

Every destination a publisher sends to is a *stream* with its own producer id, epoch
and gap-free sequence (headers in :mod:`msgbus.stomp.headers`), so a consumer of one
destination sees 1, 2, 3, ... with nothing in between. Numbers are reserved in blocks,
durably in the spool's SQLite (the same producer and epoch after a restart; a message
spooled and drained later keeps its number), or in memory without a spool (a new epoch
per process). A block reserved and then lost with the process before its messages were
handed over shows as a gap: that is what happened to them.

A sync record per stream (:meth:`Sequencer.sync_records`) states the last number and the
numbers this publisher gave up on (refused by a broker, or neither delivered nor
spooled: the user was told), so the ledger tells those from messages lost in transit
and notices the last messages of a producer that went quiet.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from msgbus.numbering import merge_ranges
from msgbus.publish.envelope import Envelope
from msgbus.stomp.headers import EPOCH_HEADER, PRODUCER_HEADER, SEQ_HEADER, SYNC_HEADER

__all__ = ["MemoryStreams", "Sequencer", "Stream", "StreamStore"]

_BLOCK = 1024
"""Messages numbered per reservation: one durable write each."""


@dataclass(frozen=True, slots=True)
class Stream:
    producer: str
    epoch: int


class StreamStore(Protocol):
    """Where reservations are kept (the spool, or memory)."""

    def reserve(self, counts: dict[str, int]) -> dict[str, tuple[Stream, int]]:
        """Reserve ``counts[destination]`` numbers per destination; returns each
        destination's stream and the first number reserved."""
        ...


class MemoryStreams:
    """Reservations in memory: a new producer and epoch per process."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[Stream, int]] = {}

    def reserve(self, counts: dict[str, int]) -> dict[str, tuple[Stream, int]]:
        out = {}
        for destination, n in counts.items():
            stream, last = self._streams.get(destination) or (new_stream(), 0)
            self._streams[destination] = (stream, last + n)
            out[destination] = (stream, last + 1)
        return out


def new_stream() -> Stream:
    return Stream(uuid.uuid4().hex, int(time.time() * 1000))


class Sequencer:
    def __init__(self, store: StreamStore) -> None:
        self._store = store
        self._last: dict[str, tuple[Stream, int]] = {}  # per destination, since last sync
        self._skipped: defaultdict[tuple[str, int], list[int]] = defaultdict(list)

    def stamp(self, envelopes: Iterator[Envelope]) -> Iterator[Envelope]:
        """``envelopes`` numbered (ones already numbered, and sync records, unchanged)."""
        while block := list(itertools.islice(envelopes, _BLOCK)):
            fresh = Counter(
                e.destination
                for e in block
                if PRODUCER_HEADER not in e.headers and SYNC_HEADER not in e.headers
            )
            reserved = self._store.reserve(dict(fresh)) if fresh else {}
            for env in block:
                place = reserved.get(env.destination)
                if place is None or PRODUCER_HEADER in env.headers or SYNC_HEADER in env.headers:
                    yield env
                    continue
                stream, seq = place
                reserved[env.destination] = (stream, seq + 1)
                self._last[env.destination] = (stream, seq)
                headers = {
                    **env.headers,
                    PRODUCER_HEADER: stream.producer,
                    EPOCH_HEADER: str(stream.epoch),
                    SEQ_HEADER: str(seq),
                }
                yield Envelope(env.destination, env.body, headers, env.msgbus_id)

    def skip(self, env: Envelope) -> None:
        """This publisher gave up on ``env`` (the user is told): not lost in transit."""
        headers = env.headers
        seq = headers.get(SEQ_HEADER, "")
        if PRODUCER_HEADER in headers and seq.isdigit():
            stream = Stream(headers[PRODUCER_HEADER], int(headers.get(EPOCH_HEADER, "0")))
            self._skipped[(stream.producer, stream.epoch)].append(int(seq))
            known = self._last.get(env.destination)
            if known is None or known[0] != stream or known[1] < int(seq):
                self._last[env.destination] = (stream, int(seq))

    def sync_records(self) -> list[Envelope]:
        """One sync record per stream numbered or skipped in since the last call."""
        out = []
        for destination, (stream, last) in self._last.items():
            skipped = self._skipped.pop((stream.producer, stream.epoch), [])
            body = {
                "producer": stream.producer,
                "epoch": stream.epoch,
                "last": last,
                "skipped": merge_ranges(skipped),
            }
            headers = {
                SYNC_HEADER: "1",
                PRODUCER_HEADER: stream.producer,
                EPOCH_HEADER: str(stream.epoch),
                "content-type": "application/json",
            }
            out.append(Envelope(destination, json.dumps(body).encode(), headers))
        self._last.clear()
        return out
