"""Consuming into a directory queue instead of the database, for the tools that read
what APEL's SSM receiver writes.

``ssm`` (the default): as SSM's receiver, into ``DIR/incoming`` (dirq ``Queue``, SSM's
schema: the body, the verified signer DN, the ``empa-id`` header) and refused messages
into ``DIR/reject`` with the error, so APEL's loader (``msgpath = DIR``) reads them; a
message whose ``empa-id`` is ``ping`` is acknowledged and left out, as SSM's receiver
does. ``simple``: each body as one ``QueueSimple`` element in ``DIR``, refused ones in
``DIR.rejected`` with the reason in the first line.

Bodies are written as they came (decrypted and verified when configured), never
decoded nor rewritten; each batch is acknowledged to the broker once written (at
least once: a redelivery after a crash writes it again, as with SSM's receiver).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from msgbus.errors import ConfigError, StoreError
from msgbus.stomp.headers import EMPAID_HEADER
from msgbus.store.database import DeadLetter, RawMessage, StoredMessage, WriteResult
from msgbus.store.dirq import (
    SSM_REJECT_SCHEMA,
    SSM_SCHEMA,
    DirqFormat,
    layout_of,
    open_queue,
    open_schema_queue,
)
from msgbus.store.ledger import LedgerBatch

__all__ = ["DirqSink"]

# What SSM's receiver writes without a signer or an empa-id header. The empaid field
# is optional in the schema, but APEL's loader reads data['empaid'] unconditionally.
_NO_SIGNER = "Not available."
_NO_EMPAID = "noid"
# SSM's receiver drops a message with this empa-id unread (a keep-alive of older senders).
_PING = "ping"


class DirqSink:
    """Where a Consumer writes when given ``--dirq DIR`` (the Store's writing side)."""

    opaque = True

    def __init__(self, path: Path, fmt: DirqFormat = "ssm") -> None:
        self.path = path
        self.format = fmt
        self.display_url = f"dirq:{path}"
        self._queue: Any
        self._rejected: Any
        if fmt == "ssm":
            if layout_of(path) in ("queue", "simple"):
                raise ConfigError(
                    f"{path} is itself a directory queue; --dirq takes the directory that "
                    "holds incoming/ and reject/ (SSM's messaging path, APEL's msgpath), or "
                    "--dirq-format simple for a QueueSimple"
                )
            self._queue = open_schema_queue(path / "incoming", SSM_SCHEMA)
            self._rejected = open_schema_queue(path / "reject", SSM_REJECT_SCHEMA)
        else:
            self._queue = open_queue(path)
            self._rejected = open_queue(Path(f"{path}.rejected"))

    def check(self) -> None:
        """Nothing to migrate: the directories were made when opened."""

    def close(self) -> None:
        """Nothing held open."""

    def write(
        self,
        messages: Sequence[StoredMessage],
        dead: Sequence[DeadLetter] = (),
        *,
        foreign: Sequence[RawMessage] = (),
        received_at: datetime | None = None,
        ledger: LedgerBatch | None = None,
    ) -> WriteResult:
        """Add each body as an element; ``messages`` stay empty (this sink is opaque)
        and the ledger has no place here."""
        result = WriteResult()
        try:
            for item in foreign:
                if self._ping(item.headers):
                    result.ignored += 1
                elif self._add(item):
                    result.stored += 1
                else:
                    result.dead_lettered += 1
            for letter in dead:  # an unsigned ping is refused by verification: still a ping
                if self._ping(letter.headers):
                    result.ignored += 1
                    continue
                self._reject(letter.body, letter.signer, letter.headers, letter.reason)
                result.dead_lettered += 1
        except OSError as exc:
            raise StoreError(
                f"cannot write to the directory queue {self.path}: {exc}; check its "
                "permissions and free space (nothing of this batch was acknowledged)"
            ) from None
        return result

    def _ping(self, headers: Mapping[str, str]) -> bool:
        return self.format == "ssm" and headers.get(EMPAID_HEADER) == _PING

    def _add(self, item: RawMessage) -> bool:
        """Add one body; False when it went to the reject queue instead."""
        if self.format == "simple":
            self._queue.add(item.body)
            return True
        try:
            text = item.body.decode("utf-8")
        except UnicodeDecodeError:
            reason = "the body is not UTF-8 text, which SSM's queue schema needs"
            self._reject(item.body, item.signer, item.headers, reason)
            return False
        self._queue.add(
            {
                "body": text,
                "signer": item.signer or _NO_SIGNER,
                "empaid": item.headers.get(EMPAID_HEADER, _NO_EMPAID),
            }
        )
        return True

    def _reject(
        self, body: bytes, signer: str | None, headers: Mapping[str, str], reason: str
    ) -> None:
        if self.format == "simple":
            self._rejected.add(reason.encode() + b"\n" + body)
            return
        self._rejected.add(
            {
                # SSM's reject schema holds text; an undecodable body is kept escaped.
                "body": body.decode("utf-8", "backslashreplace"),
                "signer": signer or _NO_SIGNER,
                "empaid": headers.get(EMPAID_HEADER, _NO_EMPAID),
                "error": reason,
            }
        )
