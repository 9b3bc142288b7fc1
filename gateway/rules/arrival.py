"""A tag read, and what it decides: debounce, which carer, and whether the tap is an arrival
(which visit it checks into, punctuality, corroboration), a departure (see
:mod:`gateway.rules.departure`), an unplanned visit or an unknown tag.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gateway.rules.departure import depart
from gateway.rules.draft import Draft
from gateway.rules.lifecycle import advance
from gateway.rules.matching import candidate_visits, is_repeat, resolve_carer, tag_key
from gateway.rules.state import (
    Attendance,
)
from gateway.rules.windows import iso, outside_by_more_than, punctuality
from homecall.observations import TagRead
from homecall.tags import redact
from homecall.wire import EventType

#: Distinct tags remembered for debouncing at most; a household has a handful of carers.
DEBOUNCE_MAX_TAGS = 64


def tag_read(d: Draft, read: TagRead, now: datetime) -> None:
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
                "tag": redact(read.tag, "" if d.plan is None else d.plan.tag_salt),
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
        depart(d, carer_id, checked_in, now, read, by_token)
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
    arrive(d, carer_id, matches, now, read, by_token)



def arrive(
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
