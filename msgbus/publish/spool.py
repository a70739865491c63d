"""The local on-disk spool: messages no broker took yet, kept in order, crash-safe.

SQLite in WAL mode with ``synchronous=FULL``: once :meth:`Spool.add` returned, the
rows survive a kill -9 or a power cut. Several processes may share one spool
directory (SQLite locks the database; one drainer at a time holds ``drain.lock``).
Triggers keep the message count and byte total in step with the rows, so the size
bound is checked without scanning. The directory must be on a local file system
(SQLite locking is unreliable on NFS).

When the disk under it fills, every write raises :class:`SpoolFull` naming the disk;
:meth:`Spool.add` first stores as long a prefix as still fits. Reading keeps working,
so a drain can still send what is spooled (see msgbus.publish.publisher).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from msgbus.errors import PublishError, SpoolFull
from msgbus.numbering import Range
from msgbus.publish.envelope import Envelope
from msgbus.publish.sequence import Stream, new_stream

__all__ = ["Spool", "SpoolStatus", "SpooledMessage"]

_DB_NAME = "spool.sqlite"
_LOCK_NAME = "drain.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msgbus_id TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    size INTEGER NOT NULL,
    spooled_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS rejected (
    msgbus_id TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS last_error (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    error TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    destination TEXT PRIMARY KEY,
    producer TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS skipped (
    producer TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS spool_added AFTER INSERT ON messages BEGIN
    UPDATE totals SET count = count + 1, bytes = bytes + NEW.size WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS spool_removed AFTER DELETE ON messages BEGIN
    UPDATE totals SET count = count - 1, bytes = bytes - OLD.size WHERE id = 1;
END;
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    seq: int
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    path: Path
    count: int
    bytes: int
    max_bytes: int
    oldest: float | None
    """Unix time the oldest message was spooled, None when empty."""
    rejected: int = 0
    """Messages a broker refused for themselves, set aside (see :meth:`Spool.reject`)."""
    last_error: str | None = None
    """Why messages were last spooled or stopped draining, until the spool empties."""
    last_error_at: float | None = None


class Spool:
    """The spool in ``directory`` (created, mode 0700, when missing)."""

    def __init__(self, directory: Path, max_bytes: int, *, busy_timeout: float = 30.0) -> None:
        self.directory = directory
        self.path = directory / _DB_NAME
        self.max_bytes = max_bytes
        self._disk_full: SpoolFull | None = None
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) below.
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        except (OSError, sqlite3.Error) as exc:
            raise self._error("cannot open", exc) from None

    def _error(self, action: str, exc: Exception) -> PublishError:
        if _disk_full(exc):
            return SpoolFull(
                f"the disk holding the spool {self.directory} is full ({exc}); free space on "
                "it: what is spooled is kept"
            )
        return PublishError(
            f"{action} the spool {self.path}: {exc}; check that the directory is writable, "
            "on a local disk, and not full (or choose another with --spool)"
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does): the failed
            # ROLLBACK's "no transaction is active" must not hide the real cause.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, envelopes: Sequence[Envelope]) -> int:
        """Store messages in order, durably; returns how many fitted.

        All or a prefix: when the size bound or the disk is full the rest is not stored
        (see :meth:`full_error`). A msgbus-id already spooled is not stored twice.
        """
        self._disk_full = None
        try:
            return self._add(envelopes)
        except SpoolFull as exc:
            self._disk_full = exc
        # The disk filled: keep as long a prefix as still fits, halving (a dozen tries).
        stored, rest = 0, list(envelopes)
        while rest:
            half = rest[: max(1, len(rest) // 2)]
            try:
                added = self._add(half)
            except SpoolFull:
                if len(half) == 1:
                    break
                rest = half
                continue
            stored += added
            if added < len(half):
                break  # the size bound, reached too
            rest = rest[len(half) :]
        return stored

    def _add(self, envelopes: Sequence[Envelope]) -> int:
        now = time.time()
        try:
            with self._transaction() as db:
                (used,) = db.execute("SELECT bytes FROM totals WHERE id = 1").fetchone()
                rows = []
                for env in envelopes:
                    used += env.size
                    if used > self.max_bytes:
                        break
                    rows.append(
                        (
                            env.msgbus_id,
                            env.destination,
                            json.dumps(dict(env.headers)),
                            env.body,
                            env.size,
                            now,
                        )
                    )
                db.executemany(
                    "INSERT OR IGNORE INTO messages "
                    "(msgbus_id, destination, headers, body, size, spooled_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise self._error("cannot write to", exc) from None
        return len(rows)

    def reserve(self, counts: dict[str, int]) -> dict[str, tuple[Stream, int]]:
        """Reserve sequence numbers per destination, durably (see msgbus.publish.sequence):
        the same producer and epoch for as long as this spool exists."""
        out = {}
        try:
            with self._transaction() as db:
                for destination, n in counts.items():
                    row = db.execute(
                        "SELECT producer, epoch, last_seq FROM streams WHERE destination = ?",
                        (destination,),
                    ).fetchone()
                    if row is None:
                        fresh = new_stream()
                        row = (fresh.producer, fresh.epoch, 0)
                        db.execute(
                            "INSERT INTO streams VALUES (?, ?, ?, 0)", (destination, *row[:2])
                        )
                    db.execute(
                        "UPDATE streams SET last_seq = last_seq + ? WHERE destination = ?",
                        (n, destination),
                    )
                    out[destination] = (Stream(row[0], row[1]), row[2] + 1)
        except sqlite3.Error as exc:
            raise self._error("cannot write to", exc) from None
        return out

    def hold_skipped(self, stream: Stream, ranges: list[Range]) -> None:
        """Keep numbers given up on until a run's end tells them (this process's, or a
        later one's: a refused last message, a message refused while draining)."""
        rows = [(stream.producer, stream.epoch, first, last) for first, last in ranges]
        try:
            with self._transaction() as db:
                db.executemany("INSERT INTO skipped VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise self._error("cannot write to", exc) from None

    def take_skipped(self, stream: Stream) -> list[Range]:
        select = "SELECT first, last FROM skipped WHERE producer = ? AND epoch = ?"
        key = (stream.producer, stream.epoch)
        try:
            if not self._db.execute(select, key).fetchone():
                return []  # the common case, without a durable write at every run's end
            with self._transaction() as db:
                rows = db.execute(select, key).fetchall()
                db.execute("DELETE FROM skipped WHERE producer = ? AND epoch = ?", key)
        except sqlite3.Error as exc:
            raise self._error("cannot write to", exc) from None
        return [(first, last) for first, last in rows]

    def full_error(self, unstored: int) -> SpoolFull:
        """Why the last :meth:`add` stored only a prefix, with the count left out."""
        if self._disk_full is not None:
            return SpoolFull(
                f"{unstored} message(s) could be neither delivered nor spooled: {self._disk_full}"
            )
        return SpoolFull(
            f"spool {self.path} is full ({self.max_bytes} bytes): {unstored} message(s) "
            "could be neither delivered nor spooled; drain it (msgbus spool drain) or raise "
            "publisher.spool_max_bytes"
        )

    def peek(self, limit: int, after_seq: int = 0) -> list[SpooledMessage]:
        """The oldest ``limit`` messages after ``after_seq``, in spool order."""
        try:
            rows = self._db.execute(
                "SELECT seq, msgbus_id, destination, headers, body FROM messages "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from None
        return [
            SpooledMessage(seq, Envelope(dest, bytes(body), json.loads(headers), msgbus_id))
            for seq, msgbus_id, dest, headers, body in rows
        ]

    def remove(self, msgbus_ids: Sequence[str]) -> None:
        """Forget delivered messages (one durable transaction)."""
        if not msgbus_ids:
            return
        try:
            with self._transaction() as db:
                db.executemany(
                    "DELETE FROM messages WHERE msgbus_id = ?", [(i,) for i in msgbus_ids]
                )
        except sqlite3.Error as exc:
            raise self._error("cannot update", exc) from None

    def reject(self, msgbus_id: str, reason: str) -> None:
        """Set a message a broker refused for itself (too large, not authorized) aside,
        with the reason: it must not hold up the messages behind it, nor be lost
        silently. ``msgbus spool status`` counts them."""
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO rejected "
                    "SELECT msgbus_id, destination, headers, body, ?, ? FROM messages "
                    "WHERE msgbus_id = ?",
                    (reason, time.time(), msgbus_id),
                )
                db.execute("DELETE FROM messages WHERE msgbus_id = ?", (msgbus_id,))
        except sqlite3.Error as exc:
            raise self._error("cannot update", exc) from None

    def note_error(self, error: str | None) -> None:
        """Remember why delivery stopped (None: it no longer is, forget it). A note for
        ``msgbus spool status``: on a full disk it is left out (the write that needed the
        space reports that)."""
        try:
            with self._transaction() as db:
                if error is None:
                    db.execute("DELETE FROM last_error")
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO last_error VALUES (1, ?, ?)", (error, time.time())
                    )
        except sqlite3.Error as exc:
            if not _disk_full(exc):
                raise self._error("cannot update", exc) from None

    def status(self) -> SpoolStatus:
        db = self._db
        try:
            count, used = db.execute("SELECT count, bytes FROM totals WHERE id = 1").fetchone()
            (oldest,) = db.execute("SELECT MIN(spooled_at) FROM messages").fetchone()
            (rejected,) = db.execute("SELECT COUNT(*) FROM rejected").fetchone()
            error = db.execute("SELECT error, at FROM last_error").fetchone() or (None, None)
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from None
        return SpoolStatus(self.path, count, used, self.max_bytes, oldest, rejected, *error)

    def __len__(self) -> int:
        return self.status().count

    @contextlib.contextmanager
    def drain_lock(self) -> Iterator[bool]:
        """Hold the drain lock if no other process does; yields whether we got it."""
        try:
            fd = os.open(self.directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._error("cannot lock", exc) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock


def _disk_full(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.Error):
        # sqlite_errorcode (SQLITE_FULL) exists from Python 3.11; the text in all.
        return "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC
