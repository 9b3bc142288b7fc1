"""Alerts for monitoring staff: list, and work them (acknowledge, resolve with an outcome).
Every change is audited with who and when. Staff see their organisation's gateways only."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from central.auth.deps import AlertWorker, AllowedGateways, CareReader
from central.deps import ClockDep, StoreDep
from central.store import NotFound, Superseded
from central.views import list_alerts

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertUpdate(BaseModel):
    status: Literal["acknowledged", "resolved"]
    outcome: str | None = Field(None, max_length=2000)


@router.get("")
def alerts(
    store: StoreDep, user: CareReader, allowed: AllowedGateways,
    gateway: str | None = None, status: str | None = None,
) -> list[dict[str, Any]]:
    return list_alerts(store, gateway, status, gateways=allowed)


@router.post("/{alert_id}")
def update_alert(
    alert_id: int, update: AlertUpdate, store: StoreDep, clock: ClockDep, user: AlertWorker,
    allowed: AllowedGateways,
) -> dict[str, Any]:
    try:
        store.update_alert(alert_id, update.status, update.outcome, clock.now(), user.username,
                           gateways=allowed)
    except NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except Superseded as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    return {"id": alert_id, "status": update.status}
