"""The alert desk: alerts for monitoring staff, most severe and oldest first, each worked
through the lifecycle (acknowledge, resolve with an outcome code and note, reopen by a
manager with a reason), with its audit trail, its visit's timeline and, for a missed,
out-of-tolerance or no-access visit, its incident record and no-response checklist.

Every route needs a staff login; staff see and work their own organisation's alerts
only (another organisation's alert is 404, as if absent). A move the lifecycle does not
allow is 409 with the reason; a resolution without a valid outcome is 422. The SQL lives
in :mod:`central.store` and :mod:`central.views`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from central.alerts import AlertDeskError
from central.alerts.actors import Actor
from central.alerts.incidents import (
    NO_RESPONSE_CHECKLIST,
    ContactDecision,
    IncidentError,
    IncidentRecord,
    PoliceDecision,
    SafeguardingDecision,
)
from central.alerts.lifecycle import (
    Acknowledge,
    Command,
    IllegalTransition,
    NotPermitted,
    Reopen,
    Resolve,
)
from central.alerts.outcomes import DEFAULT_OUTCOMES, InvalidOutcome, OutcomeCatalogue
from central.auth.deps import (
    AlertWorker,
    AllowedGateways,
    CareReader,
    DeskActor,
    ManagerActor,
)
from central.deps import AlertId, ClockDep, StoreDep
from central.store import NotFound, Superseded
from central.views import BadCursor, alert_changes, alert_detail, alert_page, stream_start

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertUpdate(BaseModel):
    """The simple status update (kept for scripts and the demo)."""

    status: Literal["acknowledged", "resolved"]
    outcome: str | None = Field(None, max_length=2000)


class ResolveBody(BaseModel):
    outcome: str = Field(min_length=1, max_length=48, description="an outcome code")
    note: str = Field(min_length=1, max_length=4000, description="what was done")


class ReopenBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class IncidentUpdate(BaseModel):
    """Fields of the incident record to set; each decision is recorded as made now by the
    caller (times given are when it happened)."""

    what_happened: str | None = Field(None, max_length=10_000)
    family_informed: bool | None = None
    family_informed_at: datetime | None = None
    family_contact: str = Field("", max_length=200)
    family_reason_not: str = Field("", max_length=1000)
    police_contacted: bool | None = None
    police_contacted_at: datetime | None = None
    police_reference: str = Field("", max_length=100)
    police_reason_not: str = Field("", max_length=1000)
    safeguarding_referral_made: bool | None = None
    safeguarding_reference: str = Field("", max_length=100)
    safeguarding_rationale: str = Field("", max_length=2000)


class ActionBody(BaseModel):
    what: str = Field(min_length=1, max_length=2000)
    at: datetime | None = Field(None, description="when it was done (default: now)")


class TickBody(BaseModel):
    note: str = Field("", max_length=2000)
    not_applicable_reason: str | None = Field(None, max_length=2000)


class RegulatorBody(BaseModel):
    required: bool
    rationale: str = Field(min_length=1, max_length=2000)
    notified_at: datetime | None = None


class SignBody(BaseModel):
    note: str = Field("", max_length=2000)


def _conflict(err: Exception) -> HTTPException:
    if isinstance(err, NotFound):
        return HTTPException(status_code=404, detail=str(err))
    if isinstance(err, NotPermitted):
        return HTTPException(status_code=403, detail=err.reason)
    if isinstance(err, IllegalTransition):
        return HTTPException(status_code=409, detail=err.reason)
    if isinstance(err, InvalidOutcome):
        return HTTPException(status_code=422, detail=str(err))
    return HTTPException(status_code=409, detail=str(err))


@router.get("")
def alerts(
    store: StoreDep, user: CareReader, allowed: AllowedGateways, response: Response,
    gateway: str | None = None,
    status: str | None = None, type: str | None = None, severity: str | None = None,
    cursor: str | None = None, limit: int = Query(100, ge=1, le=500),
) -> list[dict[str, Any]]:
    """Alerts, most severe first then oldest first, filtered. When there are more, the
    ``X-Next-Cursor`` header holds the cursor for the next page (``?cursor=``)."""
    try:
        page, next_cursor = alert_page(store, gateway_id=gateway, alert_type=type,
                                       severity=severity, status=status, cursor=cursor,
                                       limit=limit, gateways=allowed)
    except BadCursor as err:
        raise HTTPException(status_code=400, detail=str(err)) from err
    if next_cursor:
        response.headers["X-Next-Cursor"] = next_cursor
    return page


@router.get("/stream")
async def stream(store: StoreDep, request: Request, user: CareReader,
                 allowed: AllowedGateways,
                 since: str | None = Query(None, pattern=r"^\d+:\d+$"),
                 max_events: int | None = Query(None, ge=1)) -> StreamingResponse:
    """Server-sent events of alert changes for the dashboard: ``new``, ``acknowledged``,
    ``escalated``, ``resolved`` (also by itself), ``superseded``, ``reopened``; each
    ``data:`` is JSON with the alert. Checked twice a second; a comment line every 15 s
    keeps proxies from closing it. Each event's ``id:`` is a position; a client that
    reconnects passes the last one as ``since`` (or the ``Last-Event-ID`` header) and misses
    nothing. ``max_events`` ends the stream after that many (scripts).
    Staff log in as for every route (the browser's session cookie is sent with
    ``EventSource``); only changes to the caller's organisation's alerts are sent."""
    resume = since or request.headers.get("last-event-id")
    if resume and ":" in resume:
        alert_pos, _, audit_pos = resume.partition(":")
        after_alert, after_audit = int(alert_pos), int(audit_pos)
    else:
        after_alert, after_audit = await asyncio.to_thread(stream_start, store)

    async def events() -> AsyncIterator[str]:
        nonlocal after_alert, after_audit
        sent = 0
        idle = 0.0
        while not await request.is_disconnected():
            changes, after_alert, after_audit = await asyncio.to_thread(
                alert_changes, store, after_alert, after_audit, gateways=allowed)
            for change in changes:
                yield (f"id: {after_alert}:{after_audit}\nevent: {change['change']}\n"
                       f"data: {json.dumps(change)}\n\n")
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            idle = 0.0 if changes else idle + 0.5
            if idle >= 15:
                idle = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(0.5)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.get("/outcomes")
def outcomes(user: CareReader, alert_type: str | None = None) -> list[dict[str, Any]]:
    """The outcome codes staff pick from (for one alert type, or all)."""
    listed = OutcomeCatalogue.default().for_type(alert_type) if alert_type else DEFAULT_OUTCOMES
    return [o.model_dump(mode="json") for o in listed]


@router.get("/{alert_id}")
def alert(alert_id: AlertId, store: StoreDep, user: CareReader,
          allowed: AllowedGateways) -> dict[str, Any]:
    """The alert with its audit trail, incident record and its visit's timeline."""
    found = alert_detail(store, alert_id, gateways=allowed)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id}")
    return found


