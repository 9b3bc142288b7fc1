"""Manual adjustments to attendances: a coordinator's correction with a reason code, kept
beside the original (never overwriting it).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attendance_adjustments",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("visit_id", sa.Text, nullable=False),
        sa.Column("carer_id", sa.Text, nullable=False),
        sa.Column("arrived_at", sa.Text, nullable=False),
        sa.Column("departed_at", sa.Text, nullable=False),
        sa.Column("original_arrived_at", sa.Text),
        sa.Column("original_departed_at", sa.Text),
        sa.Column("reason_code", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("made_by", sa.Text, nullable=False),
        sa.Column("made_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attendance_adjustments"),
        sqlite_autoincrement=True,
    )
    op.create_index("attendance_adjustments_visit", "attendance_adjustments",
                    ["gateway_id", "visit_id"])


def downgrade() -> None:
    op.drop_table("attendance_adjustments")
