"""Inputs the visit-rules engine accepts, besides device observations.

The engine's full input type is :data:`EngineInput`: a tag read, a contact change or a
button press (from ``homecall.observations``), a new plan, or a change in whether the
gateway's clock is known good. A deadline firing is not an input: the caller calls
``step(state, None, now)`` when ``now`` reaches the ``next_deadline`` the engine returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.plan import GatewayPlan


@dataclass(frozen=True, slots=True)
class PlanUpdate:
    """A new plan is in force from now on; attendances already recorded are kept."""

    plan: GatewayPlan


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """Whether the gateway's wall clock is known good (NTP-synchronised)."""

    ok: bool


EngineInput = TagRead | ContactChange | ButtonPress | PlanUpdate | ClockStatus
