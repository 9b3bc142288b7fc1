"""Reports: the scenario report (central's final view), and raw events for audit. Staff see
their organisation's gateways only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from central.auth.deps import AllowedGateways, CareReader
from central.deps import StoreDep
from central.views import list_events, report
from homecall.wire import MAX_SEQ

router = APIRouter(prefix="/api", tags=["reports"])


@router.get("/report")
def scenario_report(store: StoreDep, user: CareReader, allowed: AllowedGateways,
                    gateway: str | None = None) -> dict[str, Any]:
    return report(store, gateway, gateways=allowed)


@router.get("/events")
def events(
    store: StoreDep, user: CareReader, allowed: AllowedGateways,
    gateway: str | None = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    return list_events(store, gateway, after_seq, limit, gateways=allowed)
