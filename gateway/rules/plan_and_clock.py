"""Inputs about the household rather than a visit: a new plan (visit states carried over
by id) and the clock's state (nothing time-based is raised on a clock not known good).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gateway.rules.draft import Draft
from gateway.rules.inputs import ClockStatus, PlanUpdate
from gateway.rules.state import (
    PlanIndex,
    reconcile_visits,
)


def plan_update(d: Draft, update: PlanUpdate, now: datetime) -> None:
    d.plan = update.plan
    d.index = PlanIndex.build(update.plan)
    d.visits = reconcile_visits(d.index, d.visits, known_since=now)



def clock_status(d: Draft, status: ClockStatus, now: datetime) -> None:
    if status.ok == d.clock_ok:
        return
    d.clock_ok = status.ok
    if not status.ok:
        # Household timers started with a good clock are dropped: nothing time-based is
        # raised on a clock that is not known good (central covers the household).
        d.keysafe_checks.clear()
        d.door_check = None
        d.contacts = {k: replace(c, watch=False) for k, c in d.contacts.items()}
