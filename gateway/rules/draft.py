"""The working copy a step mutates: a :class:`Draft` of the household state, to which
handlers append :class:`RuleOutput` values; :mod:`gateway.rules.engine` makes it and freezes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.rules.lifecycle import advance
from gateway.rules.outputs import Feedback, RuleOutput
from gateway.rules.state import (
    ContactState,
    DoorCheck,
    HouseholdState,
    KeysafeCheck,
    PlanIndex,
    VisitState,
)
from homecall.plan import GatewayPlan
from homecall.wire import ALERT_SEVERITY, EventType


@dataclass
class Draft:
    """A mutable working copy of a :class:`HouseholdState` for the length of one step."""

    plan: GatewayPlan | None
    index: PlanIndex
    clock_ok: bool
    visits: dict[str, VisitState]
    contacts: dict[str, ContactState]
    last_door_at: datetime | None
    last_keysafe_at: datetime | None
    last_carer_tap_at: datetime | None
    tag_seen: dict[str, datetime]
    keysafe_checks: list[KeysafeCheck]
    door_check: DoorCheck | None
    outputs: list[RuleOutput] = field(default_factory=list)

    @classmethod
    def from_state(cls, state: HouseholdState) -> Draft:
        return cls(
            plan=state.plan,
            index=state.index,
            clock_ok=state.clock_ok,
            visits=dict(state.visits),
            contacts=dict(state.contacts),
            last_door_at=state.last_door_at,
            last_keysafe_at=state.last_keysafe_at,
            last_carer_tap_at=state.last_carer_tap_at,
            tag_seen=dict(state.tag_seen),
            keysafe_checks=list(state.keysafe_checks),
            door_check=state.door_check,
        )

    def freeze(self) -> HouseholdState:
        return HouseholdState(
            plan=self.plan,
            clock_ok=self.clock_ok,
            visits=dict(self.visits),
            contacts=dict(self.contacts),
            last_door_at=self.last_door_at,
            last_keysafe_at=self.last_keysafe_at,
            last_carer_tap_at=self.last_carer_tap_at,
            tag_seen=dict(self.tag_seen),
            keysafe_checks=tuple(self.keysafe_checks),
            door_check=self.door_check,
            index=self.index,
        )

    def anyone_checked_in(self) -> bool:
        return any(a.open for v in self.visits.values() for a in v.attendances)

    def emit(
        self,
        event_type: EventType,
        time: datetime,
        *,
        visit: VisitState | None = None,
        carer_id: str | None = None,
        data: dict[str, Any] | None = None,
        feedback: Feedback | None = None,
    ) -> None:
        self.outputs.append(
            RuleOutput(
                type=event_type,
                time=time,
                severity=ALERT_SEVERITY.get(event_type),
                visit_id=None if visit is None else visit.visit_id,
                service_user_id=None if visit is None else visit.service_user_id,
                carer_id=carer_id,
                data=data or {},
                feedback=feedback,
            )
        )

    def raise_visit_alert(
        self,
        event_type: EventType,
        time: datetime,
        visit_id: str,
        *,
        key: str | None = None,
        carer_id: str | None = None,
        data: dict[str, Any] | None = None,
        trigger: str | None = None,
    ) -> bool:
        """Raise a visit alert once per key; move the visit's status if ``trigger`` says so."""
        vs = self.visits[visit_id]
        alert_key = key or event_type.value
        if alert_key in vs.alerts:
            return False
        status = vs.status if trigger is None else advance(vs.status, trigger)
        vs = replace(vs, alerts=vs.alerts | {alert_key}, status=status)
        self.visits[visit_id] = vs
        self.emit(event_type, time, visit=vs, carer_id=carer_id, data=data)
        return True
