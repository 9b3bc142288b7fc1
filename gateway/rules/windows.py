"""Visit windows: turning a plan's local wall times into the UTC instants the rules use.

This module owns every time calculation that depends on the plan: local → UTC conversion
(DST-correct), the call tolerance (the plan's window, else the organisation's system
tolerance around the planned start), the agreed-later exception, the match horizon, and
punctuality (on time / early / late, whole minutes outside the window).

DST decisions (Europe/London, and any other zone the plan names):

* a local time that does not exist (spring forward, e.g. 01:30 on 2026-03-29) is shifted
  forward by the length of the gap: 01:30 is read as 02:30 BST (01:30Z);
* a local time that exists twice (fall back, e.g. 01:30 on 2026-10-25) is the FIRST
  occurrence: 01:30 BST (00:30Z).

Windows are closed intervals ``[start, end]``: an arrival exactly at either edge is on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from homecall.plan import GatewayPlan, Policy, Visit

AgreedKind = Literal["none", "before_start", "after_start"]
Punctuality = Literal["on_time", "early", "late"]

_MINUTE = timedelta(minutes=1)


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_to_utc(local: datetime, timezone: str) -> datetime:
    """Convert a naive local wall time to aware UTC (nonexistent → forward, ambiguous → first).

    ``fold=0`` gives exactly these two choices in :mod:`zoneinfo`: a time in the spring gap is
    read with the offset in force before the change (so it lands one gap-length later), and a
    repeated autumn time is read with the offset of its first occurrence.
    """
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=_zone(timezone), fold=0).astimezone(UTC)


def _window_utc(pair: tuple[datetime, datetime], timezone: str) -> tuple[datetime, datetime]:
    start = local_to_utc(pair[0], timezone)
    end = local_to_utc(pair[1], timezone)
    if end <= start:
        # Only possible when the end falls in a DST gap/overlap that reorders the two
        # instants; keep the window's wall-clock length rather than invert it.
        end = start + max(pair[1] - pair[0], _MINUTE)
    return start, end


@dataclass(frozen=True, slots=True)
class VisitTimes:
    """Everything time-related the rules need about one visit, in UTC."""

    visit_id: str
    service_user_id: str
    planned_start: datetime
    planned_end: datetime
    planned_min: int
    # The window that drives matching and the late/missed deadlines.
    window_start: datetime
    window_end: datetime
    # The window punctuality and call_outside_tolerance are measured against.
    ref_start: datetime
    ref_end: datetime
    original_start: datetime
    original_end: datetime
    tolerance_source: Literal["plan", "system"]
    agreed: AgreedKind
    horizon_start: datetime
    horizon_end: datetime
    policy: Policy
    cancelled: bool
    carers_required: int
    carers: tuple[str, ...]
    late_at: datetime  # visit_late fires here: the window end
    missed_at: datetime  # visit_missed fires here: window end + incident threshold

    def in_horizon(self, now: datetime) -> bool:
        return self.horizon_start <= now <= self.horizon_end

    def distance(self, now: datetime) -> timedelta:
        """How far ``now`` is from the window (zero inside it)."""
        if now < self.window_start:
            return self.window_start - now
        if now > self.window_end:
            return now - self.window_end
        return timedelta(0)


def visit_times(plan: GatewayPlan, visit: Visit, policy: Policy | None = None) -> VisitTimes:
    """Compute a visit's windows. ``policy`` defaults to ``plan.policy_for(visit)``."""
    pol = policy if policy is not None else plan.policy_for(visit)
    tz = plan.timezone
    start = local_to_utc(visit.start, tz)
    end = start + timedelta(minutes=visit.duration_min)
    if visit.window is not None:
        ows, owe = _window_utc(visit.window, tz)
        source: Literal["plan", "system"] = "plan"
    else:
        ows = start - timedelta(minutes=pol.system_tolerance_before_min)
        owe = start + timedelta(minutes=pol.system_tolerance_after_min)
        if owe <= ows:
            owe = ows + _MINUTE
        source = "system"
    ws, we, rs, re_ = ows, owe, ows, owe
    agreed: AgreedKind = "none"
    if visit.agreed_window is not None and visit.agreed_at is not None:
        aws, awe = _window_utc(visit.agreed_window, tz)
        ws, we = aws, awe
        if local_to_utc(visit.agreed_at, tz) < ows:
            agreed = "before_start"
            rs, re_ = aws, awe
        else:
            agreed = "after_start"
    return VisitTimes(
        visit_id=visit.id,
        service_user_id=visit.service_user,
        planned_start=start,
        planned_end=end,
        planned_min=visit.duration_min,
        window_start=ws,
        window_end=we,
        ref_start=rs,
        ref_end=re_,
        original_start=ows,
        original_end=owe,
        tolerance_source=source,
        agreed=agreed,
        horizon_start=ws - timedelta(minutes=pol.match_before_min),
        horizon_end=we + timedelta(minutes=pol.match_after_min),
        policy=pol,
        cancelled=visit.status == "cancelled",
        carers_required=visit.carers_required,
        carers=visit.carers,
        late_at=we,
        missed_at=we + timedelta(minutes=pol.incident_threshold_min),
    )


def punctuality(at: datetime, start: datetime, end: datetime) -> tuple[Punctuality, int]:
    """Classify an arrival against ``[start, end]``; minutes outside are whole, rounded down."""
    if at < start:
        return "early", int((start - at).total_seconds() // 60)
    if at > end:
        return "late", int((at - end).total_seconds() // 60)
    return "on_time", 0


def outside_by_more_than(at: datetime, start: datetime, end: datetime, minutes: int) -> bool:
    """True if ``at`` is strictly more than ``minutes`` before ``start`` or after ``end``."""
    limit = timedelta(minutes=minutes)
    return at < start - limit or at > end + limit


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a ``Z`` suffix (the wire's format)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
