"""One alert per (household, visit, type, sub-key), whichever side raised it first.

This module owns :class:`AlertKey` (the engine's own alert key: the type, plus the carer for
the per-carer types ``departure_missing`` and ``short_visit``), :class:`DedupedAlert` (the
single alert with every side's raise recorded on it) and :func:`merge_raise`, the pure rule
the storage layer applies to each raise: the first raise creates the alert (its
``raised_by`` is that side), a raise by the other side is recorded on it, and the same side
raising again (a replay) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

Side = Literal["gateway", "central"]
MergeResult = Literal["created", "recorded", "duplicate"]

#: Alert types the engine raises once per carer, not once per visit.
PER_CARER_TYPES: frozenset[str] = frozenset({"departure_missing", "short_visit"})


@dataclass(frozen=True, slots=True, order=True)
class AlertKey:
    household_id: str
    visit_id: str
    type: str
    sub: str = ""  # the carer id for PER_CARER_TYPES

    @classmethod
    def of(cls, household_id: str, visit_id: str, alert_type: str,
           carer_id: str | None = None) -> AlertKey:
        sub = (carer_id or "") if alert_type in PER_CARER_TYPES else ""
        return cls(household_id, visit_id, alert_type, sub)


@dataclass(frozen=True, slots=True)
class SideRaise:
    side: Side
    raised_at: datetime  # the alert's own time (the deadline, for time-based alerts)
    received_at: datetime  # when central stored this side's raise
    event_seq: int | None = None  # the gateway's seq, for the gateway's raise


@dataclass(frozen=True, slots=True)
class DedupedAlert:
    key: AlertKey
    raised_by: Side  # the side whose raise created the alert
    received_at: datetime  # when staff could first see it
    raises: tuple[SideRaise, ...] = field(default_factory=tuple)

    def raise_of(self, side: Side) -> SideRaise | None:
        return next((r for r in self.raises if r.side == side), None)


def merge_raise(
    existing: DedupedAlert | None, key: AlertKey, raise_: SideRaise
) -> tuple[DedupedAlert, MergeResult]:
    """Apply one side's raise of ``key``."""
    if existing is None:
        return DedupedAlert(key=key, raised_by=raise_.side, received_at=raise_.received_at,
                            raises=(raise_,)), "created"
    if existing.key != key:
        raise ValueError(f"raise of {key} merged into the alert for {existing.key}")
    if existing.raise_of(raise_.side) is not None:
        return existing, "duplicate"
    return replace(existing, raises=(*existing.raises, raise_)), "recorded"
