"""Foreign payloads: bodies in no msgbus format (APEL records, Avro, any bytes), kept
unmodified with their headers and verified signer instead of dead-lettered.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "foreign_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
            nullable=False,
        ),
        sa.Column("msg_id", sa.String(255), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(255)),
        sa.Column("signer", sa.String(255)),
        sa.Column(
            "headers", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=False
        ),
        sa.Column(
            "body",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_foreign_messages"),
        sa.UniqueConstraint("msg_id", "part", name="uq_foreign_messages_msg_id_part"),
    )
    op.create_index("ix_foreign_messages_received_at", "foreign_messages", ["received_at"])


def downgrade() -> None:
    op.drop_table("foreign_messages")
