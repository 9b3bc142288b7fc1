"""Visits with their outcome (status, punctuality, attendances), per gateway or all of the
caller's organisation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from central.auth.deps import AllowedGateways, CareReader
from central.deps import StoreDep
from central.views import list_visits

router = APIRouter(prefix="/api/visits", tags=["visits"])


@router.get("")
def visits(store: StoreDep, user: CareReader, allowed: AllowedGateways,
           gateway: str | None = None) -> list[dict[str, Any]]:
    return list_visits(store, gateway, gateways=allowed)
