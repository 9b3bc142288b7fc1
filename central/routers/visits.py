"""Visits with their outcome (status, punctuality, attendances), per gateway or all of the
caller's organisation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from central.auth.deps import AllowedGateways, CareReader, visible
from central.deps import StoreDep
from central.views import list_visits

router = APIRouter(prefix="/api/visits", tags=["visits"])


@router.get("")
def visits(store: StoreDep, user: CareReader, allowed: AllowedGateways,
           gateway: str | None = None) -> list[dict[str, Any]]:
    if gateway is not None and not visible(allowed, gateway):
        return []
    # becomes list_visits(store, gateway, gateways=allowed) with the ported views
    return [v for v in list_visits(store, gateway) if visible(allowed, v["gateway"])]
