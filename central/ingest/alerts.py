"""Alert rows: raising an alert once per (gateway, visit, type), and every lifecycle move
applied to a stored alert with its audit entry, inside the caller's transaction.

This module owns the bridge between the ``alerts`` table and the pure lifecycle
(:mod:`central.alerts.lifecycle`) and dedupe rule (:mod:`central.supervision.dedupe`):
:func:`dedupe_key` (the key a raise is merged on), :func:`raise_alert` (store a raise by the
gateway or by central: the first raise creates the row, with ``raised_by`` that side and
``received_at`` central's clock; a raise by the other side is recorded on it; the same side
again changes nothing), :func:`record_of` (a row as an
:class:`~central.alerts.lifecycle.AlertRecord`), :func:`move` (check a move with
:func:`~central.alerts.lifecycle.apply`, write the new state and the audit entry) and
:func:`auto_resolve_for_event` (the alerts an event clears, e.g. ``visit_late`` on arrival).
Every function takes an open connection: ingest calls them inside the batch's transaction,
so an event and what it clears commit together, before the ack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from central.alerts.actors import SYSTEM, Actor
from central.alerts.lifecycle import (
    CLOSED_STATES,
    AlertRecord,
    AuditEntry,
    AutoResolve,
    AutoResolveReason,
    Command,
    apply,
)
from central.alerts.outcomes import OutcomeCatalogue
from central.db.tables import (
    alerts,
    audit,
    escalations,
    webhook_deliveries,
    webhook_subscriptions,
)
from central.notify.webhooks import (
    AlertNotification,
    NotificationEvent,
    NotifiedAlert,
    body_bytes,
)
from central.people.tables import households
from central.supervision.dedupe import PER_CARER_TYPES
from homecall.clock import format_utc, parse_utc

Side = Literal["gateway", "central"]
RaiseResult = Literal["created", "recorded", "duplicate"]

#: Alert types central may raise itself while it covers a gateway that cannot (backup), and
#: that the gateway's own later events can show were raised in error.
BACKUP_TYPES = frozenset({"visit_late", "visit_missed", "departure_missing",
                          "double_up_incomplete"})


#: Lifecycle action -> the audit trail's action name (``alert.<name>``).
AUDIT_ACTION: dict[str, str] = {
    "acknowledge": "acknowledged", "escalate": "escalated", "resolve": "resolved",
    "auto_resolve": "auto_resolved", "supersede": "superseded", "reopen": "reopened",
}


def dedupe_key(alert_type: str, visit_id: str | None, carer_id: str | None) -> str | None:
    """``visit:type[:carer]`` for a visit's alert; ``None`` (no merging) for an alert that
    belongs to no visit (a sensor or device alert: each raise is its own alert)."""
    if not visit_id:
        return None
    sub = (carer_id or "") if alert_type in PER_CARER_TYPES else ""
    return f"{visit_id}:{alert_type}:{sub}"


@dataclass(frozen=True, slots=True)
class Raise:
    """One side's raise of an alert, as storage needs it."""

    side: Side
    gateway_id: str
    type: str
    severity: str
    raised_at: datetime  # the alert's own time (the deadline, for a time-based alert)
    visit_id: str | None = None
    service_user_id: str | None = None
    carer_id: str | None = None
    event_seq: int | None = None  # the gateway's seq (gateway raises only)
    data: dict[str, Any] | None = None


def write_audit(conn: Connection, now: datetime, who: str, action: str, target: str,
                detail: dict[str, Any]) -> None:
    conn.execute(sa.insert(audit).values(
        at=format_utc(now), who=who, action=action, target=target, detail=json.dumps(detail)))


