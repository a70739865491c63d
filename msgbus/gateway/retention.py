"""The gateway's retention log: every message of a topic under an integer offset, as AMS
numbers them (per topic, from 0, one more for each message), in SQLite in the gateway's
``state_dir`` (``retention.db``), with each subscription's current offset.

A topic's bounds are AMS's (Kafka's): ``min`` is the oldest offset still kept, ``max`` the
offset the next message will get (so ``min == max``: nothing kept). A message leaves the
log once it is outside ``gateway.retention`` (older than ``max_age``, or not among the
newest ``max_messages`` or ``max_bytes``) *and* every subscription of its topic has
acknowledged it (its current offset is past it): a subscription that falls behind loses
nothing, as a durable subscription at the broker would not.

Pure storage, no broker: :mod:`msgbus.gateway.replay` fills it and reads it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from msgbus.config import GatewayRetention
from msgbus.stomp.frames import MessageFrame

__all__ = ["OFFSET_HEADER", "Bounds", "RetentionLog", "offset_of"]

OFFSET_HEADER = "msgbus-offset"
"""The offset of a message read from the log (a msgbus- header: never an attribute)."""
_PRUNE_EVERY_MS = 1000
"""Milliseconds between two prunings of one topic: a pruning scans the topic's sizes."""
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, next INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (topic TEXT NOT NULL, seq INTEGER NOT NULL, "
    "key TEXT NOT NULL, published_ms INTEGER NOT NULL, size INTEGER NOT NULL, "
    "headers TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (topic, seq))",
    # A message the broker delivers again (the gateway died between commit and ACK) is
    # the same message: it keeps its first offset.
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages (topic, key)",
    "CREATE TABLE IF NOT EXISTS subscriptions (name TEXT PRIMARY KEY, topic TEXT NOT NULL, "
    "current INTEGER NOT NULL)",
)
# Per delivery, not the message's: a replay gets its own.
_DELIVERY = frozenset({"subscription", "ack", "redelivered", "destination-id"})


@dataclass(frozen=True, slots=True)
class Bounds:
    min: int
    max: int


def _row(topic: str, seq: int, frame: MessageFrame, now_ms: int) -> tuple[object, ...]:
    headers = {k: v for k, v in frame.headers.items() if k not in _DELIVERY}
    stamp = headers.get("timestamp", "")
    published = int(stamp) if stamp.isdigit() else now_ms
    headers["timestamp"] = str(published)  # a replay shows the first publishTime
    key = headers.get("msgbus-id") or headers.get("message-id") or f"seq:{seq}"
    text = json.dumps(headers)
    return (topic, seq, key, published, len(frame.body) + len(text), text, frame.body)


def offset_of(frame: MessageFrame) -> int:
    return int(frame.headers[OFFSET_HEADER])


