"""Retention: when a person's care ended (``service_users.care_ended_on``), from which their
call-monitoring data is kept for the retention period and then purged, and when that was
done (``erased_at``: the record stays as a stub with no personal details).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.add_column(sa.Column("care_ended_on", sa.Text))
        batch.add_column(sa.Column("erased_at", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("service_users") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("care_ended_on")
