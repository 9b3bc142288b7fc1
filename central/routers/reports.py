"""Reports: the SPEC §7 report (central's final view), and raw events for audit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from central.deps import StoreDep
from central.views import list_events, report

router = APIRouter(prefix="/api", tags=["reports"])


@router.get("/report")
def scenario_report(store: StoreDep, gateway: str | None = None) -> dict[str, Any]:
    return report(store, gateway)


@router.get("/events")
def events(
    store: StoreDep, gateway: str | None = None, after_seq: int = 0, limit: int = 1000
) -> list[dict[str, Any]]:
    return list_events(store, gateway, after_seq, limit)