class RetentionLog:
    """Thread-safe: one SQLite connection behind a lock."""

    def __init__(self, path: Path, retention: GatewayRetention) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: the broker is acknowledged once a commit returns; it must be on disk.
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._lock = threading.Lock()
        self._pruned: dict[str, int] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- topics -----------------------------------------------------------------------

    def append(self, topic: str, frames: Sequence[MessageFrame], now_ms: int) -> int:
        """Keep ``frames`` under the next offsets, in one transaction; a frame kept
        already is skipped. Returns how many were new."""
        with self._lock:
            (start,) = self._db.execute(
                "SELECT coalesce(max(next), 0) FROM topics WHERE topic = ?", (topic,)
            ).fetchone()
            rows = [_row(topic, seq, f, now_ms) for seq, f in enumerate(frames, start)]
            changes = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # A frame kept already is ignored: its offset stays unused (a gap, as
                # Kafka's compaction leaves them), which only a redelivery causes.
                self._db.executemany(
                    "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
                new = self._db.total_changes - changes
                self._db.execute(
                    "INSERT INTO topics VALUES (?, ?) ON CONFLICT (topic) DO UPDATE "
                    "SET next = excluded.next",
                    (topic, start + len(rows)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._prune(topic, now_ms)
        return new

    def bounds(self, topic: str) -> Bounds:
        with self._lock:
            row = self._db.execute(
                "SELECT (SELECT min(seq) FROM messages WHERE topic = ?), "
                "(SELECT next FROM topics WHERE topic = ?)",
                (topic, topic),
            ).fetchone()
        high = row[1] or 0
        return Bounds(high if row[0] is None else int(row[0]), int(high))

    def read(self, topic: str, start: int, count: int) -> list[MessageFrame]:
        """Up to ``count`` messages from offset ``start`` on, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, headers, body FROM messages WHERE topic = ? AND seq >= ? "
                "ORDER BY seq LIMIT ?",
                (topic, start, count),
            ).fetchall()
        return [
            MessageFrame({**json.loads(headers), OFFSET_HEADER: str(seq)}, body)
            for seq, headers, body in rows
        ]

    def time_to_offset(self, topic: str, when_ms: int) -> int | None:
        """The offset of the first message kept published at ``when_ms`` or later."""
        with self._lock:
            (seq,) = self._db.execute(
                "SELECT min(seq) FROM messages WHERE topic = ? AND published_ms >= ?",
                (topic, when_ms),
            ).fetchone()
        return None if seq is None else int(seq)

    def forget_topic(self, topic: str) -> None:
        """Drop the topic's messages; its subscriptions start again from 0."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM messages WHERE topic = ?", (topic,))
            self._db.execute("DELETE FROM topics WHERE topic = ?", (topic,))
            self._db.execute("UPDATE subscriptions SET current = 0 WHERE topic = ?", (topic,))
            self._db.execute("COMMIT")

    def _prune(self, topic: str, now_ms: int) -> None:
        """Drop what is outside the retention and acknowledged by every subscription."""
        if now_ms - self._pruned.get(topic, -_PRUNE_EVERY_MS) < _PRUNE_EVERY_MS:
            return
        self._pruned[topic] = now_ms
        keep = self.retention
        (high,) = self._db.execute("SELECT next FROM topics WHERE topic = ?", (topic,)).fetchone()
        cut = self._db.execute(
            "SELECT coalesce(min(seq), ?) FROM messages WHERE topic = ? AND published_ms >= ?",
            (high, topic, now_ms - int(keep.max_age * 1000)),
        ).fetchone()[0]
        if keep.max_messages is not None:
            cut = max(cut, high - keep.max_messages)
        if keep.max_bytes is not None:
            over = self._db.execute(
                "SELECT max(seq) FROM (SELECT seq, sum(size) OVER (ORDER BY seq DESC) AS kept "
                "FROM messages WHERE topic = ?) WHERE kept > ?",
                (topic, keep.max_bytes),
            ).fetchone()[0]
            cut = max(cut, -1 if over is None else over + 1)
        (unacked,) = self._db.execute(
            "SELECT min(current) FROM subscriptions WHERE topic = ?", (topic,)
        ).fetchone()
        cut = cut if unacked is None else min(cut, unacked)
        self._db.execute("DELETE FROM messages WHERE topic = ? AND seq < ?", (topic, cut))

    # -- subscriptions ----------------------------------------------------------------

    def current(self, name: str, topic: str) -> int:
        """The subscription's current offset; a subscription new to the log starts at
        the end of its topic's (it gets what is published from now on)."""
        with self._lock:
            row = self._db.execute(
                "SELECT current FROM subscriptions WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                return int(row[0])
            (high,) = self._db.execute(
                "SELECT coalesce(max(next), 0) FROM topics WHERE topic = ?", (topic,)
            ).fetchone()
            self._db.execute("INSERT INTO subscriptions VALUES (?, ?, ?)", (name, topic, high))
        return int(high)

    def set_current(self, name: str, offset: int) -> None:
        """Without waiting for the disk (the next append does): an acknowledgement lost
        to a power cut only hands its messages out again."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute(
                    "UPDATE subscriptions SET current = ? WHERE name = ?", (offset, name)
                )
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def forget_sub(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
