"""Ingest hardening: ``event_conflicts`` (two different events claiming one seq are both
kept and the ack stays below them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_conflicts",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("resolved_at", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_event_conflicts"),
        sa.UniqueConstraint("gateway_id", "seq", "hash",
                            name="uq_event_conflicts_gateway_id_seq_hash"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("event_conflicts")
