"""Reports: the scenario report (central's final view), and raw events for audit. Staff see
their organisation's gateways only."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from central.auth.deps import AllowedGateways, CareReader, visible
from central.deps import StoreDep
from central.store import Store
from central.views import list_gateways, report

router = APIRouter(prefix="/api", tags=["reports"])


def _scoped_report(store: Store, gateway: str | None, allowed: frozenset[str]) -> dict[str, Any]:
    """The report over the caller's gateways only (until ``report`` takes ``gateways=``)."""
    wanted = sorted(g for g in store.gateway_ids() if g in allowed and gateway in (None, g))
    out: dict[str, Any] = {"visits": [], "alerts": [], "events_lost": 0, "events_duplicated": 0}
    for gw in wanted:
        part = report(store, gw)
        out["visits"] += part["visits"]
        out["alerts"] += part["alerts"]
    for row in list_gateways(store):
        if row["id"] in wanted:
            reported = max(row["max_seq"], (row["status"] or {}).get("last_seq") or 0)
            out["events_lost"] += max(0, reported - row["events_stored"]) + row["events_gone"]
    if wanted:
        marks = ",".join("?" * len(wanted))
        out["events_duplicated"] = int(store.query(
            "SELECT COALESCE(SUM(n - 1), 0) AS d FROM (SELECT COUNT(*) AS n FROM events "
            f"WHERE gateway_id IN ({marks}) GROUP BY gateway_id, id HAVING COUNT(*) > 1)",
            wanted)[0]["d"])
    return out


@router.get("/report")
def scenario_report(store: StoreDep, user: CareReader, allowed: AllowedGateways,
                    gateway: str | None = None) -> dict[str, Any]:
    if allowed is None:
        return report(store, gateway)
    return _scoped_report(store, gateway, allowed)


@router.get("/events")
def events(
    store: StoreDep, user: CareReader, allowed: AllowedGateways,
    gateway: str | None = None, after_seq: int = 0, limit: int = 1000,
) -> list[dict[str, Any]]:
    if gateway is not None and not visible(allowed, gateway):
        return []
    sql = "SELECT gateway_id, seq, id, type, time, severity, visit_id, service_user_id, " \
          "carer_id, clock_ok, data, chain_ok FROM events WHERE seq > ?"
    params: list[Any] = [after_seq]
    if gateway:
        sql += " AND gateway_id=?"
        params.append(gateway)
    if allowed is not None:
        if not allowed:
            return []
        sql += f" AND gateway_id IN ({','.join('?' * len(allowed))})"
        params.extend(sorted(allowed))
    sql += " ORDER BY gateway_id, seq LIMIT ?"
    params.append(min(max(limit, 1), 10000))
    rows = store.query(sql, params)
    for row in rows:
        row["data"] = json.loads(row["data"])
    return rows
