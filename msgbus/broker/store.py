"""Persistence of the embedded broker: SQLite in WAL mode with group commit.

Changes (insert, delete, redelivery count, durable subscriptions) are queued by the
event loop and written in batches: the loop runs a batch's statements, one writer
thread its COMMIT (the fsync). Everything queued while a COMMIT is under way goes into
the next batch, so a burst of persistent SENDs costs one fsync per batch, not one per
message. ``when_durable`` runs a callback once everything queued so far is committed:
that is when a RECEIPT for a persistent SEND may go out.

A batch that fails (a full disk) is written again every ``RETRY_S`` seconds, before
anything queued after it, without the new messages ``forget`` drops from the queues
(not delivered yet): their RECEIPTs are refused, so their senders send them again.
Meanwhile ``failure`` says why and the sessions refuse persistent SENDs transiently.
Once a retry commits the store recovers by itself: space freed is all it takes.

``unwritten`` counts the bytes of messages queued or being written. Past ``max_unwritten``
``busy`` is true and the sessions stop reading persistent SENDs (flow control); after each
commit ``room`` lets them in again. That bounds a batch, so a burst from many connections
is written in commits of a bounded size and time, one after the other; without it the
loop read every socket dry while a commit ran, the next batch grew with the wait, and
the wait with the batch (six commits in the 18 s a burst was read, 1.3 GiB held).

The statements run on the loop, not the writer thread, because sqlite3 releases the GIL
at every row: a writer thread would wait for the busy loop's GIL once per row (the
convoy effect), which cut receipts to ~60/s under a burst from 10,000 connections.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from msgbus.errors import ConfigError

__all__ = ["DurableRecord", "MessageStore", "StoredMessage"]

log = logging.getLogger("msgbus.broker.store")

RETRY_S = 1.0
"""Seconds between attempts to write a batch that failed."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    redeliveries INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS durable_subscriptions (
    queue TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    selector TEXT
);
"""

_SQL = {
    "insert": "INSERT INTO messages (seq, queue, headers, body, redeliveries) VALUES (?,?,?,?,?)",
    "delete": "DELETE FROM messages WHERE seq = ?",
    "redeliver": "UPDATE messages SET redeliveries = ? WHERE seq = ?",
    "subscribe": (
        "INSERT OR REPLACE INTO durable_subscriptions (queue, topic, selector) VALUES (?, ?, ?)"
    ),
    "unsubscribe": "DELETE FROM durable_subscriptions WHERE queue = ?",
    "purge": "DELETE FROM messages WHERE queue = ?",
    # Rewrites one row: a retry that needs as much room as the smallest real write.
    "probe": "INSERT OR REPLACE INTO write_probe (id) VALUES (1)",
}


class StoredMessage(NamedTuple):
    seq: int
    queue: str
    headers: dict[str, str]
    body: bytes
    redeliveries: int


class DurableRecord(NamedTuple):
    queue: str
    topic: str
    selector: str | None = None


Op = tuple[str, tuple[Any, ...]]


class MessageStore:
    """Group-committing SQLite store; with ``path`` None nothing is written."""

    def __init__(self, path: Path | None, max_unwritten: int = 8 << 20) -> None:
        self.path = path
        self.max_unwritten = max_unwritten
        self.unwritten = 0  # bytes of the messages in _ops and _writing
        self.peak_unwritten = 0
        self._writing_bytes = 0
        self._db: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._ops: list[Op] = []
        self._waiting: list[Callable[[bool], None]] = []  # run after the next batch commits
        self._in_flight: list[Callable[[bool], None]] | None = None  # batch being written
        self._writing: list[Op] = []  # its changes, kept to retry them if it fails
        self._scheduled = False
        self._retry: asyncio.TimerHandle | None = None
        self._next_seq = 1
        self.commits = 0  # batches written: fewer than persistent SENDs under load
        self._idle: asyncio.Event | None = None
        self.failure: str | None = None
        """Why the last write failed, until one succeeds again."""
        self.forget: Callable[[set[int]], set[int]] = lambda seqs: set()
        """Called with the sequence numbers of messages whose row could not be written;
        returns those it dropped (their rows are not written again)."""
        self.room: Callable[[], None] = lambda: None
        """Called after a commit made room (``busy`` went false), to read on."""

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def busy(self) -> bool:
        """True while the messages not yet committed reach ``max_unwritten`` bytes."""
        return self.unwritten >= self.max_unwritten

    def open(
        self, loop: asyncio.AbstractEventLoop
    ) -> tuple[list[DurableRecord], list[StoredMessage]]:
        """Open (creating) the database and return what survived the last run."""
        self._loop = loop
        self._idle = asyncio.Event()
        self._idle.set()
        if self.path is None:
            return [], []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used by the loop and the writer thread in turn, never at once (see _flush).
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so a RECEIPT means on disk.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(durable_subscriptions)")}
            if "selector" not in columns:  # a store written before selectors were kept
                db.execute("ALTER TABLE durable_subscriptions ADD COLUMN selector TEXT")
            subs = [
                DurableRecord(*row)
                for row in db.execute("SELECT queue, topic, selector FROM durable_subscriptions")
            ]
            messages = [
                StoredMessage(seq, queue, json.loads(headers), bytes(body), redeliveries)
                for seq, queue, headers, body, redeliveries in db.execute(
                    "SELECT seq, queue, headers, body, redeliveries FROM messages ORDER BY seq"
                )
            ]
        except sqlite3.Error as exc:
            raise ConfigError(
                f"cannot open the broker store {self.path}: {exc}; check --data (a writable "
                "directory, not used by another broker)"
            ) from None
        self._db = db
        self._next_seq = (messages[-1].seq + 1) if messages else 1
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="msgbus-store")
        return subs, messages

    # -- changes, queued from the event loop ------------------------------------------

    def insert(self, queue: str, headers: dict[str, str], body: bytes, redeliveries: int) -> int:
        """Queue a message row; returns its sequence number (0 when not persisting)."""
        if self.path is None:
            return 0
        seq = self._next_seq
        self._next_seq += 1
        args = (seq, queue, json.dumps(headers), body, redeliveries)
        self.unwritten += _size(args)
        self.peak_unwritten = max(self.peak_unwritten, self.unwritten)
        self._queue_op("insert", args)
        return seq

    def delete(self, seq: int) -> None:
        if seq:
            self._queue_op("delete", (seq,))

    def set_redeliveries(self, seq: int, count: int) -> None:
        if seq:
            self._queue_op("redeliver", (count, seq))

    def add_durable(self, queue: str, topic: str, selector: str | None = None) -> None:
        """Record a durable subscription, or its new selector."""
        if self.path is not None:
            self._queue_op("subscribe", (queue, topic, selector))

    def remove_durable(self, queue: str) -> None:
        if self.path is not None:
            self._queue_op("unsubscribe", (queue,))
            self._queue_op("purge", (queue,))

    def when_durable(self, callback: Callable[[bool], None]) -> None:
        """Run ``callback(ok)`` once every change queued so far is committed (or failed)."""
        if self._ops:
            self._waiting.append(callback)
        elif self._in_flight is not None:
            self._in_flight.append(callback)
        else:
            callback(self.failure is None)

    # -- the writer -------------------------------------------------------------------

    def _queue_op(self, kind: str, args: tuple[Any, ...]) -> None:
        self._ops.append((kind, args))
        if not self._scheduled and self._in_flight is None:
            self._scheduled = True
            assert self._loop is not None
            # call_soon: every change made in this loop iteration joins the same batch.
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self._retry = None
        if self._in_flight is not None or not self._ops:
            return
        assert self._loop is not None and self._executor is not None and self._idle is not None
        ops, self._ops = self._ops, []
        self._writing = ops
        self._writing_bytes = self.unwritten
        self._in_flight, self._waiting = self._waiting, []
        self._idle.clear()
        try:
            self._apply(ops)
        except sqlite3.Error as exc:
            self._written(exc)
            return
        future = self._loop.run_in_executor(self._executor, self._commit)
        future.add_done_callback(lambda done: self._written(done.exception()))

    def _apply(self, ops: list[Op]) -> None:
        """Run ``ops`` in a new transaction (on the loop: no commit is under way)."""
        db = self._db
        assert db is not None
        db.execute("BEGIN")
        try:
            # Consecutive changes of one kind go in one executemany; order is preserved.
            for kind, group in itertools.groupby(ops, key=lambda op: op[0]):
                db.executemany(_SQL[kind], [args for _, args in group])
        except BaseException:
            _rollback(db)
            raise

    def _commit(self) -> None:
        db = self._db
        assert db is not None
        try:
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    def _written(self, exc: BaseException | None) -> None:
        callbacks, self._in_flight = self._in_flight or [], None
        failed, self._writing = self._writing, []
        self.commits += 1
        if exc is not None:
            # Kept, in order, ahead of later changes (an acked message's row must still
            # go), but for the new messages dropped: their senders are told not stored.
            dropped = self.forget({args[0] for kind, args in failed if kind == "insert"})
            kept = [op for op in failed if op[0] != "insert" or op[1][0] not in dropped]
            self.unwritten -= sum(
                _size(args) for kind, args in failed if kind == "insert" and args[0] in dropped
            )
            self._ops[:0] = kept or [("probe", ())]
            if self.failure is None:
                log.error("%s", self._describe(exc))
            self.failure = self._describe(exc)
        else:
            self.unwritten -= self._writing_bytes
            if self.failure is not None:
                log.warning(
                    "the broker store %s is written again, after: %s", self.path, self.failure
                )
                self.failure = None
        self._writing_bytes = 0
        for callback in callbacks:
            try:
                callback(exc is None)
            except Exception:  # one connection's fault: the others' receipts still go
                log.exception("a callback after a commit of the broker store failed")
        if exc is not None:
            assert self._loop is not None and self._idle is not None
            self._scheduled = True  # new changes wait for the retry, not a loop turn
            self._retry = self._loop.call_later(RETRY_S, self._flush)
            self._idle.set()
        elif self._ops:
            self._flush()
        elif self._idle is not None:
            self._idle.set()
        if exc is None and not self.busy:
            # After the next batch went to the writer: what comes in now is the batch
            # after it, gathered while this one is written.
            self.room()

    def _describe(self, exc: BaseException) -> str:
        # SQLite's text for SQLITE_FULL (error codes are on exceptions from Python 3.11).
        if isinstance(exc, sqlite3.Error) and "database or disk is full" in str(exc):
            return (
                f"disk full: writing the broker store {self.path} failed ({exc}); free space "
                "on its filesystem: persistent messages are refused until then"
            )
        return f"writing the broker store {self.path} failed: {exc}"

    async def close(self) -> None:
        """Write what is queued, then close the database; a store that cannot write gets
        one more attempt (what it still holds then is recovered from the last commit)."""
        while self._ops or self._in_flight is not None:
            self._flush()
            assert self._idle is not None
            await self._idle.wait()
            if self.failure is not None:
                log.error("closing with %d changes not written: %s", len(self._ops), self.failure)
                break
        if self._retry is not None:
            self._retry.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._db is not None:
            self._db.close()
            self._db = None


def _size(args: tuple[Any, ...]) -> int:
    """What a message row holds in memory until written: its headers and body."""
    return len(args[2]) + len(args[3])


def _rollback(db: sqlite3.Connection) -> None:
    """End a failed transaction, keeping the error that failed it: SQLite may have
    rolled back already (a full disk), and a ROLLBACK error would hide the cause."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("rolling back the broker store failed too: %s", exc)
