"""What central's users see, derived from the store: visits with their outcome, alerts,
gateway health, and the SPEC §7 report. Nothing here writes; routers and the dashboard
call these functions so that every screen and export agrees."""

from __future__ import annotations

import json
from typing import Any

from central.store import Store
from homecall.plan import Visit


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


def list_visits(store: Store, gateway_id: str | None = None) -> list[dict[str, Any]]:
    gateways = [gateway_id] if gateway_id else store.gateway_ids()
    result: list[dict[str, Any]] = []
    for gw in gateways:
        current = store.current_plan(gw)
        if current is None:
            continue
        document, _ = current
        attendance_rows = store.query(
            "SELECT * FROM attendances WHERE gateway_id=? ORDER BY arrived_at", (gw,)
        )
        alert_rows = store.query(
            "SELECT visit_id, type FROM alerts WHERE gateway_id=? AND visit_id IS NOT NULL", (gw,)
        )
        by_visit: dict[str, list[dict[str, Any]]] = {}
        for row in attendance_rows:
            by_visit.setdefault(row["visit_id"], []).append(row)
        alerts_by_visit: dict[str, set[str]] = {}
        for row in alert_rows:
            alerts_by_visit.setdefault(row["visit_id"], set()).add(row["type"])
        for visit in document.visits:
            attendances = by_visit.get(visit.id, [])
            first = next((a for a in attendances if a["punctuality"] is not None), None)
            result.append(
                {
                    "id": visit.id,
                    "gateway": gw,
                    "service_user": visit.service_user,
                    "planned_start": visit.start.isoformat(),
                    "duration_min": visit.duration_min,
                    "window": [t.isoformat() for t in visit.window] if visit.window else None,
                    "carers_required": visit.carers_required,
                    "status": visit_status(visit, attendances,
                                           alerts_by_visit.get(visit.id, set())),
                    "punctuality": first["punctuality"] if first else None,
                    "minutes_outside_window": first["minutes_outside_window"] if first else None,
                    "attendances": [
                        {"carer": a["carer_id"], "arrived": a["arrived_at"],
                         "departed": a["departed_at"]}
                        for a in attendances
                    ],
                }
            )
    return result


def list_alerts(
    store: Store, gateway_id: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM alerts WHERE 1=1"
    params: list[Any] = []
    if gateway_id:
        sql += " AND gateway_id=?"
        params.append(gateway_id)
    if status:
        sql += " AND status=?"
        params.append(status)
    sql += " ORDER BY raised_at, id"
    return [
        {
            "id": row["id"],
            "gateway": row["gateway_id"],
            "type": row["type"],
            "severity": row["severity"],
            "visit": row["visit_id"],
            "service_user": row["service_user_id"],
            "carer": row["carer_id"],
            "raised_at": row["raised_at"],
            "status": row["status"],
            "data": json.loads(row["data"]),
        }
        for row in store.query(sql, params)
    ]


def list_gateways(store: Store) -> list[dict[str, Any]]:
    rows = store.query("SELECT * FROM gateways ORDER BY id")
    out = []
    for row in rows:
        status = json.loads(row["status"]) if row["status"] else None
        counts = {
            r["kind"]: r["n"] for r in store.query(
                "SELECT CASE WHEN type IN ('dropped', 'lost') THEN type ELSE 'event' END AS kind,"
                " COUNT(*) AS n FROM events WHERE gateway_id=? GROUP BY kind", (row["id"],)
            )
        }
        stored = sum(counts.values())
        out.append(
            {
                "id": row["id"],
                "state": row["state"],
                "last_seen": row["last_seen"],
                "plan_version": row["plan_version"],
                "contiguous_seq": row["contiguous_seq"],
                "max_seq": row["max_seq"],
                "events_stored": stored,
                # seqs the gateway shed within its disk budget (tombstoned, not lost) and
                # seqs a damaged/replaced journal could not deliver (lost, and counted so)
                "events_dropped": counts.get("dropped", 0),
                "events_gone": counts.get("lost", 0),
                "chain_breaks": row["chain_breaks"],
                "status": status,
            }
        )
    return out


def delivery_counts(store: Store) -> tuple[int, int]:
    """(events lost, events duplicated) as central can tell them.

    Lost: seq numbers missing below the highest seq a gateway reported (in its events or its
    last heartbeat), plus seqs a gateway declared lost with its damaged journal. Seqs the
    gateway shed within its disk budget (``dropped`` tombstones) are accounted for, not lost.
    Duplicated: the same event id stored under more than one seq.
    """
    lost = 0
    for gw in list_gateways(store):
        reported = max(gw["max_seq"], (gw["status"] or {}).get("last_seq") or 0)
        lost += max(0, reported - gw["events_stored"]) + gw["events_gone"]
    duplicated = store.query(
        "SELECT COALESCE(SUM(n - 1), 0) AS d FROM "
        "(SELECT COUNT(*) AS n FROM events GROUP BY gateway_id, id HAVING COUNT(*) > 1)"
    )[0]["d"]
    return lost, int(duplicated)


def report(store: Store, gateway_id: str | None = None) -> dict[str, Any]:
    """SPEC §7: central's final view of visits, alerts and delivery."""
    lost, duplicated = delivery_counts(store)
    return {
        "visits": [
            {k: v[k] for k in ("id", "status", "punctuality", "minutes_outside_window",
                               "attendances")}
            for v in list_visits(store, gateway_id)
        ],
        "alerts": [
            {k: a[k] for k in ("type", "severity", "visit", "raised_at", "status")}
            for a in list_alerts(store, gateway_id)
        ],
        "events_lost": lost,
        "events_duplicated": duplicated,
    }
