"""The completeness ledger, written in the same transaction as the rows it accounts for.

Per producer and epoch the store keeps the highest number seen, the missing ranges
(``ledger_gaps``) and when each was first noticed, the site and host it speaks for,
when it was last heard of and when it last ended a run (``last_sync``). Messages of
clients that do not number them are counted (``ledger_totals.unsequenced``). The
arithmetic is :mod:`msgbus.numbering`; this module reads the affected producers
(locked ``FOR UPDATE``, so consumers sharing a queue do not undo each other), applies a
batch and writes back what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from msgbus.numbering import Numbering, Range
from msgbus.store.insert import insert_ignore
from msgbus.store.tables import TEXT_LENGTH, ledger_gaps, ledger_producers, ledger_totals

__all__ = ["LedgerBatch", "Origin", "SyncRecord", "apply"]

Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """A producer's end of a run: it numbered up to ``last`` and gave up on ``skipped``.
    Carried by the run's last message (msgbus-last), or by the separate sync record
    older publishers sent."""

    producer: str
    epoch: int
    last: int
    skipped: tuple[Range, ...] = ()
    destination: str | None = None


Origin = tuple[str | None, str | None, str | None]
"""Site, host and destination a producer's messages speak for."""


@dataclass(slots=True)
class LedgerBatch:
    """What one batch of frames tells the ledger, gathered per producer (the consumer adds
    one number per frame: this is on its hot path)."""

    numbers: dict[Key, list[int]] = field(default_factory=dict)
    """Numbers that arrived (stored, duplicate or dead-lettered alike: not missing)."""
    origins: dict[Key, Origin] = field(default_factory=dict)
    syncs: list[SyncRecord] = field(default_factory=list)
    unsequenced: int = 0

    def __bool__(self) -> bool:
        return bool(self.numbers or self.syncs or self.unsequenced)

    def arrived(self, key: Key, seq: int) -> bool:
        """Note ``seq``; True when ``key`` is new to the batch (give its origin then)."""
        numbers = self.numbers.get(key)
        if numbers is None:
            self.numbers[key] = [seq]
            return True
        numbers.append(seq)
        return False

    def keys(self) -> set[Key]:
        return set(self.numbers) | {(s.producer, s.epoch) for s in self.syncs}


def _cut(value: str | None) -> str | None:
    return None if value is None else value[:TEXT_LENGTH]


def _locked_producers(conn: sa.Connection, keys: set[Key]) -> dict[Key, dict[str, Any]]:
    t = ledger_producers
    query = sa.select(t).where(sa.tuple_(t.c.producer, t.c.epoch).in_(list(keys))).with_for_update()
    return {(r.producer, r.epoch): dict(r._mapping) for r in conn.execute(query)}


def apply(conn: sa.Connection, batch: LedgerBatch, now: datetime) -> None:
    """Account for ``batch`` on ``conn`` (inside the caller's transaction)."""
    if batch.unsequenced:
        conn.execute(
            ledger_totals.update()
            .where(ledger_totals.c.id == 1)
            .values(unsequenced=ledger_totals.c.unsequenced + batch.unsequenced)
        )
    keys = batch.keys()
    if not keys:
        return
    producers = _locked_producers(conn, keys)
    new = keys - producers.keys()
    if new:
        rows = [_new_producer(key, now) for key in sorted(new)]
        conn.execute(
            insert_ignore(ledger_producers, ("producer", "epoch"), conn.dialect.name), rows
        )
        producers = _locked_producers(conn, keys)
    g = ledger_gaps
    old_gaps: dict[Key, dict[int, tuple[int, datetime]]] = {key: {} for key in keys}
    # Only producers with something missing have gap rows: in the common case (numbers
    # arriving in order) there is nothing to read.
    gapped = [key for key in keys if producers[key]["missing"]]
    if gapped:
        query = sa.select(g).where(sa.tuple_(g.c.producer, g.c.epoch).in_(gapped))
        for gap in conn.execute(query):
            old_gaps[(gap.producer, gap.epoch)][gap.first] = (gap.last, gap.detected_at)
    updates, added, removed = [], [], []
    for key in sorted(keys):
        row = producers[key]
        before = old_gaps[key]
        numbering = Numbering(
            high=row["high_water"],
            gaps=sorted((first, last) for first, (last, _) in before.items()),
            skipped=row["skipped"],
        )
        fresh = numbering.record(batch.numbers.get(key, ()))
        syncs = [s for s in batch.syncs if (s.producer, s.epoch) == key]
        for sync in syncs:
            numbering.announce(sync.last, sync.skipped)
        after = dict(numbering.gaps)
        for first in before.keys() - after.keys():
            removed.append({"p": key[0], "e": key[1], "f": first})
        for first, last in after.items():
            if before.get(first, (None,))[0] != last:
                if first in before:
                    removed.append({"p": key[0], "e": key[1], "f": first})
                added.append(_gap(key, first, last, _noticed(before, first, now)))
        site, host, destination = batch.origins.get(key, (None, None, None))
        destination = destination or next((s.destination for s in syncs if s.destination), None)
        updates.append(
            {
                "p": key[0],
                "e": key[1],
                "site": _cut(site) or row["site"],
                "host": _cut(host) or row["host"],
                "destination": _cut(destination) or row["destination"],
                "high_water": numbering.high,
                "received": row["received"] + fresh,
                "missing": numbering.missing,
                "skipped": numbering.skipped,
                "last_seen": now,
                "last_sync": now if syncs else row["last_sync"],
            }
        )
    if removed:
        conn.execute(
            g.delete().where(
                g.c.producer == sa.bindparam("p"),
                g.c.epoch == sa.bindparam("e"),
                g.c.first == sa.bindparam("f"),
            ),
            removed,
        )
    if added:
        conn.execute(g.insert(), added)
    t = ledger_producers
    columns = [name for name in updates[0] if name not in ("p", "e")]
    # Bind names may not be column names in an executemany UPDATE: prefix them.
    conn.execute(
        t.update()
        .where(t.c.producer == sa.bindparam("p"), t.c.epoch == sa.bindparam("e"))
        .values({name: sa.bindparam("v_" + name) for name in columns}),
        [{("v_" + k if k in columns else k): v for k, v in u.items()} for u in updates],
    )


def _new_producer(key: Key, now: datetime) -> dict[str, Any]:
    return {
        "producer": key[0],
        "epoch": key[1],
        "high_water": 0,
        "received": 0,
        "missing": 0,
        "skipped": 0,
        "first_seen": now,
        "last_seen": now,
    }


def _gap(key: Key, first: int, last: int, noticed: datetime) -> dict[str, Any]:
    return {
        "producer": key[0],
        "epoch": key[1],
        "first": first,
        "last": last,
        "detected_at": noticed,
    }


def _noticed(before: dict[int, tuple[int, datetime]], first: int, now: datetime) -> datetime:
    """A piece of a gap split by a late arrival was noticed when the whole gap was."""
    for start, (last, noticed) in before.items():
        if start <= first <= last:
            return noticed
    return now
