"""Planned visits kept across plan versions (``planned_visits``), so reports and billing of a
past period still see the visits a later plan no longer lists; filled from every stored
plan version in order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "planned_visits",
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("visit_id", sa.Text, nullable=False),
        sa.Column("service_user_id", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("start_local", sa.Text, nullable=False),
        sa.Column("visit", sa.Text, nullable=False),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("removed_at", sa.Text),
        sa.PrimaryKeyConstraint("gateway_id", "visit_id", name="pk_planned_visits"),
    )
    op.create_index("planned_visits_day", "planned_visits", ["day", "gateway_id"])
    from central.plans.history import record_planned_visits  # the store's own rule

    bind = op.get_bind()
    plans = sa.table("plans", sa.column("gateway_id"), sa.column("version"),
                     sa.column("document"), sa.column("created_at"))
    for row in bind.execute(sa.select(plans.c.gateway_id, plans.c.version, plans.c.document,
                                      plans.c.created_at)
                            .order_by(plans.c.gateway_id, plans.c.version)):
        record_planned_visits(bind, row.gateway_id, int(row.version), row.document,
                              row.created_at)


def downgrade() -> None:
    op.drop_index("planned_visits_day", table_name="planned_visits")
    op.drop_table("planned_visits")
