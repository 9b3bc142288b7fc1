"""Webhook subscriptions (per organisation: URL, secret, which alert events) and the
delivery log of every attempt. A manager adds subscriptions for their own organisation and
sees its deliveries only; an admin without an organisation names the organisation and sees
every delivery. An organisation's webhooks hear only about its own households' alerts."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, HttpUrl

from central.auth.deps import UserManager
from central.deps import ClockDep, StoreDep

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


AlertEvent = Literal["raised", "escalated"]


def _every_event() -> list[AlertEvent]:
    return ["raised", "escalated"]


class Subscription(BaseModel):
    organisation_id: str | None = Field(
        None, min_length=1, max_length=64,
        description="the organisation (default: the caller's; only an admin may name another)")
    url: HttpUrl
    secret: str = Field(min_length=16, max_length=256)
    events: list[AlertEvent] = Field(default_factory=_every_event, min_length=1)


@router.post("", status_code=201)
def add(subscription: Subscription, store: StoreDep, clock: ClockDep,
        user: UserManager) -> dict[str, Any]:
    organisation = subscription.organisation_id or user.organisation_id
    if organisation is None:
        raise HTTPException(status_code=422, detail="organisation_id: required for an admin "
                            "without an organisation")
    if user.organisation_id is not None and organisation != user.organisation_id:
        raise HTTPException(status_code=403, detail="you may add webhooks for your own "
                            "organisation only")
    sub_id = store.add_webhook(organisation, str(subscription.url), subscription.secret,
                               ",".join(sorted(set(subscription.events))), clock.now(),
                               user.username)
    return {"id": sub_id}


@router.get("/deliveries")
def deliveries(store: StoreDep, user: UserManager,
               alert: int | None = None) -> list[dict[str, Any]]:
    """Every delivery attempt's outcome (state, attempts, last status or error)."""
    return store.deliveries(alert, organisation_id=user.organisation_id)
