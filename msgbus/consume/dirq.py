"""Consuming into a directory queue (``dirq`` QueueSimple) instead of the database, for
tools that read SSM's incoming queue: one element per message, WLCG text, acknowledged
to the broker once written (at least once: a redelivery after a crash writes it again,
as SSM receivers do). Dead letters go to a sibling queue, ``DIR.rejected``, with the
reason in the first line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from msgbus.schema.body import encode_body
from msgbus.store.database import DeadLetter, StoredMessage, WriteResult
from msgbus.store.dirq import open_queue
from msgbus.store.ledger import LedgerBatch

__all__ = ["DirqSink"]


class DirqSink:
    """Where a Consumer writes when given ``--dirq DIR`` (the Store's writing side)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display_url = f"dirq:{path}"
        self._queue = open_queue(path)
        self._rejected = open_queue(Path(f"{path}.rejected"))

    def check(self) -> None:
        """Nothing to migrate: the directories are made on first use."""

    def close(self) -> None:
        """Nothing held open."""

    def write(
        self,
        messages: Sequence[StoredMessage],
        dead: Sequence[DeadLetter] = (),
        *,
        received_at: datetime | None = None,
        ledger: LedgerBatch | None = None,
    ) -> WriteResult:
        """Add each message as an element; the ledger has no place here (no store)."""
        for item in messages:
            self._queue.add(encode_body(item.message, "wlcg")[0])
        for letter in dead:
            self._rejected.add(letter.reason.encode() + b"\n" + letter.body)
        return WriteResult(stored=len(messages), dead_lettered=len(dead))
