"""Webhook subscriptions (per organisation: URL, secret, which alert events) and the
delivery log of every attempt."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, HttpUrl

from central.deps import ActorDep, ClockDep, StoreDep

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


AlertEvent = Literal["raised", "escalated"]


def _every_event() -> list[AlertEvent]:
    return ["raised", "escalated"]


class Subscription(BaseModel):
    organisation_id: str = Field("default", min_length=1, max_length=64)
    url: HttpUrl
    secret: str = Field(min_length=16, max_length=256)
    events: list[AlertEvent] = Field(default_factory=_every_event, min_length=1)


@router.post("", status_code=201)
def add(subscription: Subscription, store: StoreDep, clock: ClockDep,
        actor: ActorDep) -> dict[str, Any]:
    sub_id = store.add_webhook(subscription.organisation_id, str(subscription.url),
                               subscription.secret, ",".join(sorted(set(subscription.events))),
                               clock.now(), actor)
    return {"id": sub_id}


@router.get("/deliveries")
def deliveries(store: StoreDep, alert: int | None = None) -> list[dict[str, Any]]:
    """Every delivery attempt's outcome (state, attempts, last status or error)."""
    return store.deliveries(alert)
