"""Visit plans: coordinators upload a household's plan (JSON, or a rostering system's CSV);
central checks that the people it names are registered in the household's organisation,
versions it, and sends the pseudonymous gateway plan to the gateway (retained on
``gw/{id}/plan``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel

from central.auth.deps import (
    AllowedGateways,
    CareReader,
    PeopleDep,
    PeopleEditor,
    visible,
)
from central.deps import ClockDep, IngestDep, StoreDep
from central.plans.csv_import import CsvFileError, import_csv
from central.plans.references import check_references
from homecall.plan import PlanDocument, PlanError, check_plan_document
from homecall.wire import MAX_PLAN_MESSAGE_BYTES

router = APIRouter(prefix="/api/plans", tags=["plans"])


class PlanSaved(BaseModel):
    gateway: str
    version: int
    visits: int


class RejectedRowOut(BaseModel):
    #: Line number in the file (the header is line 1).
    line: int
    visit_id: str | None
    column: str | None
    reason: str


class CsvImportReport(BaseModel):
    rows: int
    accepted: int
    rejected: list[RejectedRowOut]
    plans: list[PlanSaved]
    dry_run: bool


def check_signable(document: PlanDocument, now: datetime) -> None:
    """422 unless a gateway can run ``document`` (the gateway's own check) and its signed
    plan fits the broker's message limit (a bigger one would get central disconnected)."""
    try:
        check_plan_document(document, now)
    except PlanError as err:
        raise HTTPException(status_code=422,
                            detail=f"plan for {document.gateway!r}: {err}") from err
    # Largest the signed message can be: the longest version and salt, a full signature.
    probe = document.for_gateway(2**31 - 1, "f" * 32, issued_at=now).model_copy(
        update={"signature": "f" * 128})
    size = len(probe.to_bytes())
    if size > MAX_PLAN_MESSAGE_BYTES:
        raise HTTPException(status_code=422, detail=(
            f"plan for {document.gateway!r} is {size} bytes signed; at most "
            f"{MAX_PLAN_MESSAGE_BYTES} fit the broker's message limit"))


def _save(document: PlanDocument, store: StoreDep, ingest: IngestDep, clock: ClockDep,
          who: str) -> PlanSaved:
    plan = store.save_plan(document, clock.now(), who)
    if ingest is not None:
        ingest.publish_plan(plan)
    return PlanSaved(gateway=plan.gateway_id, version=plan.version, visits=len(plan.visits))


@router.post("", status_code=201, response_model=PlanSaved)
def upload_plan(
    store: StoreDep, ingest: IngestDep, clock: ClockDep, user: PeopleEditor, people: PeopleDep,
    body: Annotated[dict[str, Any], Body()],
) -> PlanSaved:
    try:
        document = PlanDocument.parse(body)
    except PlanError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    document, problems = check_references(document, people, user.scope)
    if problems:
        raise HTTPException(status_code=422, detail=[p.as_detail() for p in problems])
    check_signable(document, clock.now())
    return _save(document, store, ingest, clock, user.username)


@router.post("/import.csv", response_model=CsvImportReport)
def import_plans_csv(
    payload: Annotated[bytes, Body(media_type="text/csv")], store: StoreDep, ingest: IngestDep,
    clock: ClockDep, user: PeopleEditor, people: PeopleDep, allowed: AllowedGateways,
    dry_run: bool = False,
) -> CsvImportReport:
    """One row a visit (columns in docs/plan-import.md). Bad rows are rejected with the
    reason; each household with accepted rows gets a new plan of exactly those visits."""
    current: dict[str, PlanDocument] = {}
    for gateway in allowed if allowed is not None else store.gateway_ids():
        found = store.current_plan(gateway)
        if found is not None:
            current[gateway] = found[0]
    try:
        result = import_csv(payload, people, user.scope, current)
    except CsvFileError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    for document in result.documents:
        check_signable(document, clock.now())
    saved = [] if dry_run else [_save(d, store, ingest, clock, user.username)
                                for d in result.documents]
    return CsvImportReport(
        rows=result.rows, accepted=result.accepted, dry_run=dry_run, plans=saved,
        rejected=[RejectedRowOut(line=r.line, visit_id=r.visit_id, column=r.column,
                                 reason=r.reason) for r in result.rejected],
    )


@router.get("/{gateway_id}")
def current_plan(gateway_id: str, store: StoreDep, user: CareReader,
                 allowed: AllowedGateways) -> dict[str, Any]:
    current = store.current_plan(gateway_id) if visible(allowed, gateway_id) else None
    if current is None:
        raise HTTPException(status_code=404, detail=f"no plan for gateway {gateway_id!r}")
    document, plan = current
    return {"version": plan.version, "document": document.model_dump(mode="json")}
