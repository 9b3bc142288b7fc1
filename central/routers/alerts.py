"""Alerts for monitoring staff: list, and work them (acknowledge, resolve with an outcome).
Every change is audited with who and when. Staff see their organisation's gateways only."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from central.auth.deps import AlertWorker, AllowedGateways, CareReader, visible
from central.deps import ClockDep, StoreDep
from central.views import list_alerts
from homecall.clock import format_utc

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertUpdate(BaseModel):
    status: Literal["acknowledged", "resolved"]
    outcome: str | None = Field(None, max_length=2000)


@router.get("")
def alerts(
    store: StoreDep, user: CareReader, allowed: AllowedGateways,
    gateway: str | None = None, status: str | None = None,
) -> list[dict[str, Any]]:
    # becomes list_alerts(store, gateway, status, gateways=allowed) with the ported views
    return [a for a in list_alerts(store, gateway, status) if visible(allowed, a["gateway"])]


@router.post("/{alert_id}")
def update_alert(
    alert_id: int, update: AlertUpdate, store: StoreDep, clock: ClockDep, user: AlertWorker,
    allowed: AllowedGateways,
) -> dict[str, Any]:
    now = clock.now()
    actor = user.username
    with store.transaction() as conn:
        row = conn.execute("SELECT status, gateway_id FROM alerts WHERE id=?",
                           (alert_id,)).fetchone()
        if row is None or not visible(allowed, row["gateway_id"]):
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}")
        if row["status"] == "superseded":
            raise HTTPException(status_code=409, detail="alert was superseded; work the newer one")
        conn.execute(
            "UPDATE alerts SET status=?, updated_at=?, updated_by=? WHERE id=?",
            (update.status, format_utc(now), actor, alert_id),
        )
        store._audit(conn, now, actor, f"alert.{update.status}", f"alert:{alert_id}",
                     {"outcome": update.outcome, "previous": row["status"]})
    return {"id": alert_id, "status": update.status}
