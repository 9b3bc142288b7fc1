"""Reports: the SPEC §7 report (central's final view), and raw events for audit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from central.deps import StoreDep
from central.views import report

router = APIRouter(prefix="/api", tags=["reports"])


@router.get("/report")
def scenario_report(store: StoreDep, gateway: str | None = None) -> dict[str, Any]:
    return report(store, gateway)


@router.get("/events")
def events(
    store: StoreDep, gateway: str | None = None, after_seq: int = 0, limit: int = 1000
) -> list[dict[str, Any]]:
    sql = "SELECT gateway_id, seq, id, type, time, severity, visit_id, service_user_id, " \
          "carer_id, clock_ok, data, chain_ok FROM events WHERE seq > ?"
    params: list[Any] = [after_seq]
    if gateway:
        sql += " AND gateway_id=?"
        params.append(gateway)
    sql += " ORDER BY gateway_id, seq LIMIT ?"
    params.append(min(max(limit, 1), 10000))
    rows = store.query(sql, params)
    for row in rows:
        row["data"] = json.loads(row["data"])
    return rows
