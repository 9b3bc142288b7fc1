"""Door and key-safe contacts and the hub's buttons, and what they decide: corroboration of
an arrival, the key-safe and door checks (armed here, decided when their deadline fires),
and a carer's "no access" / "no reply" button.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gateway.rules.draft import Draft
from gateway.rules.state import (
    ContactState,
    KeysafeCheck,
)
from homecall.observations import ButtonPress, ContactChange
from homecall.wire import EventType


def contact_change(d: Draft, change: ContactChange, now: datetime) -> None:
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


def button_press(d: Draft, press: ButtonPress, now: datetime) -> None:
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
