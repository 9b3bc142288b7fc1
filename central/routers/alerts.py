"""Alerts for monitoring staff: list, and work them (acknowledge, resolve with an outcome).
Every change is audited with who and when."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from central.deps import ActorDep, ClockDep, StoreDep
from central.store import NotFound, Superseded
from central.views import list_alerts

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
    try:
        store.update_alert(alert_id, update.status, update.outcome, clock.now(), actor)
    except NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except Superseded as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    return {"id": alert_id, "status": update.status}
