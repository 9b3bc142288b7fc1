"""An organisation's escalation policy: how long an alert of each severity may wait for an
acknowledgement before it goes to the next tier, the tiers and their hours, and how often
the last tier is reminded. Staff who read alerts may read it; a manager sets their own
organisation's (an admin any), audited. Until one is set the defaults apply (critical 5 min,
high 15, medium 60, low never)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from central.alerts.escalation import EscalationPolicy
from central.auth.deps import CareReader, UserManager
from central.auth.service import AuthUser
from central.deps import ClockDep, StoreDep

router = APIRouter(prefix="/api/organisations", tags=["escalation"])


def _own(user: AuthUser, organisation_id: str) -> None:
    if user.organisation_id is not None and user.organisation_id != organisation_id:
        raise HTTPException(status_code=404, detail=f"no organisation {organisation_id!r}")


@router.get("/{organisation_id}/escalation-policy")
def get_policy(organisation_id: str, store: StoreDep, user: CareReader) -> dict[str, Any]:
    _own(user, organisation_id)
    return store.escalation_policy(organisation_id).model_dump(mode="json")


@router.put("/{organisation_id}/escalation-policy")
def set_policy(organisation_id: str, policy: EscalationPolicy, store: StoreDep,
               clock: ClockDep, user: UserManager) -> dict[str, Any]:
    """Replace the policy (422 names what is wrong, e.g. an unknown severity)."""
    _own(user, organisation_id)
    store.set_escalation_policy(organisation_id, policy, clock.now(), user.username)
    return policy.model_dump(mode="json")
