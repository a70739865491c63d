"""STOMP transactions of a broker session: BEGIN opens one, the SENDs and ACKs that name
it wait in it (their receipts answered at once), COMMIT runs them all or, when a queue
has no room for all of its messages yet, holds the COMMIT (flow control); ABORT drops
them. Used as a base of ``Session``; a broken rule is a protocol error (ERROR, close).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from msgbus.broker.auth import Owner
from msgbus.broker.destinations import Router
from msgbus.errors import RemoteProtocolError
from msgbus.stomp.frames import Frame

__all__ = ["Transactions"]


class _Session(Protocol):
    """What a transaction uses of its session."""

    transactions: dict[str, list[Frame]]
    owner: Owner | None

    @property
    def router(self) -> Router: ...
    def _check_store(self) -> None: ...
    def _route(self, frame: Frame, *, admitted: bool = False) -> None: ...
    def _receipt(
        self, frame: Frame, durable: bool, then: Callable[[], None] | None = None
    ) -> None: ...
    def on_ack(self, frame: Frame) -> None: ...
    def on_nack(self, frame: Frame) -> None: ...


class Transactions:
    """The transaction frames of a session (``self.transactions``: id -> frames)."""

    def _in_transaction(self: _Session, frame: Frame) -> bool:
        """Buffer ``frame`` if it names a transaction (answering its receipt now)."""
        tx = frame.headers.get("transaction")
        if tx is None:
            return False
        if tx not in self.transactions:
            raise RemoteProtocolError(
                f"{frame.command} in unknown transaction {tx!r}: send BEGIN first"
            )
        self.transactions[tx].append(frame)
        self._receipt(frame, durable=False)
        return True

    def on_begin(self: _Session, frame: Frame) -> None:
        tx = _transaction_id(self, frame)
        if tx in self.transactions:
            raise RemoteProtocolError(f"transaction {tx!r} already begun")
        self.transactions[tx] = []
        self._receipt(frame, durable=False)

    def on_commit(self: _Session, frame: Frame) -> None:
        tx = _transaction_id(self, frame)
        frames = self.transactions[tx]
        sends = [f for f in frames if f.command == "SEND"]
        durable = any(f.headers.get("persistent") == "true" for f in sends)
        if durable:
            self._check_store()
        # Before the transaction is taken: a full queue holds the COMMIT (flow control).
        self.router.admit((f.headers.get("destination", "") for f in sends), self.owner)
        del self.transactions[tx]
        acks = {"ACK": self.on_ack, "NACK": self.on_nack}
        for buffered in frames:
            if buffered.command == "SEND":  # checked when buffered, and admitted above
                self._route(buffered, admitted=True)
                continue
            inner = {
                k: v for k, v in buffered.headers.items() if k not in ("transaction", "receipt")
            }
            acks[buffered.command](type(buffered)(inner, buffered.body))
        self._receipt(frame, durable=durable)

    def on_abort(self: _Session, frame: Frame) -> None:
        del self.transactions[_transaction_id(self, frame)]
        self._receipt(frame, durable=False)


def _transaction_id(session: _Session, frame: Frame) -> str:
    tx = frame.headers.get("transaction")
    if tx is None:
        raise RemoteProtocolError(f"{frame.command} without a transaction header")
    if frame.command != "BEGIN" and tx not in session.transactions:
        raise RemoteProtocolError(f"{frame.command} of unknown transaction {tx!r}")
    return tx
