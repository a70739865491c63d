"""The store's tables, built from the schema registry.

One table per message type (``ProbeResult`` -> ``probe_results``) with the indexed
columns each model names in its ``index`` (site, host, key, status, timestamp), the
whole message as JSON, and a unique key on the publisher's message id plus the
message's position in its body (one STOMP body may carry several messages).
Rejected messages go to ``dead_letters``; bodies in no msgbus format (APEL records,
Avro, ...) to ``foreign_messages``, unmodified. Dashboards and reports query these names.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from msgbus.schema.models import Message
from msgbus.schema.registry import MESSAGE_TYPES

__all__ = [
    "KEY_COLUMNS",
    "LONG_BINARY",
    "LONG_TEXT",
    "TEXT_LENGTH",
    "UtcDateTime",
    "components",
    "dead_letters",
    "foreign_messages",
    "key_column_name",
    "ledger_gaps",
    "ledger_producers",
    "ledger_totals",
    "metadata",
    "table_for",
    "table_name",
]

TEXT_LENGTH = 255
"""Length of the indexed text columns; longer values are cut (the JSON keeps them whole)."""

KEY_COLUMNS = ("msg_id", "part")
"""The deduplication key of every table."""


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Stores UTC as a naive timestamp (portable: MariaDB has no time zones), returns aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        if value.tzinfo is not timezone.utc:  # models hold UTC already: skip the conversion
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


# MariaDB's TEXT and BLOB stop at 64 KiB; long detailsData and raw bodies need LONG*.
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
LONG_BINARY = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def table_name(model: type[Message]) -> str:
    """``ProbeResult`` -> ``probe_results``."""
    return _snake(model.message_class) + "s"


def key_column_name(model: type[Message]) -> str:
    """The column of a model's key field: ``metricName`` -> ``metric``, ``jobId`` -> ``job_id``."""
    return _snake(model.index.key.removesuffix("Name"))


def _id_column() -> sa.Column[int]:
    # BIGINT identity where supported; SQLite's rowid alias must be INTEGER.
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), primary_key=True
    )


def _dedup_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("msg_id", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
    ]


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _message_table(model: type[Message]) -> sa.Table:
    name = table_name(model)
    key = key_column_name(model)
    text = sa.String(TEXT_LENGTH)
    return sa.Table(
        name,
        metadata,
        _id_column(),
        *_dedup_columns(),
        sa.Column("site", text),
        sa.Column("host", text),
        sa.Column(key, text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("message", LONG_TEXT, nullable=False),
        sa.UniqueConstraint(*KEY_COLUMNS),
        # Latest per site+key and a key's history read this index in order.
        sa.Index(None, "site", key, "timestamp"),
        sa.Index(None, "timestamp"),
        sa.Index(None, "host"),
        sa.Index(None, "status"),
    )


_TABLES: dict[str, sa.Table] = {
    message_class: _message_table(model) for message_class, model in MESSAGE_TYPES.items()
}

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    _id_column(),
    *_dedup_columns(),
    sa.Column("destination", sa.String(TEXT_LENGTH)),
    sa.Column("reason", LONG_TEXT, nullable=False),
    sa.Column("headers", LONG_TEXT, nullable=False),
    sa.Column("body", LONG_BINARY, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint(*KEY_COLUMNS),
    sa.Index(None, "received_at"),
)

foreign_messages = sa.Table(
    "foreign_messages",
    metadata,
    _id_column(),
    *_dedup_columns(),
    sa.Column("destination", sa.String(TEXT_LENGTH)),
    # The verified S/MIME signer (slash notation), when the consumer checks signatures.
    sa.Column("signer", sa.String(TEXT_LENGTH)),
    sa.Column("headers", LONG_TEXT, nullable=False),
    sa.Column("body", LONG_BINARY, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint(*KEY_COLUMNS),
    sa.Index(None, "received_at"),
)


# The completeness ledger (msgbus.store.ledger): per producer and epoch, the highest
# number seen and the missing ranges, kept in the same transaction as the rows.
_PRODUCER = sa.String(64)
ledger_producers = sa.Table(
    "ledger_producers",
    metadata,
    sa.Column("producer", _PRODUCER, primary_key=True),
    sa.Column("epoch", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("site", sa.String(TEXT_LENGTH)),
    sa.Column("host", sa.String(TEXT_LENGTH)),
    sa.Column("destination", sa.String(TEXT_LENGTH)),
    sa.Column("high_water", sa.BigInteger(), nullable=False),
    sa.Column("received", sa.BigInteger(), nullable=False),
    sa.Column("missing", sa.BigInteger(), nullable=False),
    sa.Column("skipped", sa.BigInteger(), nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Column("last_sync", UtcDateTime()),
    sa.Index(None, "site"),
)
ledger_gaps = sa.Table(
    "ledger_gaps",
    metadata,
    sa.Column("producer", _PRODUCER, primary_key=True),
    sa.Column("epoch", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("first", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("last", sa.BigInteger(), nullable=False),
    sa.Column("detected_at", UtcDateTime(), nullable=False),
)
ledger_totals = sa.Table(
    "ledger_totals",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    # Messages from clients that do not number them (stomp.py, Perl, other tools).
    sa.Column("unsequenced", sa.BigInteger(), nullable=False),
)


# Central information (DIRAC-style): each component's last announcement or status
# answer, kept by `msgbus registry`, so its last known state outlives it.
components = sa.Table(
    "components",
    metadata,
    sa.Column("name", sa.String(TEXT_LENGTH), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("site", sa.String(TEXT_LENGTH)),
    sa.Column("host", sa.String(TEXT_LENGTH), nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("info", LONG_TEXT, nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Index(None, "kind"),
)


def table_for(message_class: str) -> sa.Table:
    """The table of a registered message type (KeyError for an unknown one)."""
    return _TABLES[message_class]
