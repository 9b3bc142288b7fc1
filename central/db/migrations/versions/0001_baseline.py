"""Baseline: the event record, its projections, plans, audit and rejected messages.

A database made before migrations existed already has these tables (created by the old
store's ``CREATE TABLE IF NOT EXISTS``); they are kept as they are, with their rows, and only
missing tables are created, so such a database upgrades in place.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "events" not in existing:
        op.create_table(
            "events",
            sa.Column("gateway_id", sa.Text, nullable=False),
            sa.Column("seq", sa.BigInteger, nullable=False),
            sa.Column("id", sa.Text, nullable=False),
            sa.Column("type", sa.Text, nullable=False),
            sa.Column("time", sa.Text, nullable=False),
            sa.Column("severity", sa.Text),
            sa.Column("visit_id", sa.Text),
            sa.Column("service_user_id", sa.Text),
            sa.Column("carer_id", sa.Text),
            sa.Column("clock_ok", sa.Integer, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.Column("hash", sa.Text, nullable=False),
            sa.Column("prev_hash", sa.Text, nullable=False),
            sa.Column("chain_ok", sa.Integer),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("received_at", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("gateway_id", "seq", name="pk_events"),
        )
        op.create_index("events_visit", "events", ["gateway_id", "visit_id"])
    if "gateways" not in existing:
        op.create_table(
            "gateways",
            sa.Column("id", sa.Text, nullable=False),
            sa.Column("contiguous_seq", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("max_seq", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("tag_salt", sa.Text, nullable=False),
            sa.Column("plan_version", sa.Integer, nullable=False, server_default="0"),
            sa.Column("state", sa.Text, nullable=False, server_default="unknown"),
            sa.Column("status", sa.Text),
            sa.Column("last_seen", sa.Text),
            sa.Column("chain_breaks", sa.Integer, nullable=False, server_default="0"),
            sa.PrimaryKeyConstraint("id", name="pk_gateways"),
        )
    if "plans" not in existing:
        op.create_table(
            "plans",
            sa.Column("gateway_id", sa.Text, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("document", sa.Text, nullable=False),
            sa.Column("gateway_plan", sa.Text, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("created_by", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("gateway_id", "version", name="pk_plans"),
        )
    if "attendances" not in existing:
        op.create_table(
            "attendances",
            sa.Column("gateway_id", sa.Text, nullable=False),
            sa.Column("visit_id", sa.Text, nullable=False),
            sa.Column("carer_id", sa.Text, nullable=False),
            sa.Column("arrived_at", sa.Text, nullable=False),
            sa.Column("departed_at", sa.Text),
            sa.Column("arrival_seq", sa.BigInteger),
            sa.Column("departure_seq", sa.BigInteger),
            sa.Column("punctuality", sa.Text),
            sa.Column("minutes_outside_window", sa.Integer),
            sa.Column("data", sa.Text, nullable=False, server_default="{}"),
            sa.PrimaryKeyConstraint("gateway_id", "visit_id", "carer_id", "arrived_at",
                                    name="pk_attendances"),
        )
    if "alerts" not in existing:
        op.create_table(
            "alerts",
            sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
            sa.Column("gateway_id", sa.Text, nullable=False),
            sa.Column("event_seq", sa.BigInteger, nullable=False),
            sa.Column("type", sa.Text, nullable=False),
            sa.Column("severity", sa.Text, nullable=False),
            sa.Column("visit_id", sa.Text),
            sa.Column("service_user_id", sa.Text),
            sa.Column("carer_id", sa.Text),
            sa.Column("raised_at", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False, server_default="open"),
            sa.Column("superseded_by", sa.BigInteger),
            sa.Column("data", sa.Text, nullable=False, server_default="{}"),
            sa.Column("updated_at", sa.Text),
            sa.Column("updated_by", sa.Text),
            sa.UniqueConstraint("gateway_id", "event_seq",
                                name="uq_alerts_gateway_id_event_seq"),
            sqlite_autoincrement=True,
        )
    if "audit" not in existing:
        op.create_table(
            "audit",
            sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
            sa.Column("at", sa.Text, nullable=False),
            sa.Column("who", sa.Text, nullable=False),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
            sqlite_autoincrement=True,
        )
    if "rejected_messages" not in existing:
        op.create_table(
            "rejected_messages",
            sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
            sa.Column("received_at", sa.Text, nullable=False),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("payload", sa.LargeBinary, nullable=False),
            sqlite_autoincrement=True,
        )


def downgrade() -> None:
    for name in ("rejected_messages", "audit", "alerts", "attendances", "plans", "gateways",
                 "events"):
        op.drop_table(name)
