"""The relational store: batches of messages and dead letters, one transaction each.

Duplicates (redeliveries, publisher retries) are dropped by their unique key
(``msg_id``, ``part``) with each database's native insert-or-skip, so concurrent
consumers racing on the same key cannot fail a batch; the rows the database reports
inserted give the stored and duplicate counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from msgbus.errors import ConfigError, StoreError, StoreUnavailable
from msgbus.schema.models import Message
from msgbus.schema.registry import MESSAGE_TYPES
from msgbus.store import migrate
from msgbus.store.insert import insert_rows
from msgbus.store.ledger import LedgerBatch
from msgbus.store.ledger import apply as apply_ledger
from msgbus.store.tables import (
    KEY_COLUMNS,
    TEXT_LENGTH,
    dead_letters,
    foreign_messages,
    key_column_name,
    table_for,
)
from msgbus.store.timeouts import connect_args, cut_connection

__all__ = [
    "DEFAULT_STORE_URL",
    "DeadLetter",
    "RawMessage",
    "Store",
    "StoreUnavailable",
    "StoredMessage",
    "WriteResult",
    "dedup_key",
    "message_row",
    "store_errors",
]

log = logging.getLogger(__name__)

DEFAULT_STORE_URL = "sqlite:///msgbus.db"
_REASON_CHARS = 4000


def dedup_key(message_id: str) -> str:
    """``message_id`` as a ``msg_id`` column value: ids too long for the column are hashed."""
    if len(message_id) <= TEXT_LENGTH:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()


# Not frozen: one is made per consumed message, and a frozen dataclass's __init__ costs
# two and a half times as much (measured).
@dataclass(slots=True)
class StoredMessage:
    """A valid message and its key: the publisher's id and its 1-based place in the body."""

    msg_id: str
    part: int
    message: Message


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that cannot be stored, kept with its headers, raw body and the reason
    (the verified content instead of the raw body when only its signer was refused, as
    SSM's receiver keeps it, so that it can be reloaded once the signer is allowed)."""

    msg_id: str
    part: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    destination: str | None = None
    signer: str | None = None
    """The verified signer, when the signature was sound but the signer not allowed."""


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A body kept as it came (decrypted and its signature checked, if configured): a
    foreign payload for ``foreign_messages``, or any body for a directory queue."""

    msg_id: str
    headers: Mapping[str, str]
    body: bytes
    signer: str | None = None
    """The verified S/MIME signer DN (slash notation)."""
    destination: str | None = None


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    """Messages stored, foreign ones included."""
    duplicates: int = 0
    dead_lettered: int = 0
    ignored: int = 0
    """SSM pings (``empa-id: ping``) a directory queue leaves out, as SSM's receiver does."""
    per_type: dict[str, int] = field(default_factory=dict)

    def add(self, other: WriteResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.ignored += other.ignored
        for name, n in other.per_type.items():
            self.per_type[name] = self.per_type.get(name, 0) + n


def _cut(value: object) -> str | None:
    # Slicing a short str returns it unchanged, so this costs little on the hot path.
    return None if value is None else str(value)[:TEXT_LENGTH]


_KEY_COLUMN = {name: key_column_name(model) for name, model in MESSAGE_TYPES.items()}


def message_row(item: StoredMessage, received_at: datetime) -> dict[str, Any]:
    """The row of ``item`` in its type's table."""
    message = item.message
    values = message.index_values()
    return {
        "msg_id": item.msg_id,
        "part": item.part,
        "site": _cut(values["site"]),
        "host": _cut(values["host"]),
        _KEY_COLUMN[message.message_class]: _cut(values["key"]),
        "status": values["status"],
        "timestamp": values["timestamp"],
        "received_at": received_at,
        # What model_dump_json() returns, without its Python wrapper (a sixth of the cost).
        "message": message.__pydantic_serializer__.to_json(message).decode(),
    }


def _dead_row(item: DeadLetter, received_at: datetime) -> dict[str, Any]:
    return {
        "msg_id": item.msg_id,
        "part": item.part,
        "destination": _cut(item.destination),
        "reason": item.reason[:_REASON_CHARS],
        "headers": json.dumps(dict(item.headers), ensure_ascii=False),
        "body": item.body,
        "received_at": received_at,
    }


def _foreign_row(item: RawMessage, received_at: datetime) -> dict[str, Any]:
    return {
        "msg_id": item.msg_id,
        "part": 0,
        "destination": _cut(item.destination),
        "signer": _cut(item.signer),
        "headers": json.dumps(dict(item.headers), ensure_ascii=False),
        "body": item.body,
        "received_at": received_at,
    }


def _driver_hint(url: str, exc: BaseException) -> str:
    scheme = url.split(":", 1)[0]
    extra = {"postgresql": "postgres", "mysql": "mysql", "oracle": "oracle"}.get(
        scheme.split("+", 1)[0]
    )
    hint = f"pip install 'msgbus[{extra}]'" if extra else "install the database driver"
    return f"the driver for {scheme} is not installed ({exc}); {hint}"


def _redact(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return url


class Store:
    """Writes batches into the store at ``url`` (any SQLAlchemy URL: SQLite, PostgreSQL
    with psycopg 3, MariaDB/MySQL with PyMySQL, Oracle with oracledb or cx_Oracle)."""

    opaque = False
    """Messages are decoded into their tables (see Consumer's Sink)."""

    def __init__(
        self,
        url: str = DEFAULT_STORE_URL,
        *,
        connect_timeout: float = 10.0,
        statement_timeout: float = 30.0,
        on_stall: Callable[[], None] | None = None,
    ) -> None:
        """``on_stall`` is called (on a timer thread) when a write outlives
        ``statement_timeout``, before its connection is cut."""
        self.url = url
        self.display_url = _redact(url)
        self.statement_timeout = statement_timeout
        self.on_stall = on_stall
        try:
            self.engine = sa.create_engine(
                url,
                pool_pre_ping=True,
                connect_args=connect_args(url, connect_timeout, statement_timeout),
            )
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
            raise ConfigError(
                f"invalid store URL {self.display_url!r}: {exc}; expected e.g. "
                "sqlite:///msgbus.db or postgresql+psycopg://user@host/db"
            ) from None
        except ImportError as exc:
            raise ConfigError(_driver_hint(url, exc)) from None
        self.dialect = self.engine.dialect.name
        # Every driver connection this engine holds, so that a stall can be cut wherever
        # it hangs, the pool's pre-ping at checkout included (no Connection exists yet).
        # Keyed by id: sqlite3 connections take no weak references.
        self._driver_connections: dict[int, Any] = {}
        pool = self.engine.pool
        sa.event.listen(pool, "connect", self._opened)
        sa.event.listen(pool, "close", self._closed)
        sa.event.listen(pool, "close_detached", self._closed)

    def _opened(self, dbapi_connection: Any, _record: Any) -> None:
        self._driver_connections[id(dbapi_connection)] = dbapi_connection

    def _closed(self, dbapi_connection: Any, _record: Any = None) -> None:
        self._driver_connections.pop(id(dbapi_connection), None)

    def __repr__(self) -> str:
        return f"<Store {self.display_url}>"

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------

    def init(self) -> str:
        """Create or migrate the tables; returns the revision the store is now at."""
        with self.errors("migrating the store"), self.engine.begin() as conn:
            migrate.upgrade(conn)
            revision = migrate.current_revision(conn)
        return revision or ""

    def check(self) -> None:
        """StoreError unless the tables exist at the current revision."""
        with self.errors("checking the store's schema"), self.engine.connect() as conn:
            current = migrate.current_revision(conn)
        head = migrate.HEAD_REVISION
        if current != head:
            state = "has no msgbus tables" if current is None else f"is at revision {current}"
            raise StoreError(
                f"the store {self.display_url} {state}, this msgbus needs {head}; run "
                f"`msgbus db init --store {self.display_url}`"
            )

    # -- writing ------------------------------------------------------------------

    def write(
        self,
        messages: Sequence[StoredMessage],
        dead: Sequence[DeadLetter] = (),
        *,
        foreign: Sequence[RawMessage] = (),
        received_at: datetime | None = None,
        ledger: LedgerBatch | None = None,
    ) -> WriteResult:
        """Insert a batch in one transaction, skipping keys already stored, and account
        for it in the completeness ledger (``ledger``, see msgbus.store.ledger).
        ``foreign`` bodies go to ``foreign_messages`` unmodified.

        Raises StoreUnavailable when the database cannot be reached (retry later) and
        StoreError for anything else; nothing of the batch is stored then.
        """
        now = received_at or datetime.now(timezone.utc)
        by_table: dict[str, list[dict[str, Any]]] = {}
        for item in messages:
            by_table.setdefault(item.message.message_class, []).append(message_row(item, now))
        result = WriteResult()
        with self.errors("writing a batch"), self._watched(), self.engine.begin() as conn:
            for message_class, rows in by_table.items():
                fresh = self._insert_fresh(conn, table_for(message_class), rows)
                result.stored += fresh
                result.duplicates += len(rows) - fresh
                result.per_type[message_class] = fresh
            if foreign:
                rows = [_foreign_row(item, now) for item in foreign]
                fresh = self._insert_fresh(conn, foreign_messages, rows)
                result.stored += fresh
                result.duplicates += len(rows) - fresh
                result.per_type["foreign"] = fresh
            if dead:
                rows = [_dead_row(item, now) for item in dead]
                result.dead_lettered = self._insert_fresh(conn, dead_letters, rows)
            if ledger:
                apply_ledger(conn, ledger, now)
        return result

    @staticmethod
    def _insert_fresh(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
        unique: dict[tuple[str, int], dict[str, Any]] = {}
        for row in rows:
            unique.setdefault((row["msg_id"], row["part"]), row)  # first of repeats in a batch
        return insert_rows(conn, table, KEY_COLUMNS, list(unique.values()))

    @contextlib.contextmanager
    def _watched(self) -> Iterator[None]:
        """Cut this store's connections if the block outlives statement_timeout (see
        store.timeouts). All of them: the path to the database is what hangs, and an
        idle one would only hang the next pre-ping."""
        started = time.monotonic()

        def stalled() -> None:
            log.warning(
                "store: a batch write has waited %.0f s on %s; the database may be stalled: "
                "cutting the connection, the batch is retried (nothing acked meanwhile)",
                time.monotonic() - started,
                self.display_url,
            )
            if self.on_stall is not None:
                self.on_stall()
            for driver_connection in list(self._driver_connections.values()):
                cut_connection(driver_connection)

        timer = threading.Timer(self.statement_timeout, stalled)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        """A block whose database errors become StoreError / StoreUnavailable."""
        return store_errors(self.display_url, doing)


@contextlib.contextmanager
def store_errors(url: str, doing: str) -> Iterator[None]:
    """Map SQLAlchemy and driver errors to StoreUnavailable / StoreError at this boundary."""
    try:
        yield
    except StoreError:
        raise
    except sa_exc.OperationalError as exc:
        # SQLite reports a missing table as an OperationalError; nothing to retry there.
        if "no such table" in str(exc.orig):
            raise StoreError(
                f"the store {url} refused {doing}: {_first_line(exc)}; "
                f"run `msgbus db init --store {url}`"
            ) from None
        raise _unavailable(url, doing, exc) from None
    except (
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
    ) as exc:
        raise _unavailable(url, doing, exc) from None
    except sa_exc.ProgrammingError as exc:
        raise StoreError(
            f"the store {url} refused {doing}: {_first_line(exc)}; if tables are missing, "
            f"run `msgbus db init --store {url}`"
        ) from None
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"the store {url} failed {doing}: {_first_line(exc)}") from None
    except ImportError as exc:
        raise ConfigError(_driver_hint(url, exc)) from None


def _unavailable(url: str, doing: str, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"the store {url} is unavailable while {doing}: {_first_line(exc)}; "
        "check that the database is running and reachable"
    )


def _first_line(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
