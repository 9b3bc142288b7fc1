"""The alert desk: the alert lifecycle on each alert, one alert per (gateway, visit, type)
whichever side raised it, incident records, no-response checklist ticks, escalations, and
webhook subscriptions with their delivery log; on ``gateways``, the supervision state
(``offline_since``, ``caught_up_at``) that a central restart must not lose.

``alerts.event_seq`` becomes nullable: an alert central raised itself (backup detection,
gateway supervision) has no gateway seq. Existing alerts were all raised by a gateway
(``raised_by`` defaults to ``gateway``); their ``received_at`` is unknown and left NULL.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_ALERT_COLUMNS: tuple[tuple[str, type[sa.types.TypeEngine[Any]], dict[str, Any]], ...] = (
    ("raised_by", sa.Text, {"nullable": False, "server_default": "gateway"}),
    ("received_at", sa.Text, {}),
    ("dedupe_key", sa.Text, {}),
    ("other_raise", sa.Text, {}),
    ("acknowledged_by", sa.Text, {}),
    ("acknowledged_at", sa.Text, {}),
    ("tier", sa.Text, {"nullable": False, "server_default": "desk"}),
    ("tier_since", sa.Text, {}),
    ("escalations", sa.Integer, {"nullable": False, "server_default": "0"}),
    ("outcome", sa.Text, {}),
    ("outcome_note", sa.Text, {}),
    ("resolved_by", sa.Text, {}),
    ("resolved_at", sa.Text, {}),
)


def upgrade() -> None:
    # SQLite cannot alter a column's nullability in place: batch mode copies the table
    # (keeping AUTOINCREMENT, so alert ids are never reused).
    with op.batch_alter_table("alerts", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("event_seq", existing_type=sa.BigInteger, nullable=True)
        for name, type_, options in _ALERT_COLUMNS:
            batch.add_column(sa.Column(name, type_, **options))
    op.add_column("gateways", sa.Column("offline_since", sa.Text))
    op.add_column("gateways", sa.Column("caught_up_at", sa.Text))
    op.create_index("alerts_dedupe", "alerts", ["gateway_id", "dedupe_key"])
    op.create_index("alerts_status", "alerts", ["status", "severity"])
    op.create_table(
        "incidents",
        sa.Column("alert_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("signed_off_by", sa.Text),
        sa.Column("signed_off_at", sa.Text),
        sa.PrimaryKeyConstraint("alert_id", name="pk_incidents"),
    )
    op.create_table(
        "checklist_ticks",
        sa.Column("alert_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("ticked_at", sa.Text, nullable=False),
        sa.Column("ticked_by", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("alert_id", "step", name="pk_checklist_ticks"),
    )
    op.create_table(
        "escalations",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("from_tier", sa.Text, nullable=False),
        sa.Column("to_tier", sa.Text, nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("escalations_alert", "escalations", ["alert_id"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False, server_default="raised,escalated"),
        sa.Column("active", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.BigInteger, nullable=False),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("next_attempt_at", sa.Text),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("webhook_deliveries_due", "webhook_deliveries",
                    ["state", "next_attempt_at"])


def downgrade() -> None:
    for name in ("webhook_deliveries", "webhook_subscriptions", "escalations",
                 "checklist_ticks", "incidents"):
        op.drop_table(name)
    with op.batch_alter_table("gateways") as gateways_batch:
        gateways_batch.drop_column("caught_up_at")
        gateways_batch.drop_column("offline_since")
    op.drop_index("alerts_status", "alerts")
    op.drop_index("alerts_dedupe", "alerts")
    with op.batch_alter_table("alerts", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for name, _, _ in reversed(_ALERT_COLUMNS):
            batch.drop_column(name)
        batch.alter_column("event_seq", existing_type=sa.BigInteger, nullable=False)
