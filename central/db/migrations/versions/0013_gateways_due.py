"""Gateways due for supervision: ``offline_deadline`` (when an online gateway counts as
offline if nothing more is heard) and ``clock_ok`` (its last status said its clock is good),
written with each status, and an index on (state, offline_deadline). Supervision then reads
only the gateways that are due or need central's backup, not all of them on every run.
Existing rows start empty, which counts as due: the next status fills them in.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateways") as batch:
        batch.add_column(sa.Column("offline_deadline", sa.Text))
        batch.add_column(sa.Column("clock_ok", sa.Boolean))
    op.create_index("gateways_due", "gateways", ["state", "offline_deadline"])


def downgrade() -> None:
    op.drop_index("gateways_due", table_name="gateways")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("clock_ok")
        batch.drop_column("offline_deadline")
