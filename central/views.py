"""What central's users see, derived from the store: visits with their outcome, alerts,
gateway health, raw events for audit, and the scenario report (central's final view).
Nothing here writes; routers and the dashboard call these functions so that every screen
and export agrees.

Every function takes ``gateways`` (``None`` = all; otherwise only these gateway ids): the
hook organisation scoping uses to show staff only their own households' gateways.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from central import CentralError
from central.db.tables import alerts as alerts_table
from central.db.tables import attendances, audit, event_conflicts, event_gaps, events
from central.db.tables import gateways as gateways_table
from central.store import Store, in_scope
from homecall.clock import format_utc
from homecall.plan import GatewayPlan, Visit


def _scoped(column: sa.ColumnElement[Any], gateway_id: str | None,
            gateways: Collection[str] | None) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses limiting ``column`` (a gateway id) to one gateway and/or a set."""
    clauses: list[sa.ColumnElement[bool]] = []
    if gateway_id:
        clauses.append(column == gateway_id)
    if gateways is not None:
        clauses.append(column.in_(sorted(gateways)))
    return clauses


def visit_status(visit: Visit, attendances: list[dict[str, Any]], alert_types: set[str]) -> str:
    if visit.status == "cancelled":
        return "cancelled"
    if "no_access" in alert_types:
        return "no_access"
    if attendances:
        if all(a["departed_at"] for a in attendances):
            return "completed"
        return "in_progress"
    if "visit_missed" in alert_types:
        return "missed"
    return "planned"


def visit_row(gateway_id: str, visit: Visit, visit_attendances: list[dict[str, Any]],
              alert_types: set[str]) -> dict[str, Any]:
    """One visit as the read model lists it: the plan's facts, its status, punctuality and
    attendances (``visit_attendances``: its ``attendances`` rows, by arrival)."""
    first = next((a for a in visit_attendances if a["punctuality"] is not None), None)
    return {
        "id": visit.id,
        "gateway": gateway_id,
        "service_user": visit.service_user,
        "planned_start": visit.start.isoformat(),
        "duration_min": visit.duration_min,
        "window": [t.isoformat() for t in visit.window] if visit.window else None,
        "carers_required": visit.carers_required,
        "status": visit_status(visit, visit_attendances, alert_types),
        "punctuality": first["punctuality"] if first else None,
        "minutes_outside_window": first["minutes_outside_window"] if first else None,
        "attendances": [
            {"carer": a["carer_id"], "arrived": a["arrived_at"], "departed": a["departed_at"]}
            for a in visit_attendances
        ],
    }


def list_visits(store: Store, gateway_id: str | None = None, *,
                gateways: Collection[str] | None = None) -> list[dict[str, Any]]:
    ids = [gateway_id] if gateway_id else store.gateway_ids()
    result: list[dict[str, Any]] = []
    for gw in ids:
        if not in_scope(gw, gateways):
            continue
        current = store.current_plan(gw)
        if current is None:
            continue
        document, _ = current
        with store.db.read() as conn:
            attendance_rows = [dict(r._mapping) for r in conn.execute(
                sa.select(attendances).where(attendances.c.gateway_id == gw)
                .order_by(attendances.c.arrived_at)
            )]
            alert_rows = conn.execute(
                sa.select(alerts_table.c.visit_id, alerts_table.c.type)
                .where(alerts_table.c.gateway_id == gw, alerts_table.c.visit_id.is_not(None))
            ).all()
        by_visit: dict[str, list[dict[str, Any]]] = {}
        for row in attendance_rows:
            by_visit.setdefault(row["visit_id"], []).append(row)
        alerts_by_visit: dict[str, set[str]] = {}
        for alert in alert_rows:
            alerts_by_visit.setdefault(alert.visit_id, set()).add(alert.type)
        for visit in document.visits:
            result.append(visit_row(gw, visit, by_visit.get(visit.id, []),
                                    alerts_by_visit.get(visit.id, set())))
    return result


