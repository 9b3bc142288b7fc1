"""Every transition of the visit-rules engine, in one table.

This module owns what happens on each trigger: an input (tag read, door/key-safe change,
button, plan update, clock status) or a deadline (visit late, visit missed, double-up
incomplete, departure missing, key safe unexpected, key safe left open, door left open).
:data:`TRANSITIONS` maps each trigger to its handler and the outputs it may produce;
:data:`VISIT_LIFECYCLE` is the status machine of a single visit. Both tables are the
reference: ``docs/rules.md`` describes them for care managers.

Handlers work on a :class:`Draft` (a private mutable copy of the state) and append
:class:`RuleOutput` values to it; :mod:`gateway.rules.engine` makes the draft and freezes it.
Each handler for a deadline consumes that deadline (so it can never fire twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.rules.inputs import ClockStatus, PlanUpdate
from gateway.rules.matching import candidate_visits, is_repeat, resolve_carer, tag_key
from gateway.rules.outputs import Feedback, RuleOutput
from gateway.rules.state import (
    Attendance,
    ContactState,
    DoorCheck,
    HouseholdState,
    KeysafeCheck,
    PlanIndex,
    VisitState,
    VisitStatus,
)
from gateway.rules.windows import VisitTimes, iso, outside_by_more_than, punctuality
from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.plan import GatewayPlan
from homecall.tags import redact
from homecall.wire import ALERT_SEVERITY, EventType

# --------------------------------------------------------------------------- visit lifecycle

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


# --------------------------------------------------------------------------- working copy


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


# --------------------------------------------------------------------------- deadlines


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


def _visit_late(d: Draft, dl: Deadline, now: datetime) -> None:
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


def _visit_missed(d: Draft, dl: Deadline, now: datetime) -> None:
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


def _double_up_incomplete(d: Draft, dl: Deadline, now: datetime) -> None:
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


def _departure_missing(d: Draft, dl: Deadline, now: datetime) -> None:
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


def _keysafe_unexpected(d: Draft, dl: Deadline, now: datetime) -> None:
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


def _keysafe_left_open(d: Draft, dl: Deadline, now: datetime) -> None:
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


def _door_left_open(d: Draft, dl: Deadline, now: datetime) -> None:
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


# --------------------------------------------------------------------------- inputs


#: Distinct tags remembered for debouncing at most; a household has a handful of carers.
DEBOUNCE_MAX_TAGS = 64


def _tag_read(d: Draft, read: TagRead, now: datetime) -> None:
    debounce = d.index.policy.debounce_s
    key = tag_key(read.tag, "" if d.plan is None else d.plan.tag_salt)
    if is_repeat(d.tag_seen, key, now, debounce):
        d.tag_seen[key] = now  # sliding: a tag held on the reader stays one tap
        return
    keep = timedelta(seconds=debounce)
    d.tag_seen = {k: t for k, t in d.tag_seen.items() if timedelta(0) <= now - t < keep}
    d.tag_seen[key] = now
    while len(d.tag_seen) > DEBOUNCE_MAX_TAGS:
        # A flood of distinct tags (a fault or an attack, never carers) must not make every
        # step slower: forget the least recently seen (ties by key, so a restart agrees).
        del d.tag_seen[min(d.tag_seen, key=lambda k: (d.tag_seen[k], k))]
    carer_id, by_token = resolve_carer(d.plan, read)
    if carer_id is None:
        d.emit(
            EventType.UNKNOWN_TAG,
            now,
            data={
                "tag": redact(read.tag),
                "source": read.source,
                "reason": "no_plan" if d.plan is None else "not_in_plan",
                "clock_ok": d.clock_ok,
            },
            feedback="rejected",
        )
        return
    d.last_carer_tap_at = now
    d.keysafe_checks.clear()  # every pending check is within ±window of this tap
    checked_in = [
        vid for vid, vs in d.visits.items() if any(a.open and a.carer_id == carer_id
                                                   for a in vs.attendances)
    ]
    if checked_in:
        _depart(d, carer_id, checked_in, now, read, by_token)
        return
    matches = candidate_visits(d.index, d.visits, carer_id, now)
    if not matches:
        d.emit(
            EventType.UNPLANNED_VISIT,
            now,
            carer_id=carer_id,
            data={"source": read.source, "by_token": by_token, "clock_ok": d.clock_ok},
            feedback="unplanned",
        )
        return
    _arrive(d, carer_id, matches, now, read, by_token)


def _arrive(
    d: Draft, carer_id: str, visit_ids: list[str], now: datetime, read: TagRead, by_token: bool
) -> None:
    d.door_check = None
    for visit_id in visit_ids:
        times = d.index.times[visit_id]
        vs = d.visits[visit_id]
        policy = times.policy
        corroboration = timedelta(minutes=policy.corroboration_min)
        door_recent = d.last_door_at is not None and now - d.last_door_at <= corroboration
        keysafe_recent = (
            d.last_keysafe_at is not None and now - d.last_keysafe_at <= corroboration
        )
        first = not vs.attendances
        was_missed = "visit_missed" in vs.alerts
        kind, minutes = punctuality(now, times.ref_start, times.ref_end)
        attendance = Attendance(
            carer_id=carer_id,
            arrived_at=now,
            verified=door_recent or keysafe_recent,
            door_seen=door_recent,
            clock_ok=d.clock_ok,
        )
        vs = replace(
            vs,
            attendances=(*vs.attendances, attendance),
            status=advance(vs.status, "arrival"),
            punctuality=kind if first else vs.punctuality,
            minutes_outside_window=minutes if first else vs.minutes_outside_window,
        )
        d.visits[visit_id] = vs
        window = {
            "window_start": iso(times.ref_start),
            "window_end": iso(times.ref_end),
            "tolerance": times.tolerance_source,
            "agreed_window": times.agreed,
        }
        d.emit(
            EventType.ARRIVAL,
            now,
            visit=vs,
            carer_id=carer_id,
            data={
                "punctuality": kind,
                "minutes_outside_window": minutes,
                **window,
                "planned_start": iso(times.planned_start),
                "planned_min": times.planned_min,
                "carers_required": times.carers_required,
                "carers_arrived": len(vs.carers_arrived),
                "assigned": carer_id in times.carers,
                "verified": attendance.verified,
                "by_token": by_token,
                "source": read.source,
                "clock_ok": d.clock_ok,
            },
            feedback="accepted",
        )
        if not first:
            continue
        threshold = policy.incident_threshold_min
        outside = outside_by_more_than(now, times.ref_start, times.ref_end, threshold)
        if was_missed or (d.clock_ok and outside):
            d.raise_visit_alert(
                EventType.CALL_OUTSIDE_TOLERANCE,
                now,
                visit_id,
                carer_id=carer_id,
                data={
                    "arrived_at": iso(now),
                    "punctuality": kind,
                    "minutes_outside_window": minutes,
                    **window,
                    "incident_threshold_min": threshold,
                    "incident_record_required": True,
                    "supersedes": "visit_missed" if was_missed else None,
                    "clock_ok": d.clock_ok,
                },
            )


def _depart(
    d: Draft, carer_id: str, visit_ids: list[str], now: datetime, read: TagRead, by_token: bool
) -> None:
    for visit_id in visit_ids:
        vs = d.visits[visit_id]
        times = d.index.times.get(visit_id) if vs.in_plan else None
        index, attendance = next(
            (i, a) for i, a in enumerate(vs.attendances) if a.open and a.carer_id == carer_id
        )
        closed = replace(attendance, departed_at=now)
        attendances = (*vs.attendances[:index], closed, *vs.attendances[index + 1 :])
        still_in = any(a.open for a in attendances)
        vs = replace(
            vs,
            attendances=attendances,
            status=advance(vs.status, "departure" if still_in else "last_departure"),
        )
        d.visits[visit_id] = vs
        stay = now - attendance.arrived_at
        actual_min = int(stay.total_seconds() // 60)
        planned_min = None if times is None else times.planned_min
        d.emit(
            EventType.DEPARTURE,
            now,
            visit=vs,
            carer_id=carer_id,
            data={
                "arrived_at": iso(attendance.arrived_at),
                "actual_min": actual_min,
                "planned_min": planned_min,
                "verified": closed.verified,
                "by_token": by_token,
                "source": read.source,
                "clock_ok": d.clock_ok and attendance.clock_ok,
            },
            feedback="accepted",
        )
        if times is None or times.cancelled or vs.status == "no_access":
            continue
        if not (d.clock_ok and attendance.clock_ok):
            continue  # durations measured across a bad clock are not trusted
        policy = times.policy
        if stay <= timedelta(minutes=policy.no_access_departure_min) and not closed.door_seen:
            d.raise_visit_alert(
                EventType.NO_ACCESS,
                now,
                visit_id,
                carer_id=carer_id,
                trigger="no_access",
                data={
                    "reason": "departure_without_door",
                    "arrived_at": iso(attendance.arrived_at),
                    "departed_at": iso(now),
                    "actual_min": actual_min,
                    "incident_record_required": True,
                },
            )
        elif stay < timedelta(minutes=times.planned_min * policy.short_visit_ratio):
            d.raise_visit_alert(
                EventType.SHORT_VISIT,
                now,
                visit_id,
                key=f"short_visit:{carer_id}",
                carer_id=carer_id,
                data={
                    "arrived_at": iso(attendance.arrived_at),
                    "actual_min": actual_min,
                    "planned_min": times.planned_min,
                    "ratio": round(stay.total_seconds() / 60 / times.planned_min, 3),
                    "threshold_ratio": policy.short_visit_ratio,
                },
            )
    if d.clock_ok and not d.anyone_checked_in():
        due = now + timedelta(minutes=d.index.policy.door_left_open_min)
        d.door_check = DoorCheck(departed_at=now, due=due)


def _contact(d: Draft, change: ContactChange, now: datetime) -> None:
    key = f"{change.kind}:{change.sensor}"
    is_door = change.kind == "door"
    if is_door:
        d.last_door_at = now
    else:
        d.last_keysafe_at = now
    for visit_id, vs in d.visits.items():
        if not any(a.open for a in vs.attendances):
            continue
        times = d.index.times.get(visit_id)
        policy = d.index.policy if times is None else times.policy
        corroboration = timedelta(minutes=policy.corroboration_min)
        updated = tuple(
            replace(
                a,
                verified=a.verified or now - a.arrived_at <= corroboration,
                door_seen=a.door_seen or is_door,
            )
            if a.open
            else a
            for a in vs.attendances
        )
        if updated != vs.attendances:
            d.visits[visit_id] = replace(vs, attendances=updated)
    if not change.open:
        d.contacts.pop(key, None)
        return
    if key in d.contacts:
        return  # already open: a repeated "open" frame changes nothing
    d.contacts[key] = ContactState(
        kind=change.kind, sensor=change.sensor, since=now, watch=d.clock_ok
    )
    if change.kind != "keysafe" or not d.clock_ok or d.anyone_checked_in():
        return
    window = timedelta(minutes=d.index.policy.keysafe_tap_window_min)
    if d.last_carer_tap_at is not None and timedelta(0) <= now - d.last_carer_tap_at <= window:
        return
    d.keysafe_checks.append(KeysafeCheck(sensor=change.sensor, opened_at=now, due=now + window))


def _button(d: Draft, press: ButtonPress, now: datetime) -> None:
    if press.name != "no_reply":
        return
    targets: list[tuple[str, str | None]] = [
        (vid, next(a.carer_id for a in vs.attendances if a.open))
        for vid, vs in d.visits.items()
        if any(a.open for a in vs.attendances)
    ]
    if not targets:
        targets = [(vid, None) for vid in _nearest_open_visits(d, now)]
    if not targets:
        d.emit(
            EventType.NO_ACCESS,
            now,
            data={"reason": "button", "button": press.name, "matched_visit": False},
        )
        return
    for visit_id, carer_id in targets:
        d.raise_visit_alert(
            EventType.NO_ACCESS,
            now,
            visit_id,
            carer_id=carer_id,
            trigger="no_access",
            data={
                "reason": "button",
                "button": press.name,
                "matched_visit": True,
                "incident_record_required": True,
            },
        )


def _nearest_open_visits(d: Draft, now: datetime) -> list[str]:
    """Per service user, the not-yet-attended visit whose window is nearest ``now``."""
    best: dict[str, tuple[tuple[timedelta, datetime, str], str]] = {}
    for visit_id, times in d.index.times.items():
        vs = d.visits.get(visit_id)
        if vs is None or times.cancelled or vs.status not in ("planned", "missed"):
            continue
        if not times.in_horizon(now):
            continue
        key = (times.distance(now), times.window_start, visit_id)
        current = best.get(times.service_user_id)
        if current is None or key < current[0]:
            best[times.service_user_id] = (key, visit_id)
    return [visit_id for _, visit_id in sorted(best.values())]


def _plan_update(d: Draft, update: PlanUpdate, now: datetime) -> None:
    d.plan = update.plan
    d.index = PlanIndex.build(update.plan)
    d.visits = reconcile_visits(d.index, d.visits, known_since=now)


def reconcile_visits(
    index: PlanIndex, old: dict[str, VisitState], known_since: datetime | None
) -> dict[str, VisitState]:
    """Visit states for a (new) plan, keeping what was recorded for visits with the same id.

    New visits get ``known_since`` (deadlines already past when they appeared never fire);
    visits that left the plan are kept only if they have attendances (``in_plan`` False).
    """
    visits: dict[str, VisitState] = {}
    for visit_id, times in index.times.items():
        previous = old.get(visit_id)
        if previous is None:
            vs = VisitState(visit_id, times.service_user_id, known_since=known_since)
        else:
            vs = replace(previous, service_user_id=times.service_user_id, in_plan=True)
        if times.cancelled:
            vs = replace(vs, status=advance(vs.status, "cancel"))
        elif vs.status == "cancelled":
            vs = replace(vs, status=advance(vs.status, "reinstate"))
        visits[visit_id] = vs
    for visit_id, vs in old.items():
        if visit_id not in visits and vs.attendances:
            visits[visit_id] = replace(vs, in_plan=False)
    return visits


def _clock_status(d: Draft, status: ClockStatus, now: datetime) -> None:
    if status.ok == d.clock_ok:
        return
    d.clock_ok = status.ok
    if not status.ok:
        # Household timers started with a good clock are dropped: nothing time-based is
        # raised on a clock that is not known good (central covers the household).
        d.keysafe_checks.clear()
        d.door_check = None
        d.contacts = {k: replace(c, watch=False) for k, c in d.contacts.items()}


# --------------------------------------------------------------------------- the table

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
        _tag_read,
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
    "contact": Transition(_contact, (), False),
    "button": Transition(_button, (EventType.NO_ACCESS,), False),
    "plan_update": Transition(_plan_update, (), False),
    "clock_status": Transition(_clock_status, (), False),
    "deadline:visit_late": Transition(_visit_late, (EventType.VISIT_LATE,), True),
    "deadline:visit_missed": Transition(_visit_missed, (EventType.VISIT_MISSED,), True),
    "deadline:double_up_incomplete": Transition(
        _double_up_incomplete, (EventType.DOUBLE_UP_INCOMPLETE,), True
    ),
    "deadline:departure_missing": Transition(
        _departure_missing, (EventType.DEPARTURE_MISSING,), True
    ),
    "deadline:keysafe_unexpected": Transition(
        _keysafe_unexpected, (EventType.KEYSAFE_UNEXPECTED,), True
    ),
    "deadline:keysafe_left_open": Transition(
        _keysafe_left_open, (EventType.KEYSAFE_LEFT_OPEN,), True
    ),
    "deadline:door_left_open": Transition(_door_left_open, (EventType.DOOR_LEFT_OPEN,), True),
}

INPUT_TRIGGERS: dict[type, str] = {
    TagRead: "tag_read",
    ContactChange: "contact",
    ButtonPress: "button",
    PlanUpdate: "plan_update",
    ClockStatus: "clock_status",
}
