"""Visit plans: coordinators upload a household's plan; central versions it and sends the
pseudonymous gateway plan to the gateway (retained on ``gw/{id}/plan``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from central.deps import ActorDep, ClockDep, IngestDep, StoreDep
from homecall.plan import PlanDocument, PlanError

router = APIRouter(prefix="/api/plans", tags=["plans"])


@router.post("", status_code=201)
def upload_plan(
    store: StoreDep, ingest: IngestDep, clock: ClockDep, actor: ActorDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    try:
        document = PlanDocument.parse(body)
    except PlanError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    plan = store.save_plan(document, clock.now(), actor)
    if ingest is not None:
        ingest.publish_plan(plan)
    return {"gateway": plan.gateway_id, "version": plan.version, "visits": len(plan.visits)}


@router.get("/{gateway_id}")
def current_plan(gateway_id: str, store: StoreDep) -> dict[str, Any]:
    current = store.current_plan(gateway_id)
    if current is None:
        raise HTTPException(status_code=404, detail=f"no plan for gateway {gateway_id!r}")
    document, plan = current
    return {"version": plan.version, "document": document.model_dump(mode="json")}