def list_alerts(
    store: Store, gateway_id: str | None = None, status: str | None = None, *,
    gateways: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    query = sa.select(alerts_table).where(
        *_scoped(alerts_table.c.gateway_id, gateway_id, gateways))
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
        *_scoped(alerts_table.c.gateway_id, gateway_id, gateways))
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


def window_utc(plan: GatewayPlan, visit: Visit) -> tuple[datetime, datetime]:
    """The visit's window (agreed, planned, or start ± the system tolerance) in UTC."""
    policy = plan.policy_for(visit)
    local = visit.agreed_window or visit.window or (
        visit.start - timedelta(minutes=policy.system_tolerance_before_min),
        visit.start + timedelta(minutes=policy.system_tolerance_after_min))
    zone = ZoneInfo(plan.timezone)
    return (local[0].replace(tzinfo=zone).astimezone(UTC),
            local[1].replace(tzinfo=zone).astimezone(UTC))


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


def list_gateways(store: Store, *,
                  gateways: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Every gateway in ``gateways`` (None: all), by id, with its delivery counts."""
    return gateway_page(store, gateways=gateways)[0]


def gateway_page(store: Store, *, gateways: Collection[str] | None = None,
                 after: str | None = None, limit: int | None = None,
                 state: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Gateways by id, from just past ``after``, at most ``limit`` of them, only those in
    ``state`` if given; and the id to ask ``after`` for the next page (None: no more).

    The event and gap counts are read for the page's gateways only, so a page of a
    10,000-gateway fleet costs what a page costs, not what the fleet does.
    """
    with store.db.read() as conn:
        query = (sa.select(gateways_table)
                 .where(*_scoped(gateways_table.c.id, None, gateways))
                 .order_by(gateways_table.c.id))
        if after is not None:
            query = query.where(gateways_table.c.id > after)
        if state is not None:
            query = query.where(gateways_table.c.state == state)
        if limit is not None:
            query = query.limit(limit + 1)
        rows = conn.execute(query).all()
        next_after: str | None = None
        if limit is not None and len(rows) > limit:
            rows = rows[:limit]
            next_after = rows[-1].id
        if limit is not None or state is not None:
            gateways = [row.id for row in rows]  # count for the page's gateways only
        per_type = conn.execute(
            sa.select(events.c.gateway_id, events.c.type, sa.func.count().label("n"))
            .where(*_scoped(events.c.gateway_id, None, gateways))
            .group_by(events.c.gateway_id, events.c.type)
        ).all()
        # each gap's seqs that hold no real event (gaps are stored disjoint)
        real_inside = (
            sa.select(sa.func.count()).select_from(events)
            .where(events.c.gateway_id == event_gaps.c.gateway_id,
                   events.c.seq.between(event_gaps.c.first_seq, event_gaps.c.last_seq))
            .scalar_subquery()
        )
        per_gap = (
            sa.select(event_gaps.c.gateway_id, event_gaps.c.gap,
                      (event_gaps.c.last_seq - event_gaps.c.first_seq + 1 - real_inside)
                      .label("n"))
            .where(*_scoped(event_gaps.c.gateway_id, None, gateways))
            .subquery()
        )
        per_gap_kind = conn.execute(
            sa.select(per_gap.c.gateway_id, per_gap.c.gap, sa.func.sum(per_gap.c.n))
            .group_by(per_gap.c.gateway_id, per_gap.c.gap)
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for gateway_id, kind, n in [*((g, "event", n) for g, _, n in per_type), *per_gap_kind]:
        by_kind = counts.setdefault(gateway_id, {})
        by_kind[kind] = by_kind.get(kind, 0) + int(n or 0)
    out = []
    for row in rows:
        status = json.loads(row.status) if row.status else None
        gateway_counts = counts.get(row.id, {})
        out.append(
            {
                "id": row.id,
                "state": row.state,
                "last_seen": row.last_seen,
                "plan_version": row.plan_version,
                "contiguous_seq": row.contiguous_seq,
                "max_seq": row.max_seq,
                "events_stored": sum(gateway_counts.values()),
                # seqs the gateway shed within its disk budget (tombstoned, not lost) and
                # seqs a damaged/replaced journal could not deliver (lost, and counted so)
                "events_dropped": gateway_counts.get("dropped", 0),
                "events_gone": gateway_counts.get("lost", 0),
                # removed at the end of their retention period (accounted for, not lost)
                "events_purged": gateway_counts.get("purged", 0),
                "chain_breaks": row.chain_breaks,
                "status": status,
                # what the gateway did with central's last command (e.g. identify)
                "last_command": status.get("last_command") if status else None,
            }
        )
    return out, next_after


def list_conflicts(store: Store, gateway_id: str) -> list[dict[str, Any]]:
    """Each seq of ``gateway_id`` that two different events claim: the stored event and every
    other claimant, as received, for staff to compare (oldest seq first)."""
    with store.db.read() as conn:
        claims = conn.execute(
            sa.select(event_conflicts).where(event_conflicts.c.gateway_id == gateway_id)
            .order_by(event_conflicts.c.seq, event_conflicts.c.id)
        ).all()
        seqs = sorted({int(c.seq) for c in claims})
        stored = {int(r.seq): r for r in conn.execute(
            sa.select(events.c.seq, events.c.hash, events.c.payload, events.c.received_at)
            .where(events.c.gateway_id == gateway_id, events.c.seq.in_(seqs)))} if seqs else {}
    out: list[dict[str, Any]] = []
    for seq in seqs:
        kept = stored.get(seq)
        out.append({
            "seq": seq,
            "stored": None if kept is None else {
                "hash": kept.hash, "received_at": kept.received_at,
                "event": json.loads(kept.payload)},
            "conflicting": [
                {"hash": c.hash, "received_at": c.received_at, "resolved_at": c.resolved_at,
                 "event": json.loads(c.payload)}
                for c in claims if int(c.seq) == seq],
        })
    return out


def list_events(
    store: Store, gateway_id: str | None = None, after_seq: int = 0, limit: int = 1000, *,
    gateways: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Stored events in seq order, for audit, at most 10,000; each seq of a gap tombstone
    that holds no real event is listed too, as a row of the gap's kind (``dropped`` or
    ``lost``) carrying the tombstone's range, types and reason."""
    limit = min(max(limit, 1), 10000)
    query = (
        sa.select(events.c.gateway_id, events.c.seq, events.c.id, events.c.type,
                  events.c.time, events.c.severity, events.c.visit_id,
                  events.c.service_user_id, events.c.carer_id, events.c.clock_ok,
                  events.c.data, events.c.chain_ok)
        .where(events.c.seq > after_seq, *_scoped(events.c.gateway_id, gateway_id, gateways))
        .order_by(events.c.gateway_id, events.c.seq)
        .limit(limit)
    )
    gap_query = (
        sa.select(event_gaps)
        .where(event_gaps.c.last_seq > after_seq,
               *_scoped(event_gaps.c.gateway_id, gateway_id, gateways))
        .order_by(event_gaps.c.gateway_id, event_gaps.c.first_seq)
    )
    with store.db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        gaps = conn.execute(gap_query).all()
    for row in rows:
        row["data"] = json.loads(row["data"])
    if not gaps:
        return rows
    real = {(row["gateway_id"], row["seq"]) for row in rows}
    # Real rows stop at the limit: a gap seq past the last real row of a cut-off listing may
    # hide a real event, so only gap seqs up to that point are filled in.
    cut = (rows[-1]["gateway_id"], rows[-1]["seq"]) if len(rows) == limit else None
    for gap in gaps:
        tombstone = json.loads(gap.payload)
        data = {"gap": gap.gap, "first_seq": int(tombstone["first_seq"]),
                "last_seq": int(tombstone["last_seq"]), "types": tombstone.get("types", {}),
                "reason": tombstone.get("reason")}
        added = 0
        for seq in range(max(int(gap.first_seq), after_seq + 1), int(gap.last_seq) + 1):
            if cut is not None and (gap.gateway_id, seq) > cut:
                break
            if (gap.gateway_id, seq) in real:
                continue
            rows.append({
                "gateway_id": gap.gateway_id, "seq": seq, "id": f"{gap.gap}:{gap.gateway_id}:{seq}",
                "type": gap.gap, "time": gap.received_at, "severity": None, "visit_id": None,
                "service_user_id": None, "carer_id": None, "clock_ok": 0, "data": data,
                "chain_ok": (None if gap.gap == "lost" else
                             gap.chain_ok if seq == gap.first_seq else 1),
            })
            added += 1
            if added >= limit:
                break
    rows.sort(key=lambda row: (row["gateway_id"], row["seq"]))
    return rows[:limit]


def delivery_counts(store: Store, *,
                    gateways: Collection[str] | None = None) -> tuple[int, int]:
    """(events lost, events duplicated) as central can tell them.

    Lost: seq numbers missing below the highest seq a gateway reported (in its events or its
    last heartbeat), plus seqs a gateway declared lost with its damaged journal. A heartbeat's
    ``last_seq`` is the gateway's claim: it counts at most :data:`CLAIM_AHEAD_COUNTED` seqs
    above the highest seq stored (the rest is reported as claimed, unverified). Seqs the
    gateway shed within its disk budget (``dropped`` tombstones) are accounted for, not lost.
    Duplicated: the same event id stored under more than one seq.
    """
    lost, _ = _lost_and_unverified(store, gateways)
    per_id = (
        sa.select(sa.func.count().label("n"))
        .select_from(events)
        .where(*_scoped(events.c.gateway_id, None, gateways))
        .group_by(events.c.gateway_id, events.c.id)
        .having(sa.func.count() > 1)
        .subquery()
    )
    with store.db.read() as conn:
        duplicated = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(per_id.c.n - 1), 0))
        ).scalar_one()
    return lost, int(duplicated)


