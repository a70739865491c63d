"""The completeness ledger: producers' numbering, missing ranges, unsequenced count.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_producers",
        sa.Column("producer", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("site", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("destination", sa.String(255)),
        sa.Column("high_water", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("missing", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("last_sync", sa.DateTime()),
        sa.PrimaryKeyConstraint("producer", "epoch", name="pk_ledger_producers"),
    )
    op.create_index("ix_ledger_producers_site", "ledger_producers", ["site"])
    op.create_table(
        "ledger_gaps",
        sa.Column("producer", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("producer", "epoch", "first", name="pk_ledger_gaps"),
    )
    totals = op.create_table(
        "ledger_totals",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("unsequenced", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_totals"),
    )
    op.bulk_insert(totals, [{"id": 1, "unsequenced": 0}])


def downgrade() -> None:
    op.drop_table("ledger_totals")
    op.drop_table("ledger_gaps")
    op.drop_table("ledger_producers")
