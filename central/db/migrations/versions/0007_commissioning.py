"""Commissioning records: each walk-test an installer ran in a home, kept on the household.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "commissioning_records",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("installer", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("received_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_commissioning_records"),
        sqlite_autoincrement=True,
    )
    op.create_index("commissioning_household", "commissioning_records", ["household_id"])


def downgrade() -> None:
    op.drop_table("commissioning_records")
