"""Alerts for monitoring staff: list, and work them (acknowledge, resolve with an outcome).
Every change is audited with who and when."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from central.deps import ActorDep, ClockDep, StoreDep
from central.views import list_alerts
from homecall.clock import format_utc

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertUpdate(BaseModel):
    status: Literal["acknowledged", "resolved"]
    outcome: str | None = Field(None, max_length=2000)


@router.get("")
def alerts(
    store: StoreDep, gateway: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    return list_alerts(store, gateway, status)


@router.post("/{alert_id}")
def update_alert(
    alert_id: int, update: AlertUpdate, store: StoreDep, clock: ClockDep, actor: ActorDep
) -> dict[str, Any]:
    now = clock.now()
    with store.transaction() as conn:
        row = conn.execute("SELECT status FROM alerts WHERE id=?", (alert_id,)).fetchone()
        if row is None:
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
