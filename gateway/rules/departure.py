"""A carer's departure tap, and what it decides: the visit completed (or still in progress
for a double-up), a short visit, no access.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gateway.rules.draft import Draft
from gateway.rules.lifecycle import advance
from gateway.rules.state import (
    DoorCheck,
)
from gateway.rules.windows import iso
from homecall.observations import TagRead
from homecall.wire import EventType


def depart(
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
