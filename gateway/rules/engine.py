"""The visit-rules engine's entry points: :func:`initial_state` and :func:`step`.

This module owns the order of events within one step, which is what makes the engine
deterministic: first every deadline at or before ``now`` fires, in time order (ties broken
by rule, then visit, carer and sensor), each output stamped with its own deadline; then the
input, if any, is handled at ``now``; then any deadline the input made due fires; then the
earliest pending deadline (always after ``now``) is returned. The
engine never reads the wall clock: ``now`` is given by the caller (the daemon's clock, or a
replayed event's time), and the caller wakes the engine at ``next_deadline`` by calling
``step(state, None, next_deadline)``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.rules.deadlines import collect_deadlines, earliest_deadline
from gateway.rules.draft import Draft
from gateway.rules.inputs import EngineInput
from gateway.rules.outputs import RuleOutput
from gateway.rules.state import HouseholdState, PlanIndex, reconcile_visits
from gateway.rules.transitions import INPUT_TRIGGERS, TRANSITIONS
from homecall.plan import GatewayPlan


def initial_state(plan: GatewayPlan | None = None, clock_ok: bool = True) -> HouseholdState:
    """A household with nothing recorded yet. Every visit of ``plan`` is live: its deadlines
    fire even if already past at the first step (central's backup detector relies on this).
    Visits that arrive later through a :class:`PlanUpdate` are only live from that moment.
    """
    index = PlanIndex.build(plan)
    return HouseholdState(
        plan=plan,
        clock_ok=clock_ok,
        visits=reconcile_visits(index, {}, known_since=None),
        index=index,
    )


def step(
    state: HouseholdState, input: EngineInput | None, now: datetime
) -> tuple[HouseholdState, list[RuleOutput], datetime | None]:
    """Advance the household to ``now`` and apply ``input``.

    Returns the new state, the outputs to journal (in order) and the earliest future time
    at which the engine has something to decide (None: nothing pending).
    """
    if now.tzinfo is None:
        raise ValueError("step() needs an aware UTC time")
    now = now.astimezone(UTC)
    draft = Draft.from_state(state)
    _fire_due(draft, now)
    if input is not None:
        trigger = INPUT_TRIGGERS.get(type(input))
        if trigger is None:
            raise TypeError(f"the rules engine does not take {type(input).__name__}")
        TRANSITIONS[trigger].handler(draft, input, now)
        # The input may have made deadlines due (a good clock again, a changed window, a
        # zero-minute threshold): they fire now, still stamped with their own time.
        _fire_due(draft, now)
    upcoming = earliest_deadline(draft)
    return draft.freeze(), draft.outputs, None if upcoming is None else upcoming.at


def _fire_due(draft: Draft, now: datetime) -> None:
    """Fire every deadline <= now, earliest first. Each handler consumes its deadline."""
    while True:
        due = sorted(collect_deadlines(draft, until=now))
        if not due:
            return
        for deadline in due:
            TRANSITIONS[f"deadline:{deadline.kind}"].handler(draft, deadline, now)


def next_deadline(state: HouseholdState) -> datetime | None:
    """The earliest pending deadline of ``state`` (which may already be past)."""
    upcoming = earliest_deadline(Draft.from_state(state))
    return None if upcoming is None else upcoming.at
