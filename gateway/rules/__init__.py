"""The visit-rules engine: a pure function from (state, input, now) to
(state, outputs, next deadline) for one household.

It runs at the gateway and, as backup detection, at central; it imports no I/O
(no serial, MQTT, database or asyncio). Start at :mod:`gateway.rules.engine`; the rules
themselves are in the one table of :mod:`gateway.rules.transitions`.
"""

from gateway.rules.engine import initial_state, next_deadline, step
from gateway.rules.inputs import ClockStatus, EngineInput, PlanUpdate
from gateway.rules.lifecycle import VISIT_STATUSES, VisitStatus
from gateway.rules.outputs import RuleOutput
from gateway.rules.state import Attendance, HouseholdState, VisitState
from gateway.rules.transitions import FINAL_STATUSES, TRANSITIONS, VISIT_LIFECYCLE
from gateway.rules.windows import local_to_utc, punctuality, visit_times

__all__ = [
    "FINAL_STATUSES",
    "TRANSITIONS",
    "VISIT_LIFECYCLE",
    "VISIT_STATUSES",
    "Attendance",
    "ClockStatus",
    "EngineInput",
    "HouseholdState",
    "PlanUpdate",
    "RuleOutput",
    "VisitState",
    "VisitStatus",
    "initial_state",
    "local_to_utc",
    "next_deadline",
    "punctuality",
    "step",
    "visit_times",
]
