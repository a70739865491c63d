"""Initial store: one table per message type and dead_letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

A migration is a frozen snapshot: it spells out the columns instead of importing
them, so later model changes need a new revision (tests/unit/store checks that the
migrated database matches msgbus.store.tables).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
_BINARY = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_MESSAGE_TABLES = (
    ("probe_results", "metric"),
    ("job_status_events", "job_id"),
    ("transfer_events", "transfer_id"),
)


def _common() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
            nullable=False,
        ),
        sa.Column("msg_id", sa.String(255), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    for table, key in _MESSAGE_TABLES:
        op.create_table(
            table,
            *_common(),
            sa.Column("site", sa.String(255)),
            sa.Column("host", sa.String(255)),
            sa.Column(key, sa.String(255), nullable=False),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("timestamp", sa.DateTime(), nullable=False),
            sa.Column("received_at", sa.DateTime(), nullable=False),
            sa.Column("message", _TEXT, nullable=False),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.UniqueConstraint("msg_id", "part", name=f"uq_{table}_msg_id_part"),
        )
        op.create_index(f"ix_{table}_site_{key}_timestamp", table, ["site", key, "timestamp"])
        op.create_index(f"ix_{table}_timestamp", table, ["timestamp"])
        op.create_index(f"ix_{table}_host", table, ["host"])
        op.create_index(f"ix_{table}_status", table, ["status"])
    op.create_table(
        "dead_letters",
        *_common(),
        sa.Column("destination", sa.String(255)),
        sa.Column("reason", _TEXT, nullable=False),
        sa.Column("headers", _TEXT, nullable=False),
        sa.Column("body", _BINARY, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint("msg_id", "part", name="uq_dead_letters_msg_id_part"),
    )
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    for table, _key in reversed(_MESSAGE_TABLES):
        op.drop_table(table)