def raise_alert(conn: Connection, raise_: Raise, received_at: datetime) -> tuple[int, RaiseResult]:
    """Store one raise under the dedupe rule; returns the alert id and what happened."""
    key = dedupe_key(raise_.type, raise_.visit_id, raise_.carer_id)
    existing = None
    if key is not None:
        existing = conn.execute(
            sa.select(alerts.c.id, alerts.c.raised_by, alerts.c.other_raise,
                      alerts.c.event_seq)
            .where(alerts.c.gateway_id == raise_.gateway_id, alerts.c.dedupe_key == key)
            .order_by(alerts.c.id).limit(1)
        ).first()
    if existing is not None:
        if existing.raised_by == raise_.side or existing.other_raise is not None:
            return int(existing.id), "duplicate"
        other = {"side": raise_.side, "raised_at": format_utc(raise_.raised_at),
                 "received_at": format_utc(received_at), "event_seq": raise_.event_seq}
        values: dict[str, Any] = {"other_raise": json.dumps(other)}
        if existing.event_seq is None and raise_.event_seq is not None:
            values["event_seq"] = raise_.event_seq  # link the gateway's own event
        conn.execute(sa.update(alerts).where(alerts.c.id == existing.id).values(**values))
        write_audit(conn, received_at, SYSTEM.user_id, "alert.raised_again",
                    f"alert:{existing.id}", other)
        return int(existing.id), "recorded"
    alert_id = conn.execute(
        sa.insert(alerts).values(**_alert_values(raise_, received_at, key))
        .returning(alerts.c.id)
    ).scalar_one()
    enqueue_webhooks(conn, int(alert_id), "alert.raised", received_at)
    return int(alert_id), "created"


