"""Alerts for the desk and the API: the plain list, the desk's cursor-paged list (most
severe first), one alert with its audit trail, incident record and its visit's timeline,
and the live stream's changes since a pair of (alert, audit) positions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from central import CentralError
from central.db.tables import alerts as alerts_table
from central.db.tables import audit, events
from central.store import Store, in_scope
from central.views.scope import scoped
from central.views.visits import window_utc
from homecall.clock import format_utc


def list_alerts(
    store: Store, gateway_id: str | None = None, status: str | None = None, *,
    gateways: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    query = sa.select(alerts_table).where(
        *scoped(alerts_table.c.gateway_id, gateway_id, gateways))
    if status:
        query = query.where(alerts_table.c.status == status)
    query = query.order_by(alerts_table.c.raised_at, alerts_table.c.id)
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    return [_alert_row(row) for row in rows]


def _alert_row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "gateway": row.gateway_id,
        "type": row.type,
        "severity": row.severity,
        "visit": row.visit_id,
        "service_user": row.service_user_id,
        "carer": row.carer_id,
        "raised_at": row.raised_at,
        "status": row.status,
        "data": json.loads(row.data),
        "raised_by": row.raised_by,
        "received_at": row.received_at,
        "other_raise": json.loads(row.other_raise) if row.other_raise else None,
        "tier": row.tier,
        "escalations": row.escalations,
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": row.acknowledged_at,
        "resolved_by": row.resolved_by,
        "resolved_at": row.resolved_at,
        "outcome": row.outcome,
        "outcome_note": row.outcome_note,
        "superseded_by": row.superseded_by,
    }



#: Severity -> sort rank (most severe first on the desk).
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
_severity_rank: sa.ColumnElement[int] = sa.case(
    SEVERITY_RANK, value=alerts_table.c.severity, else_=0)


class BadCursor(CentralError, ValueError):
    """A page cursor this server did not hand out."""


def _encode_cursor(rank: int, raised_at: str, alert_id: int) -> str:
    raw = json.dumps([rank, raised_at, alert_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, raised_at, alert_id = json.loads(raw)
        return int(rank), str(raised_at), int(alert_id)
    except (ValueError, TypeError) as err:
        raise BadCursor(f"cursor {cursor!r} is not one this server handed out") from err


def alert_page(
    store: Store, *, gateway_id: str | None = None, alert_type: str | None = None,
    severity: str | None = None, status: str | Collection[str] | None = None,
    cursor: str | None = None, limit: int = 50, gateways: Collection[str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The desk's list: most severe first, then oldest first, filtered; a page of at most
    ``limit`` alerts and the cursor of the next page (``None``: this is the last)."""
    query = sa.select(alerts_table, _severity_rank.label("rank")).where(
        *scoped(alerts_table.c.gateway_id, gateway_id, gateways))
    if alert_type:
        query = query.where(alerts_table.c.type == alert_type)
    if severity:
        query = query.where(alerts_table.c.severity == severity)
    if isinstance(status, str):
        query = query.where(alerts_table.c.status == status)
    elif status:
        query = query.where(alerts_table.c.status.in_(sorted(status)))
    if cursor:
        rank, raised_at, after_id = _decode_cursor(cursor)
        same_rank = _severity_rank.in_([rank])
        query = query.where(sa.or_(
            _severity_rank < rank,
            sa.and_(same_rank, alerts_table.c.raised_at > raised_at),
            sa.and_(same_rank, alerts_table.c.raised_at == raised_at,
                    alerts_table.c.id > after_id),
        ))
    limit = min(max(limit, 1), 500)
    query = query.order_by(_severity_rank.desc(), alerts_table.c.raised_at, alerts_table.c.id)
    with store.db.read() as conn:
        rows = conn.execute(query.limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = _encode_cursor(int(last.rank), last.raised_at, int(last.id))
    return [_alert_row(row) for row in page], next_cursor



#: Event types on a visit's timeline besides those naming the visit (the home's sensors).
_HOME_EVENTS = ("door", "keysafe", "button")


def alert_detail(store: Store, alert_id: int, *,
                 gateways: Collection[str] | None = None) -> dict[str, Any] | None:
    """One alert with its audit trail, incident record, and its visit's timeline: the
    planned window, the carers assigned, and the visit's taps, arrivals and departures with
    the home's door and key-safe events from the window's opening to its close + 4 h."""
    with store.db.read() as conn:
        row = conn.execute(sa.select(alerts_table).where(alerts_table.c.id == alert_id)).first()
        if row is None or not in_scope(row.gateway_id, gateways):
            return None
        trail = [
            {"at": a.at, "who": a.who, "action": a.action, "detail": json.loads(a.detail)}
            for a in conn.execute(sa.select(audit).where(audit.c.target == f"alert:{alert_id}")
                                  .order_by(audit.c.id))
        ]
    alert = _alert_row(row)
    alert["audit"] = trail
    alert["incident"] = None
    record = store.incident(alert_id)
    if record is not None:
        alert["incident"] = record.model_dump(mode="json")
    alert["visit_detail"] = _visit_timeline(store, row.gateway_id, row.visit_id)
    return alert



def _visit_timeline(store: Store, gateway_id: str, visit_id: str | None) -> dict[str, Any] | None:
    if not visit_id:
        return None
    current = store.current_plan(gateway_id)
    visit = None
    window: list[str] | None = None
    where: list[sa.ColumnElement[bool]] = [events.c.visit_id == visit_id]
    if current is not None:
        plan = current[1]
        visit = next((v for v in plan.visits if v.id == visit_id), None)
    if current is not None and visit is not None:
        opens, closes = window_utc(current[1], visit)
        window = [format_utc(opens), format_utc(closes)]
        where.append(sa.and_(events.c.type.in_(_HOME_EVENTS),
                             events.c.time >= format_utc(opens),
                             events.c.time <= format_utc(closes + timedelta(hours=4))))
    with store.db.read() as conn:
        rows = conn.execute(
            sa.select(events.c.seq, events.c.type, events.c.time, events.c.carer_id,
                      events.c.data)
            .where(events.c.gateway_id == gateway_id, sa.or_(*where))
            .order_by(events.c.time, events.c.seq)
        ).all()
    return {
        "id": visit_id,
        "planned": visit.model_dump(mode="json") if visit is not None else None,
        "window_utc": window,
        "timeline": [{"seq": r.seq, "type": r.type, "time": r.time, "carer": r.carer_id,
                      "data": json.loads(r.data)} for r in rows],
    }



#: Audit actions on alerts -> the change the live stream reports.
STREAM_KINDS = {
    "alert.acknowledged": "acknowledged", "alert.escalated": "escalated",
    "alert.resolved": "resolved", "alert.auto_resolved": "resolved",
    "alert.superseded": "superseded", "alert.reopened": "reopened",
}


def alert_changes(store: Store, after_alert: int, after_audit: int, *,
                  gateways: Collection[str] | None = None,
                  ) -> tuple[list[dict[str, Any]], int, int]:
    """Alert changes after the given positions, in order: ``new`` for each alert stored
    since ``after_alert`` and one change per lifecycle audit entry since ``after_audit``.
    Returns (changes, new alert position, new audit position) for the live stream."""
    with store.db.read() as conn:
        new_rows = conn.execute(
            sa.select(alerts_table).where(alerts_table.c.id > after_alert,
                                          *scoped(alerts_table.c.gateway_id, None, gateways))
            .order_by(alerts_table.c.id).limit(500)).all()
        entries = conn.execute(
            sa.select(audit.c.id, audit.c.at, audit.c.who, audit.c.action, audit.c.target)
            .where(audit.c.id > after_audit, audit.c.action.in_(sorted(STREAM_KINDS)))
            .order_by(audit.c.id).limit(500)).all()
        ids = {int(e.target.removeprefix("alert:")) for e in entries}
        touched = {r.id: r for r in conn.execute(
            sa.select(alerts_table).where(alerts_table.c.id.in_(sorted(ids))))} if ids else {}
    changes: list[dict[str, Any]] = [
        {"change": "new", "alert": _alert_row(r)} for r in new_rows]
    last_alert = int(new_rows[-1].id) if new_rows else after_alert
    last_audit = after_audit
    for entry in entries:
        last_audit = int(entry.id)
        row = touched.get(int(entry.target.removeprefix("alert:")))
        if row is None or not in_scope(row.gateway_id, gateways):
            continue
        changes.append({"change": STREAM_KINDS[entry.action], "at": entry.at,
                        "by": entry.who, "alert": _alert_row(row)})
    return changes, last_alert, last_audit


def stream_start(store: Store) -> tuple[int, int]:
    """The current (alert, audit) positions: a new stream reports changes after these."""
    with store.db.read() as conn:
        alert_max = conn.execute(sa.select(sa.func.max(alerts_table.c.id))).scalar()
        audit_max = conn.execute(sa.select(sa.func.max(audit.c.id))).scalar()
    return int(alert_max or 0), int(audit_max or 0)
