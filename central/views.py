"""What central's users see, derived from the store: visits with their outcome, alerts,
gateway health, raw events for audit, and the scenario report (central's final view).
Nothing here writes; routers and the dashboard call these functions so that every screen
and export agrees.

Every function takes ``gateways`` (``None`` = all; otherwise only these gateway ids): the
hook organisation scoping uses to show staff only their own households' gateways.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from central.db.tables import alerts as alerts_table
from central.db.tables import attendances, events
from central.db.tables import gateways as gateways_table
from central.ingest.events import PLACEHOLDER_TYPES
from central.store import Store, in_scope
from homecall.plan import Visit


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
            visit_attendances = by_visit.get(visit.id, [])
            first = next((a for a in visit_attendances if a["punctuality"] is not None), None)
            result.append(
                {
                    "id": visit.id,
                    "gateway": gw,
                    "service_user": visit.service_user,
                    "planned_start": visit.start.isoformat(),
                    "duration_min": visit.duration_min,
                    "window": [t.isoformat() for t in visit.window] if visit.window else None,
                    "carers_required": visit.carers_required,
                    "status": visit_status(visit, visit_attendances,
                                           alerts_by_visit.get(visit.id, set())),
                    "punctuality": first["punctuality"] if first else None,
                    "minutes_outside_window": first["minutes_outside_window"] if first else None,
                    "attendances": [
                        {"carer": a["carer_id"], "arrived": a["arrived_at"],
                         "departed": a["departed_at"]}
                        for a in visit_attendances
                    ],
                }
            )
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
    return [
        {
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
        for row in rows
    ]


def list_gateways(store: Store, *,
                  gateways: Collection[str] | None = None) -> list[dict[str, Any]]:
    with store.db.read() as conn:
        rows = conn.execute(
            sa.select(gateways_table)
            .where(*_scoped(gateways_table.c.id, None, gateways))
            .order_by(gateways_table.c.id)
        ).all()
        per_type = conn.execute(
            sa.select(events.c.gateway_id, events.c.type, sa.func.count().label("n"))
            .where(*_scoped(events.c.gateway_id, None, gateways))
            .group_by(events.c.gateway_id, events.c.type)
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for gateway_id, event_type, n in per_type:
        kind = event_type if event_type in PLACEHOLDER_TYPES else "event"
        by_kind = counts.setdefault(gateway_id, {})
        by_kind[kind] = by_kind.get(kind, 0) + int(n)
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
                "chain_breaks": row.chain_breaks,
                "status": status,
            }
        )
    return out


def list_events(
    store: Store, gateway_id: str | None = None, after_seq: int = 0, limit: int = 1000, *,
    gateways: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Stored events (and gap placeholders) in seq order, for audit; at most 10,000."""
    query = (
        sa.select(events.c.gateway_id, events.c.seq, events.c.id, events.c.type,
                  events.c.time, events.c.severity, events.c.visit_id,
                  events.c.service_user_id, events.c.carer_id, events.c.clock_ok,
                  events.c.data, events.c.chain_ok)
        .where(events.c.seq > after_seq, *_scoped(events.c.gateway_id, gateway_id, gateways))
        .order_by(events.c.gateway_id, events.c.seq)
        .limit(min(max(limit, 1), 10000))
    )
    with store.db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        row["data"] = json.loads(row["data"])
    return rows


def delivery_counts(store: Store, *,
                    gateways: Collection[str] | None = None) -> tuple[int, int]:
    """(events lost, events duplicated) as central can tell them.

    Lost: seq numbers missing below the highest seq a gateway reported (in its events or its
    last heartbeat), plus seqs a gateway declared lost with its damaged journal. Seqs the
    gateway shed within its disk budget (``dropped`` tombstones) are accounted for, not lost.
    Duplicated: the same event id stored under more than one seq.
    """
    lost = 0
    for gw in list_gateways(store, gateways=gateways):
        reported = max(gw["max_seq"], (gw["status"] or {}).get("last_seq") or 0)
        lost += max(0, reported - gw["events_stored"]) + gw["events_gone"]
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
    }
