"""Deadlines: when each one falls due (collected from the draft, earliest first) and what
each decides when it fires (visit late, visit missed, double-up incomplete, departure
missing, key safe unexpected or left open, door left open). Each handler consumes its
deadline, so none can fire twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.rules.draft import Draft
from gateway.rules.state import (
    Attendance,
)
from gateway.rules.windows import VisitTimes, iso
from homecall.wire import EventType


@dataclass(frozen=True, order=True, slots=True)
class Deadline:
    at: datetime
    order: int
    kind: str
    visit_id: str = ""
    carer_id: str = ""
    sensor: str = ""


DEADLINE_KINDS: tuple[str, ...] = (
    "visit_late",
    "visit_missed",
    "double_up_incomplete",
    "departure_missing",
    "keysafe_unexpected",
    "keysafe_left_open",
    "door_left_open",
)
_ORDER = {kind: i for i, kind in enumerate(DEADLINE_KINDS)}


def _deadline(at: datetime, kind: str, **kw: str) -> Deadline:
    return Deadline(at=at, order=_ORDER[kind], kind=kind, **kw)


def expected_departure(times: VisitTimes, attendance: Attendance) -> datetime:
    """When a checked-in carer should have tapped out: the later of the planned end and
    arrival + planned duration (so a late arrival is not chased at once)."""
    return max(times.planned_end, attendance.arrived_at + timedelta(minutes=times.planned_min))


def collect_deadlines(d: Draft, until: datetime | None = None) -> list[Deadline]:
    """The pending deadlines at or before ``until`` (all of them if None); none while the
    clock is not known good."""
    if not d.clock_ok:
        return []
    found = _attendance_and_household_deadlines(d)
    found += _plan_deadlines(d, until, shrink=False)
    if until is not None:
        found = [dl for dl in found if dl.at <= until]
    return found


def earliest_deadline(d: Draft) -> Deadline | None:
    """The earliest pending deadline (scans the plan only as far as it has to)."""
    if not d.clock_ok:
        return None
    found = _attendance_and_household_deadlines(d)
    bound = min(found).at if found else None
    found += _plan_deadlines(d, bound, shrink=True)
    return min(found) if found else None


def _plan_deadlines(d: Draft, bound: datetime | None, *, shrink: bool) -> list[Deadline]:
    """visit_late / visit_missed deadlines, scanning visits in late-deadline order and
    stopping once a visit's late deadline is past ``bound`` (its missed one is later still).
    With ``shrink`` the bound tightens to the earliest deadline found so far."""
    found: list[Deadline] = []
    for visit_id in d.index.by_late:
        times = d.index.times[visit_id]
        if bound is not None and times.late_at > bound:
            break
        vs = d.visits.get(visit_id)
        if (
            vs is None
            or vs.attendances
            or vs.status != "planned"
            or times.cancelled
            or not vs.in_plan
        ):
            continue
        since = vs.known_since
        if "visit_late" not in vs.alerts and (since is None or times.late_at >= since):
            found.append(_deadline(times.late_at, "visit_late", visit_id=visit_id))
            if shrink and (bound is None or times.late_at < bound):
                bound = times.late_at
        if "visit_missed" not in vs.alerts and (since is None or times.missed_at >= since):
            found.append(_deadline(times.missed_at, "visit_missed", visit_id=visit_id))
            if shrink and (bound is None or times.missed_at < bound):
                bound = times.missed_at
    return found


def _attendance_and_household_deadlines(d: Draft) -> list[Deadline]:
    found: list[Deadline] = []
    for visit_id, vs in d.visits.items():
        if not vs.attendances or not vs.in_plan or vs.status == "cancelled":
            continue
        times = d.index.times.get(visit_id)
        if times is None or times.cancelled:
            continue
        if (
            times.carers_required > 1
            and "double_up_incomplete" not in vs.alerts
            and len(vs.carers_arrived) < times.carers_required
            and vs.attendances[0].clock_ok
            and vs.status != "no_access"
        ):
            at = vs.attendances[0].arrived_at + timedelta(
                minutes=times.policy.double_up_wait_min
            )
            found.append(_deadline(at, "double_up_incomplete", visit_id=visit_id))
        for a in vs.attendances:
            if a.open and a.clock_ok and f"departure_missing:{a.carer_id}" not in vs.alerts:
                at = expected_departure(times, a) + timedelta(
                    minutes=times.policy.departure_missing_min
                )
                found.append(
                    _deadline(at, "departure_missing", visit_id=visit_id, carer_id=a.carer_id)
                )
    for check in d.keysafe_checks:
        found.append(_deadline(check.due, "keysafe_unexpected", sensor=check.sensor))
    policy = d.index.policy
    for contact in d.contacts.values():
        if contact.kind == "keysafe" and contact.watch:
            at = contact.since + timedelta(minutes=policy.keysafe_left_open_min)
            found.append(_deadline(at, "keysafe_left_open", sensor=contact.sensor))
    if d.door_check is not None:
        found.append(_deadline(d.door_check.due, "door_left_open"))
    return found



def visit_late(d: Draft, dl: Deadline, now: datetime) -> None:
    times = d.index.times[dl.visit_id]
    d.raise_visit_alert(
        EventType.VISIT_LATE,
        dl.at,
        dl.visit_id,
        data={
            "window_start": iso(times.window_start),
            "window_end": iso(times.window_end),
            "planned_start": iso(times.planned_start),
            "tolerance": times.tolerance_source,
            "agreed_window": times.agreed,
        },
    )


def visit_missed(d: Draft, dl: Deadline, now: datetime) -> None:
    times = d.index.times[dl.visit_id]
    d.raise_visit_alert(
        EventType.VISIT_MISSED,
        dl.at,
        dl.visit_id,
        trigger="visit_missed",
        data={
            "window_start": iso(times.window_start),
            "window_end": iso(times.window_end),
            "planned_start": iso(times.planned_start),
            "incident_threshold_min": times.policy.incident_threshold_min,
            "incident_record_required": True,
        },
    )


def double_up_incomplete(d: Draft, dl: Deadline, now: datetime) -> None:
    times = d.index.times[dl.visit_id]
    vs = d.visits[dl.visit_id]
    d.raise_visit_alert(
        EventType.DOUBLE_UP_INCOMPLETE,
        dl.at,
        dl.visit_id,
        data={
            "carers_required": times.carers_required,
            "carers_arrived": len(vs.carers_arrived),
            "first_arrival_at": iso(vs.attendances[0].arrived_at),
            "wait_min": times.policy.double_up_wait_min,
        },
    )


def departure_missing(d: Draft, dl: Deadline, now: datetime) -> None:
    times = d.index.times[dl.visit_id]
    vs = d.visits[dl.visit_id]
    attendance = next(a for a in vs.attendances if a.carer_id == dl.carer_id and a.open)
    d.raise_visit_alert(
        EventType.DEPARTURE_MISSING,
        dl.at,
        dl.visit_id,
        key=f"departure_missing:{dl.carer_id}",
        carer_id=dl.carer_id,
        data={
            "arrived_at": iso(attendance.arrived_at),
            "expected_departure": iso(expected_departure(times, attendance)),
            "planned_min": times.planned_min,
        },
    )


def keysafe_unexpected(d: Draft, dl: Deadline, now: datetime) -> None:
    check = next(c for c in d.keysafe_checks if c.sensor == dl.sensor and c.due == dl.at)
    d.keysafe_checks.remove(check)
    d.emit(
        EventType.KEYSAFE_UNEXPECTED,
        dl.at,
        data={
            "sensor": check.sensor,
            "opened_at": iso(check.opened_at),
            "tap_window_min": d.index.policy.keysafe_tap_window_min,
        },
    )


def keysafe_left_open(d: Draft, dl: Deadline, now: datetime) -> None:
    key = f"keysafe:{dl.sensor}"
    contact = d.contacts[key]
    d.contacts[key] = replace(contact, watch=False)
    d.emit(
        EventType.KEYSAFE_LEFT_OPEN,
        dl.at,
        data={
            "sensor": contact.sensor,
            "opened_at": iso(contact.since),
            "open_min": d.index.policy.keysafe_left_open_min,
        },
    )


def door_left_open(d: Draft, dl: Deadline, now: datetime) -> None:
    check = d.door_check
    d.door_check = None
    if check is None or d.anyone_checked_in():
        return
    open_doors = sorted(c.sensor for c in d.contacts.values() if c.kind == "door")
    if open_doors:
        d.emit(
            EventType.DOOR_LEFT_OPEN,
            dl.at,
            data={
                "sensors": open_doors,
                "last_departure_at": iso(check.departed_at),
                "after_min": d.index.policy.door_left_open_min,
            },
        )
