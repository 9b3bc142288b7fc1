"""The event record and what it adds up to: central's core tables.

``events`` is the record, one row per ``(gateway_id, seq)``; ``attendances``, ``alerts`` and
``gateways`` are projections kept up to date as events are stored; ``plans`` holds every
version of each gateway's plan; ``audit`` records who changed what; ``rejected_messages``
keeps what ingest refused, with the reason. Times are stored as ISO-8601 UTC text
(``2026-03-02T11:00:00Z``), which sorts and compares correctly on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa

from central.db.metadata import RowId, metadata

events = sa.Table(
    "events", metadata,
    sa.Column("gateway_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
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
    sa.Index("events_visit", "gateway_id", "visit_id"),
)

gateways = sa.Table(
    "gateways", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("contiguous_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("max_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("tag_salt", sa.Text, nullable=False),
    sa.Column("plan_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("state", sa.Text, nullable=False, server_default="unknown"),
    sa.Column("status", sa.Text),
    sa.Column("last_seen", sa.Text),
    sa.Column("chain_breaks", sa.Integer, nullable=False, server_default="0"),
)

plans = sa.Table(
    "plans", metadata,
    sa.Column("gateway_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("gateway_plan", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
)

attendances = sa.Table(
    "attendances", metadata,
    sa.Column("gateway_id", sa.Text, primary_key=True),
    sa.Column("visit_id", sa.Text, primary_key=True),
    sa.Column("carer_id", sa.Text, primary_key=True),
    sa.Column("arrived_at", sa.Text, primary_key=True),
    sa.Column("departed_at", sa.Text),
    sa.Column("arrival_seq", sa.BigInteger),
    sa.Column("departure_seq", sa.BigInteger),
    sa.Column("punctuality", sa.Text),
    sa.Column("minutes_outside_window", sa.Integer),
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
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
    sa.UniqueConstraint("gateway_id", "event_seq"),
    sqlite_autoincrement=True,
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("who", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    sqlite_autoincrement=True,
)

rejected_messages = sa.Table(
    "rejected_messages", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sqlite_autoincrement=True,
)

#: Two different events claimed one ``(gateway_id, seq)``: the stored one stays in
#: ``events``, each other claimant is kept here. While one is unresolved the gateway's ack
#: stays below ``seq``, so the gateway keeps its own copy.
event_conflicts = sa.Table(
    "event_conflicts", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("gateway_id", sa.Text, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
    sa.Column("resolved_at", sa.Text),
    sa.UniqueConstraint("gateway_id", "seq", "hash"),
    sqlite_autoincrement=True,
)
