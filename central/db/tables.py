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
    # supervision: since when central counts it offline, and the last status that said
    # "clock good, nothing queued" (every alert it raised before then has reached central)
    sa.Column("offline_since", sa.Text),
    sa.Column("caught_up_at", sa.Text),
    # when an online gateway counts as offline if nothing more is heard (three heartbeats
    # after its last status; fixed-width UTC text, so it sorts) and whether its last status
    # said its clock is good: supervision reads only the gateways that are due or need backup
    sa.Column("offline_deadline", sa.Text),
    sa.Column("clock_ok", sa.Boolean),
    sa.Index("gateways_due", "state", "offline_deadline"),
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

#: Every visit ever planned, one row per (gateway, visit id) as its latest plan version
#: describes it (``visit`` is the plan's JSON of it): what reports and billing count. A new
#: plan version updates the visits it lists; a visit it no longer lists is kept if it was
#: already due (it happened, or was missed) and marked ``removed_at`` if it was still to
#: come (taken out of the plan).
planned_visits = sa.Table(
    "planned_visits", metadata,
    sa.Column("gateway_id", sa.Text, primary_key=True),
    sa.Column("visit_id", sa.Text, primary_key=True),
    sa.Column("service_user_id", sa.Text, nullable=False),
    sa.Column("day", sa.Text, nullable=False),  # local date of the planned start
    sa.Column("start_local", sa.Text, nullable=False),
    sa.Column("visit", sa.Text, nullable=False),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("removed_at", sa.Text),
    sa.Index("planned_visits_day", "day", "gateway_id"),
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
    sa.Column("event_seq", sa.BigInteger),  # NULL for an alert central raised itself
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
    # one alert per (gateway, visit, type, sub): which side raised it first, when central
    # first stored it (when staff could see it), and the other side's raise, if any (JSON)
    sa.Column("raised_by", sa.Text, nullable=False, server_default="gateway"),
    sa.Column("received_at", sa.Text),
    sa.Column("dedupe_key", sa.Text),
    sa.Column("other_raise", sa.Text),
    # the lifecycle (central/alerts/lifecycle.py): who took it, tier, outcome
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("acknowledged_at", sa.Text),
    sa.Column("tier", sa.Text, nullable=False, server_default="desk"),
    sa.Column("tier_since", sa.Text),
    sa.Column("escalations", sa.Integer, nullable=False, server_default="0"),
    sa.Column("outcome", sa.Text),
    sa.Column("outcome_note", sa.Text),
    sa.Column("resolved_by", sa.Text),
    sa.Column("resolved_at", sa.Text),
    sa.UniqueConstraint("gateway_id", "event_seq"),
    sa.Index("alerts_dedupe", "gateway_id", "dedupe_key"),
    sa.Index("alerts_status", "status", "severity"),
    sa.Index("alerts_by_type", "type", "gateway_id", "raised_at"),
    sqlite_autoincrement=True,
)

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("alert_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.Column("signed_off_by", sa.Text),
    sa.Column("signed_off_at", sa.Text),
)

checklist_ticks = sa.Table(
    "checklist_ticks", metadata,
    sa.Column("alert_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("step", sa.Text, primary_key=True),
    sa.Column("ticked_at", sa.Text, nullable=False),
    sa.Column("ticked_by", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)

escalations = sa.Table(
    "escalations", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.BigInteger, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("from_tier", sa.Text, nullable=False),
    sa.Column("to_tier", sa.Text, nullable=False),
    sa.Column("by", sa.Text, nullable=False),
    sa.Index("escalations_alert", "alert_id"),
    sqlite_autoincrement=True,
)

webhook_subscriptions = sa.Table(
    "webhook_subscriptions", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False, server_default="raised,escalated"),
    sa.Column("active", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
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
    sa.Index("webhook_deliveries_due", "state", "next_attempt_at"),
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

#: Gap tombstones: seqs a gateway will never send (``dropped``: shed within its disk budget,
#: hashes at both ends kept; ``lost``: a damaged journal), one row per gap whatever its
#: length. The ack moves over a gap; a real event that turns up inside one is stored as
#: usual and counts as delivered, not as a gap seq.
event_gaps = sa.Table(
    "event_gaps", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("gateway_id", sa.Text, nullable=False),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("gap", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text),
    sa.Column("hash", sa.Text),
    # does first_seq link to the event stored before it (1/0; NULL: not known yet)
    sa.Column("chain_ok", sa.Integer),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
    sa.UniqueConstraint("gateway_id", "first_seq", "last_seq", "gap"),
    sa.Index("event_gaps_gateway_last", "gateway_id", "last_seq"),
    sqlite_autoincrement=True,
)

escalation_policies = sa.Table(
    "escalation_policies", metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),  # an EscalationPolicy as JSON
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)

enrolment_codes = sa.Table(
    "enrolment_codes", metadata,
    sa.Column("code_hash", sa.Text, primary_key=True),  # sha256 of the normalised code
    sa.Column("household_id", sa.Text, nullable=False),
    sa.Column("gateway_id", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Text, nullable=False),
    sa.Column("used_at", sa.Text),
)

gateway_certificates = sa.Table(
    "gateway_certificates", metadata,
    sa.Column("serial", sa.Text, primary_key=True),
    sa.Column("gateway_id", sa.Text, nullable=False),
    sa.Column("issued_at", sa.Text, nullable=False),
    sa.Column("not_after", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.Text),
    sa.Index("gateway_certificates_gateway", "gateway_id"),
)

commissioning_records = sa.Table(
    "commissioning_records", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("household_id", sa.Text, nullable=False),
    sa.Column("gateway_id", sa.Text, nullable=False),
    sa.Column("installer", sa.Text, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("passed", sa.Integer, nullable=False),
    sa.Column("record", sa.Text, nullable=False),  # the walk-test's record as JSON
    sa.Column("received_at", sa.Text, nullable=False),
    sa.Column("received_by", sa.Text, nullable=False),
    sa.Index("commissioning_household", "household_id"),
    sqlite_autoincrement=True,
)

attendance_adjustments = sa.Table(
    "attendance_adjustments", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("gateway_id", sa.Text, nullable=False),
    sa.Column("visit_id", sa.Text, nullable=False),
    sa.Column("carer_id", sa.Text, nullable=False),
    sa.Column("arrived_at", sa.Text, nullable=False),  # the corrected times
    sa.Column("departed_at", sa.Text, nullable=False),
    sa.Column("original_arrived_at", sa.Text),  # what the gateway recorded (kept)
    sa.Column("original_departed_at", sa.Text),
    sa.Column("reason_code", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("made_by", sa.Text, nullable=False),
    sa.Column("made_at", sa.Text, nullable=False),
    sa.Index("attendance_adjustments_visit", "gateway_id", "visit_id"),
    sqlite_autoincrement=True,
)
