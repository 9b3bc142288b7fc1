"""What the visit-rules engine decides: events to journal and the answer to give a carer.

Every output becomes one journalled event (``homecall.wire.EventEnvelope``) with the same
type, time, ids and data. ``feedback`` is set on the outputs that answer a tap, so the
daemon can light the reader's LED: ``accepted`` (arrival/departure recorded, green),
``unplanned`` (recorded but matched no visit, amber), ``rejected`` (unknown tag, red).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from homecall.wire import EventType, Severity

Feedback = Literal["accepted", "unplanned", "rejected"]


@dataclass(frozen=True, slots=True)
class RuleOutput:
    type: EventType
    time: datetime  # UTC; for deadline alerts, the deadline itself (deterministic)
    severity: Severity | None = None
    visit_id: str | None = None
    service_user_id: str | None = None
    carer_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    feedback: Feedback | None = None
