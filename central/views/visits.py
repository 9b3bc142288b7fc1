"""Visits as central sees them, derived from the current plan, the attendances and the
alerts (a visit's status is never stored): one row per planned visit with its status,
punctuality and attendances, and a visit's window in UTC for timelines and the dashboard.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from central.db.tables import alerts as alerts_table
from central.db.tables import attendances
from central.store import Store, in_scope
from homecall.plan import GatewayPlan, Visit


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



def window_utc(plan: GatewayPlan, visit: Visit) -> tuple[datetime, datetime]:
    """The visit's window (agreed, planned, or start ± the system tolerance) in UTC."""
    policy = plan.policy_for(visit)
    local = visit.agreed_window or visit.window or (
        visit.start - timedelta(minutes=policy.system_tolerance_before_min),
        visit.start + timedelta(minutes=policy.system_tolerance_after_min))
    zone = ZoneInfo(plan.timezone)
    return (local[0].replace(tzinfo=zone).astimezone(UTC),
            local[1].replace(tzinfo=zone).astimezone(UTC))
