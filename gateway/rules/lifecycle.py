"""The status machine of a single visit: which trigger moves a visit from which status to
which. ``docs/rules.md`` describes it for care managers."""

from __future__ import annotations

from typing import Literal

VisitStatus = Literal["planned", "in_progress", "completed", "missed", "no_access", "cancelled"]
VISIT_STATUSES: tuple[VisitStatus, ...] = (
    "planned",
    "in_progress",
    "completed",
    "missed",
    "no_access",
    "cancelled",
)

#: (status, trigger) -> new status. A pair absent from the table leaves the status as it is.
VISIT_LIFECYCLE: dict[tuple[VisitStatus, str], VisitStatus] = {
    ("planned", "arrival"): "in_progress",
    ("missed", "arrival"): "in_progress",  # late arrival: visit_missed is superseded
    ("in_progress", "arrival"): "in_progress",  # another carer of a double-up
    ("completed", "arrival"): "in_progress",  # double-up: second carer after the first left
    ("in_progress", "departure"): "in_progress",  # another carer is still checked in
    ("in_progress", "last_departure"): "completed",
    ("planned", "visit_missed"): "missed",
    ("planned", "no_access"): "no_access",
    ("missed", "no_access"): "no_access",
    ("in_progress", "no_access"): "no_access",
    ("completed", "no_access"): "no_access",
    ("planned", "cancel"): "cancelled",
    ("missed", "cancel"): "cancelled",  # cancelled after the fact: the alert stays recorded
    ("cancelled", "reinstate"): "planned",
}

FINAL_STATUSES: frozenset[VisitStatus] = frozenset(
    {"completed", "missed", "no_access", "cancelled"}
)


def advance(status: VisitStatus, trigger: str) -> VisitStatus:
    return VISIT_LIFECYCLE.get((status, trigger), status)