#: How far above the highest stored seq a heartbeat's ``last_seq`` is believed (events the
#: gateway journalled and has not delivered yet); anything beyond is a claim, not a count.
CLAIM_AHEAD_COUNTED = 10_000


def _lost_and_unverified(store: Store,
                         gateways: Collection[str] | None) -> tuple[int, int]:
    lost = unverified = 0
    for gw in list_gateways(store, gateways=gateways):
        claimed = int((gw["status"] or {}).get("last_seq") or 0)
        believed = min(claimed, gw["max_seq"] + CLAIM_AHEAD_COUNTED)
        unverified += claimed - believed
        reported = max(gw["max_seq"], believed)
        lost += max(0, reported - gw["events_stored"]) + gw["events_gone"]
    return lost, unverified


def report(store: Store, gateway_id: str | None = None, *,
           gateways: Collection[str] | None = None) -> dict[str, Any]:
    """Central's final view of visits, alerts and delivery (the scenario report)."""
    lost, duplicated = delivery_counts(store, gateways=gateways)
    return {
        "visits": [
            {k: v[k] for k in ("id", "status", "punctuality", "minutes_outside_window",
                               "attendances")}
            for v in list_visits(store, gateway_id, gateways=gateways)
        ],
        "alerts": [
            {k: a[k] for k in ("type", "severity", "visit", "raised_at", "status",
                               "received_at", "raised_by")}
            for a in list_alerts(store, gateway_id, gateways=gateways)
        ],
        "events_lost": lost,
        "events_duplicated": duplicated,
        # seqs heartbeats claim beyond what is stored plus CLAIM_AHEAD_COUNTED: not counted
        "events_claimed_unverified": _lost_and_unverified(store, gateways)[1],
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
                                          *_scoped(alerts_table.c.gateway_id, None, gateways))
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
