"""Every transition of the visit-rules engine, in one table.

This module owns what happens on each trigger: an input (tag read, door/key-safe change,
button, plan update, clock status) or a deadline (visit late, visit missed, double-up
incomplete, departure missing, key safe unexpected, key safe left open, door left open).
:data:`TRANSITIONS` maps each trigger to its handler and the outputs it may produce;
:data:`VISIT_LIFECYCLE` (:mod:`gateway.rules.lifecycle`) is the status machine of a single
visit. Both tables are the reference: ``docs/rules.md`` describes them for care managers.
The handlers are grouped by what they decide: :mod:`~gateway.rules.arrival`,
:mod:`~gateway.rules.departure`, :mod:`~gateway.rules.deadlines`,
:mod:`~gateway.rules.sensors` and :mod:`~gateway.rules.plan_and_clock`.

Handlers work on a :class:`Draft` (a private mutable copy of the state) and append
:class:`RuleOutput` values to it; :mod:`gateway.rules.engine` makes the draft and freezes it.
Each handler for a deadline consumes that deadline (so it can never fire twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.rules.arrival import DEBOUNCE_MAX_TAGS, tag_read
from gateway.rules.deadlines import (
    departure_missing,
    door_left_open,
    double_up_incomplete,
    keysafe_left_open,
    keysafe_unexpected,
    visit_late,
    visit_missed,
)
from gateway.rules.draft import Draft
from gateway.rules.inputs import ClockStatus, PlanUpdate
from gateway.rules.lifecycle import FINAL_STATUSES, VISIT_LIFECYCLE
from gateway.rules.plan_and_clock import clock_status, plan_update
from gateway.rules.sensors import button_press, contact_change
from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.wire import EventType

__all__ = ["DEBOUNCE_MAX_TAGS", "FINAL_STATUSES", "INPUT_TRIGGERS", "TRANSITIONS",
           "VISIT_LIFECYCLE", "Transition"]

Handler = Callable[[Draft, Any, datetime], None]


@dataclass(frozen=True, slots=True)
class Transition:
    handler: Handler
    emits: tuple[EventType, ...]
    time_based: bool  # suppressed while the clock is not known good


#: trigger -> (handler, outputs it may produce, time-based?). Inputs are named after their
#: type; deadlines are "deadline:<kind>".
TRANSITIONS: dict[str, Transition] = {
    "tag_read": Transition(
        tag_read,
        (
            EventType.ARRIVAL,
            EventType.DEPARTURE,
            EventType.CALL_OUTSIDE_TOLERANCE,
            EventType.NO_ACCESS,
            EventType.SHORT_VISIT,
            EventType.UNPLANNED_VISIT,
            EventType.UNKNOWN_TAG,
        ),
        False,
    ),
    "contact": Transition(contact_change, (), False),
    "button": Transition(button_press, (EventType.NO_ACCESS,), False),
    "plan_update": Transition(plan_update, (), False),
    "clock_status": Transition(clock_status, (), False),
    "deadline:visit_late": Transition(visit_late, (EventType.VISIT_LATE,), True),
    "deadline:visit_missed": Transition(visit_missed, (EventType.VISIT_MISSED,), True),
    "deadline:double_up_incomplete": Transition(
        double_up_incomplete, (EventType.DOUBLE_UP_INCOMPLETE,), True
    ),
    "deadline:departure_missing": Transition(
        departure_missing, (EventType.DEPARTURE_MISSING,), True
    ),
    "deadline:keysafe_unexpected": Transition(
        keysafe_unexpected, (EventType.KEYSAFE_UNEXPECTED,), True
    ),
    "deadline:keysafe_left_open": Transition(
        keysafe_left_open, (EventType.KEYSAFE_LEFT_OPEN,), True
    ),
    "deadline:door_left_open": Transition(door_left_open, (EventType.DOOR_LEFT_OPEN,), True),
}

INPUT_TRIGGERS: dict[type, str] = {
    TagRead: "tag_read",
    ContactChange: "contact",
    ButtonPress: "button",
    PlanUpdate: "plan_update",
    ClockStatus: "clock_status",
}