class SensorAlertBatch:
    """Alerts of one ingest batch that belong to no visit (a sensor, device or unknown-tag
    alert: never merged with another raise) and that no webhook subscription will hear of:
    inserted together by :meth:`flush`, one statement, instead of one round trip each.

    Whether a gateway's organisation has an active subscription is read once per batch.
    The caller flushes before anything in the batch reads alerts (an event that may
    auto-resolve one) and before its transaction commits, so the rows are there exactly when
    they would have been had each been inserted on its own."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._heard: dict[str, bool] = {}  # gateway -> its organisation has subscriptions

    def prefetch(self, conn: Connection, gateway_ids: list[str]) -> None:
        """Read for all of ``gateway_ids`` at once whether anyone subscribes to their
        alerts (one query, not one per gateway)."""
        wanted = sorted(set(gateway_ids) - set(self._heard))
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start:start + 1000]
            heard = {row.gateway_id for row in conn.execute(
                sa.select(households.c.gateway_id).distinct()
                .join(webhook_subscriptions,
                      households.c.organisation_id == webhook_subscriptions.c.organisation_id)
                .where(households.c.gateway_id.in_(chunk), webhook_subscriptions.c.active == 1))}
            self._heard.update((gateway_id, gateway_id in heard) for gateway_id in chunk)

    def take(self, conn: Connection, raise_: Raise, received_at: datetime) -> bool:
        """Keep ``raise_`` for :meth:`flush` if it qualifies (True), else leave it (False)."""
        if dedupe_key(raise_.type, raise_.visit_id, raise_.carer_id) is not None:
            return False
        if raise_.gateway_id not in self._heard:
            self.prefetch(conn, [raise_.gateway_id])
        if self._heard[raise_.gateway_id]:
            return False
        self._rows.append(_alert_values(raise_, received_at, None))
        return True

    def flush(self, conn: Connection) -> int:
        """Insert what was kept; returns how many."""
        rows, self._rows = self._rows, []
        if rows:
            conn.execute(sa.insert(alerts), rows)
        return len(rows)


def _alert_values(raise_: Raise, received_at: datetime, key: str | None) -> dict[str, Any]:
    return {
        "gateway_id": raise_.gateway_id, "event_seq": raise_.event_seq, "type": raise_.type,
        "severity": raise_.severity, "visit_id": raise_.visit_id,
        "service_user_id": raise_.service_user_id, "carer_id": raise_.carer_id,
        "raised_at": format_utc(raise_.raised_at), "data": json.dumps(raise_.data or {}),
        "raised_by": raise_.side, "received_at": format_utc(received_at), "dedupe_key": key,
        # it waits for someone from when staff could first see it (escalation clock)
        "tier_since": format_utc(received_at),
    }


def enqueue_webhooks(conn: Connection, alert_id: int, event: NotificationEvent,
                     now: datetime) -> int:
    """Queue one delivery per active subscription for ``event`` on the alert (in the
    caller's transaction, so a notification exists exactly when the change does). The body
    is built now and kept: every retry sends the same bytes and delivery id."""
    # Only the organisation whose household the gateway is in hears about its alerts: its
    # active subscriptions, in one query (most alerts have none to go to, and ingest raises
    # alerts inside its batch transaction, where every round trip counts).
    subscriptions = conn.execute(
        sa.select(webhook_subscriptions.c.id, webhook_subscriptions.c.organisation_id,
                  webhook_subscriptions.c.events)
        .join(households, households.c.organisation_id == webhook_subscriptions.c.organisation_id)
        .join(alerts, alerts.c.gateway_id == households.c.gateway_id)
        .where(alerts.c.id == alert_id, webhook_subscriptions.c.active == 1)
        .order_by(webhook_subscriptions.c.id)).all()
    wanted = [s for s in subscriptions if event.removeprefix("alert.") in s.events.split(",")]
    if not wanted:
        return 0
    row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).one()
    for subscription in wanted:
        notification = AlertNotification(
            event=event, delivery_id=f"{alert_id}-{event}-{row.escalations}-{subscription.id}",
            organisation_id=subscription.organisation_id, occurred_at=now,
            escalated_to=row.tier if event == "alert.escalated" else None,
            alert=NotifiedAlert(
                id=str(alert_id), type=row.type, severity=row.severity, state=row.status,
                tier=row.tier, household_id=row.gateway_id, gateway_id=row.gateway_id,
                visit_id=row.visit_id, service_user_id=row.service_user_id,
                raised_at=parse_utc(row.raised_at), received_at=_time(row.received_at),
                raised_by=row.raised_by, escalations=row.escalations),
        )
        conn.execute(sa.insert(webhook_deliveries).values(
            subscription_id=subscription.id, alert_id=alert_id, event=event,
            body=body_bytes(notification).decode(), next_attempt_at=format_utc(now),
            created_at=format_utc(now)))
    return len(wanted)


def _time(value: str | None) -> datetime | None:
    return parse_utc(value) if value else None


def record_of(row: Row[Any]) -> AlertRecord:
    """The lifecycle's view of a stored alert row (all columns selected)."""
    return AlertRecord(
        alert_id=str(row.id), type=row.type, severity=row.severity,
        raised_at=parse_utc(row.raised_at), state=row.status, tier=row.tier,
        tier_since=_time(row.tier_since), escalations=int(row.escalations),
        acknowledged_by=row.acknowledged_by, acknowledged_at=_time(row.acknowledged_at),
        resolved_by=row.resolved_by, resolved_at=_time(row.resolved_at),
        outcome=row.outcome, outcome_note=row.outcome_note,
        superseded_by=str(row.superseded_by) if row.superseded_by is not None else None,
    )


def load_for_update(conn: Connection, alert_id: int) -> Row[Any] | None:
    return conn.execute(
        sa.select(alerts).where(alerts.c.id == alert_id).with_for_update()).first()


def move(conn: Connection, row: Row[Any], command: Command, actor: Actor, now: datetime,
         *, outcomes: OutcomeCatalogue | None = None) -> tuple[AlertRecord, AuditEntry]:
    """Apply one lifecycle move to a stored alert: checked by the pure lifecycle (its
    exceptions pass through: the caller maps them to 409/422), then the row and the audit
    trail are written in the caller's transaction."""
    before = record_of(row)
    after, entry = apply(before, command, actor, now, outcomes=outcomes)
    conn.execute(sa.update(alerts).where(alerts.c.id == row.id).values(
        status=after.state, tier=after.tier,
        tier_since=format_utc(after.tier_since) if after.tier_since else None,
        escalations=after.escalations, acknowledged_by=after.acknowledged_by,
        acknowledged_at=format_utc(after.acknowledged_at) if after.acknowledged_at else None,
        resolved_by=after.resolved_by,
        resolved_at=format_utc(after.resolved_at) if after.resolved_at else None,
        outcome=after.outcome, outcome_note=after.outcome_note,
        superseded_by=int(after.superseded_by) if after.superseded_by else None,
        updated_at=format_utc(now), updated_by=actor.user_id,
    ))
    detail = {"from": entry.from_state, "to": entry.to_state, "role": entry.actor_role,
              **entry.detail}
    write_audit(conn, now, actor.user_id, f"alert.{AUDIT_ACTION[entry.action]}",
                f"alert:{row.id}", detail)
    if entry.action == "escalate":
        conn.execute(sa.insert(escalations).values(
            alert_id=row.id, at=format_utc(now), from_tier=before.tier, to_tier=after.tier,
            by=actor.user_id))
        enqueue_webhooks(conn, int(row.id), "alert.escalated", now)
    return after, entry


def auto_resolve(conn: Connection, where: list[sa.ColumnElement[bool]],
                 reason: AutoResolveReason, detail: str, now: datetime) -> list[int]:
    """Auto-resolve every alert matching ``where`` that is not closed yet; returns their
    ids. Each is a lifecycle move by the system, audited with ``reason`` and ``detail``."""
    rows = conn.execute(
        sa.select(alerts).where(*where, alerts.c.status.not_in(sorted(CLOSED_STATES)))
        .order_by(alerts.c.id)
    ).all()
    for row in rows:
        move(conn, row, AutoResolve(reason=reason, detail=detail), SYSTEM, now)
    return [int(row.id) for row in rows]


def may_auto_resolve(event_type: str, visit_id: str | None, data: dict[str, Any]) -> bool:
    """Whether :func:`auto_resolve_for_event` reads alerts for such an event."""
    return bool((event_type in ("arrival", "departure") and visit_id) or (
        event_type in ("door", "keysafe") and data.get("state") == "closed"))


def auto_resolve_for_event(conn: Connection, gateway_id: str, event_type: str,
                           visit_id: str | None, carer_id: str | None, event_time: datetime,
                           data: dict[str, Any], seq: int, now: datetime) -> list[int]:
    """The alerts a stored gateway event clears: a ``visit_late`` of the visit on arrival
    (central's own backup alerts whose deadline came after the arrival were raised in error);
    a ``keysafe_left_open`` / ``door_left_open`` of the gateway when it closes."""
    at = format_utc(event_time)
    cleared: list[int] = []
    if event_type in ("arrival", "departure") and visit_id:
        # central's backup raises of this visit that this event shows never held
        in_error = ["visit_late", "visit_missed", "double_up_incomplete"]
        if event_type == "departure":
            in_error = ["departure_missing"]
        cleared += auto_resolve(conn, [
            alerts.c.gateway_id == gateway_id, alerts.c.visit_id == visit_id,
            alerts.c.type.in_(in_error), alerts.c.raised_by == "central",
            alerts.c.raised_at > at,
        ], "raised_in_error",
            f"the gateway recorded a {event_type} at {at} (seq {seq}) before central's alert",
            now)
    if event_type == "arrival" and visit_id:
        cleared += auto_resolve(conn, [
            alerts.c.gateway_id == gateway_id, alerts.c.visit_id == visit_id,
            alerts.c.type == "visit_late",
        ], "carer_arrived", f"carer {carer_id or '?'} arrived at {at} (seq {seq})", now)
    if event_type in ("door", "keysafe") and data.get("state") == "closed":
        alert_type = "door_left_open" if event_type == "door" else "keysafe_left_open"
        reason: AutoResolveReason = "door_closed" if event_type == "door" else "keysafe_closed"
        cleared += auto_resolve(conn, [
            alerts.c.gateway_id == gateway_id, alerts.c.type == alert_type,
            alerts.c.raised_at <= at,
        ], reason, f"{event_type} closed at {at} (seq {seq})", now)
    return cleared
