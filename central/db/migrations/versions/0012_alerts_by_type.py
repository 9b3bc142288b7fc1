"""Alerts by type: an index on (type, gateway_id, raised_at), so supervision's one query for
every gateway's latest ``gateway_offline`` reads the index, not every alert ever raised.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("alerts_by_type", "alerts", ["type", "gateway_id", "raised_at"])


def downgrade() -> None:
    op.drop_index("alerts_by_type", table_name="alerts")