def _move(store: StoreDep, alert_id: AlertId, command: Command, actor: Actor,
          now: datetime, allowed: frozenset[str] | None) -> dict[str, Any]:
    try:
        store.move_alert(alert_id, command, actor, now, gateways=allowed)
    except (NotFound, AlertDeskError) as err:
        raise _conflict(err) from err
    found = alert_detail(store, alert_id, gateways=allowed)
    assert found is not None
    return found


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: AlertId, store: StoreDep, clock: ClockDep,
                actor: DeskActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    return _move(store, alert_id, Acknowledge(), actor, clock.now(), allowed)


@router.post("/{alert_id}/resolve")
def resolve(alert_id: AlertId, body: ResolveBody, store: StoreDep, clock: ClockDep,
            actor: DeskActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    """Resolve with an outcome code and a note; a visit_missed, call_outside_tolerance or
    no_access alert also needs its incident record complete and signed off."""
    return _move(store, alert_id, Resolve(outcome=body.outcome, note=body.note), actor,
                 clock.now(), allowed)


@router.post("/{alert_id}/reopen")
def reopen(alert_id: AlertId, body: ReopenBody, store: StoreDep, clock: ClockDep,
           actor: ManagerActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    """Reopen a resolved alert (a manager only), with the reason."""
    return _move(store, alert_id, Reopen(reason=body.reason), actor, clock.now(), allowed)


@router.post("/{alert_id}")
def update_alert(
    alert_id: AlertId, update: AlertUpdate, store: StoreDep, clock: ClockDep, user: AlertWorker,
    allowed: AllowedGateways,
) -> dict[str, Any]:
    """The simple status update, mapped onto the lifecycle (see ``Store.update_alert``)."""
    try:
        store.update_alert(alert_id, update.status, update.outcome, clock.now(), user.username,
                           gateways=allowed)
    except Superseded as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    except (NotFound, AlertDeskError) as err:
        raise _conflict(err) from err
    return {"id": alert_id, "status": update.status}


# --------------------------------------------------------------------------- incidents


def _change(store: StoreDep, alert_id: AlertId, actor: Actor, now: datetime,
            allowed: frozenset[str] | None,
            change: Callable[[IncidentRecord], IncidentRecord]) -> dict[str, Any]:
    try:
        record = store.change_incident(alert_id, change, actor, now, gateways=allowed)
    except (NotFound, IncidentError, AlertDeskError, ValueError) as err:
        raise _conflict(err) from err
    return record.model_dump(mode="json")


@router.get("/{alert_id}/incident")
def incident(alert_id: AlertId, store: StoreDep, user: CareReader,
             allowed: AllowedGateways) -> dict[str, Any]:
    try:
        record = store.incident(alert_id, gateways=allowed)
    except NotFound as err:
        raise _conflict(err) from err
    if record is None:
        raise HTTPException(status_code=404, detail=f"alert {alert_id} has no incident record")
    return record.model_dump(mode="json")


@router.put("/{alert_id}/incident")
def update_incident(alert_id: AlertId, body: IncidentUpdate, store: StoreDep, clock: ClockDep,
                    actor: DeskActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    """Start the incident record (if none) and set the fields given."""
    now = clock.now()

    def change(record: IncidentRecord) -> IncidentRecord:
        update: dict[str, Any] = {}
        if body.what_happened is not None:
            update["what_happened"] = body.what_happened
        if body.family_informed is not None:
            update["family_contact"] = ContactDecision(
                informed=body.family_informed,
                at=(body.family_informed_at or now) if body.family_informed else None,
                by=actor.user_id, contact=body.family_contact,
                reason_not=body.family_reason_not)
        if body.police_contacted is not None:
            update["police"] = PoliceDecision(
                contacted=body.police_contacted,
                at=(body.police_contacted_at or now) if body.police_contacted else None,
                by=actor.user_id, reference=body.police_reference,
                reason_not=body.police_reason_not)
        if body.safeguarding_referral_made is not None:
            update["safeguarding"] = SafeguardingDecision(
                considered_at=now, by=actor.user_id,
                referral_made=body.safeguarding_referral_made,
                reference=body.safeguarding_reference,
                rationale=body.safeguarding_rationale or "(none given)")
        return record.model_copy(update=update)

    return _change(store, alert_id, actor, now, allowed, change)


@router.post("/{alert_id}/incident/actions")
def add_action(alert_id: AlertId, body: ActionBody, store: StoreDep, clock: ClockDep,
               actor: DeskActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    now = clock.now()
    return _change(store, alert_id, actor, now, allowed,
                   lambda r: r.add_action(actor, body.at or now, body.what))


@router.get("/{alert_id}/incident/checklist")
def checklist(alert_id: AlertId, user: CareReader) -> dict[str, Any]:
    """The no-response checklist's steps (ticks are on the incident record)."""
    return NO_RESPONSE_CHECKLIST.model_dump(mode="json")


@router.post("/{alert_id}/incident/checklist/{step}")
def tick_step(alert_id: AlertId, step: str, body: TickBody, store: StoreDep, clock: ClockDep,
              actor: DeskActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    """Tick one step of a no_access alert's checklist: recorded with the time and the user."""
    now = clock.now()
    return _change(store, alert_id, actor, now, allowed, lambda r: r.tick(
        step, actor, now, not_applicable_reason=body.not_applicable_reason, note=body.note))


@router.post("/{alert_id}/incident/regulator")
def decide_regulator(alert_id: AlertId, body: RegulatorBody, store: StoreDep, clock: ClockDep,
                     actor: ManagerActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    """The registered manager's decision on notifying the regulator (a manager only)."""
    now = clock.now()
    return _change(store, alert_id, actor, now, allowed, lambda r: r.decide_regulator(
        actor, now, required=body.required, rationale=body.rationale,
        notified_at=body.notified_at))


@router.post("/{alert_id}/incident/sign")
def sign(alert_id: AlertId, body: SignBody, store: StoreDep, clock: ClockDep,
         actor: ManagerActor,
            allowed: AllowedGateways) -> dict[str, Any]:
    """A manager's sign-off: the record is complete and the necessary action was taken."""
    now = clock.now()
    return _change(store, alert_id, actor, now, allowed, lambda r: r.sign(actor, now, body.note))
