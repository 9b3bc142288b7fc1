"""The engine's state for one household, and its JSON form.

This module owns :class:`HouseholdState` and the small frozen records inside it (one
:class:`VisitState` per visit with its attendances and the alerts already raised, the
contacts that are open, pending household checks), their JSON serialisation (persisted in
the gateway journal's database so the engine survives a restart), and :class:`PlanIndex`,
the per-plan cache of visit windows that is rebuilt from the plan and never serialised.

A state is never changed in place: :func:`gateway.rules.step` returns a new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from gateway.rules.lifecycle import VisitStatus, advance
from gateway.rules.windows import VisitTimes, iso, visit_times
from homecall.clock import parse_utc
from homecall.plan import GatewayPlan, Policy

#: 2: only visits that differ from their untouched default are written (see to_json).
STATE_FORMAT = 2
_READABLE_FORMATS = (1, 2)


@dataclass(frozen=True, slots=True)
class Attendance:
    """One carer's arrival (and, once they tap again, departure) for one visit."""

    carer_id: str
    arrived_at: datetime
    departed_at: datetime | None = None
    verified: bool = False  # door or key safe used within corroboration_min of the arrival
    door_seen: bool = False  # door used from corroboration_min before arrival to departure
    clock_ok: bool = True  # the gateway clock was known good when the arrival was recorded

    @property
    def open(self) -> bool:
        return self.departed_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "carer_id": self.carer_id,
            "arrived_at": iso(self.arrived_at),
            "departed_at": iso(self.departed_at),
            "verified": self.verified,
            "door_seen": self.door_seen,
            "clock_ok": self.clock_ok,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attendance:
        return cls(
            carer_id=data["carer_id"],
            arrived_at=parse_utc(data["arrived_at"]),
            departed_at=_opt_time(data.get("departed_at")),
            verified=bool(data.get("verified", False)),
            door_seen=bool(data.get("door_seen", False)),
            clock_ok=bool(data.get("clock_ok", True)),
        )


@dataclass(frozen=True, slots=True)
class VisitState:
    """What has happened so far for one visit."""

    visit_id: str
    service_user_id: str
    status: VisitStatus = "planned"
    attendances: tuple[Attendance, ...] = ()
    # Alert keys already raised (or deadlines already consumed): "visit_late",
    # "visit_missed", "call_outside_tolerance", "no_access", "double_up_incomplete",
    # "short_visit:<carer>", "departure_missing:<carer>".
    alerts: frozenset[str] = frozenset()
    punctuality: str | None = None  # of the first arrival
    minutes_outside_window: int | None = None
    known_since: datetime | None = None  # deadlines before this instant never fire
    in_plan: bool = True  # False: removed by a plan update but kept for its attendances

    @property
    def open_attendances(self) -> tuple[Attendance, ...]:
        return tuple(a for a in self.attendances if a.departed_at is None)

    @property
    def carers_arrived(self) -> tuple[str, ...]:
        seen: list[str] = []
        for a in self.attendances:
            if a.carer_id not in seen:
                seen.append(a.carer_id)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "visit_id": self.visit_id,
            "service_user_id": self.service_user_id,
            "status": self.status,
            "attendances": [a.to_dict() for a in self.attendances],
            "alerts": sorted(self.alerts),
            "punctuality": self.punctuality,
            "minutes_outside_window": self.minutes_outside_window,
            "known_since": iso(self.known_since),
            "in_plan": self.in_plan,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VisitState:
        return cls(
            visit_id=data["visit_id"],
            service_user_id=data["service_user_id"],
            status=data["status"],
            attendances=tuple(Attendance.from_dict(a) for a in data.get("attendances", [])),
            alerts=frozenset(data.get("alerts", [])),
            punctuality=data.get("punctuality"),
            minutes_outside_window=data.get("minutes_outside_window"),
            known_since=_opt_time(data.get("known_since")),
            in_plan=bool(data.get("in_plan", True)),
        )


@dataclass(frozen=True, slots=True)
class ContactState:
    """A door contact or key-safe switch currently open."""

    kind: Literal["door", "keysafe"]
    sensor: str
    since: datetime
    watch: bool  # a left-open alert is still due (opened with a good clock, not yet raised)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sensor": self.sensor, "since": iso(self.since),
                "watch": self.watch}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContactState:
        return cls(kind=data["kind"], sensor=data["sensor"], since=parse_utc(data["since"]),
                   watch=bool(data["watch"]))


@dataclass(frozen=True, slots=True)
class KeysafeCheck:
    """A key-safe opening with nobody checked in: unexpected unless a carer taps in time."""

    sensor: str
    opened_at: datetime
    due: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "opened_at": iso(self.opened_at), "due": iso(self.due)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeysafeCheck:
        return cls(sensor=data["sensor"], opened_at=parse_utc(data["opened_at"]),
                   due=parse_utc(data["due"]))


@dataclass(frozen=True, slots=True)
class DoorCheck:
    """The last carer left: the doors must be shut by ``due``."""

    departed_at: datetime
    due: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"departed_at": iso(self.departed_at), "due": iso(self.due)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoorCheck:
        return cls(departed_at=parse_utc(data["departed_at"]), due=parse_utc(data["due"]))


@dataclass(frozen=True, slots=True)
class PlanIndex:
    """Per-plan cache: each visit's windows and merged policy, in plan order; the visit ids
    sorted by their late deadline (so deadline scans stop early); the plan's JSON form."""

    times: dict[str, VisitTimes]
    policy: Policy
    by_late: tuple[str, ...]
    plan_json: str | None  # canonical JSON (sorted keys, compact) of the plan
    # Each plan visit's state before anything happened (what a fresh engine would hold).
    untouched: dict[str, VisitState] = field(default_factory=dict)

    @classmethod
    def build(cls, plan: GatewayPlan | None) -> PlanIndex:
        if plan is None:
            return cls(times={}, policy=Policy.model_validate({}), by_late=(), plan_json=None)
        times = {v.id: visit_times(plan, v) for v in plan.visits}
        by_late = tuple(sorted(times, key=lambda vid: (times[vid].late_at, vid)))
        index = cls(times=times, policy=plan.policy, by_late=by_late,
                    plan_json=_dumps(plan.model_dump(mode="json")))
        index.untouched.update(reconcile_visits(index, {}, known_since=None))
        return index


@dataclass(frozen=True)
class HouseholdState:
    """Everything the engine remembers about one household. Treat as immutable."""

    plan: GatewayPlan | None = None
    clock_ok: bool = True
    visits: dict[str, VisitState] = field(default_factory=dict)
    contacts: dict[str, ContactState] = field(default_factory=dict)  # key "kind:sensor"
    last_door_at: datetime | None = None
    last_keysafe_at: datetime | None = None
    last_carer_tap_at: datetime | None = None
    tag_seen: dict[str, datetime] = field(default_factory=dict)  # debounce; key = tag hash
    keysafe_checks: tuple[KeysafeCheck, ...] = ()
    door_check: DoorCheck | None = None
    index: PlanIndex = field(default_factory=lambda: PlanIndex.build(None), compare=False,
                             repr=False)

    def __post_init__(self) -> None:
        if self.plan is not None and self.index.plan_json is None:
            object.__setattr__(self, "index", PlanIndex.build(self.plan))

    def visit(self, visit_id: str) -> VisitState | None:
        return self.visits.get(visit_id)

    def to_json(self, *, include_plan: bool = True) -> str:
        """Canonical JSON (sorted keys, compact): equal states give identical text.

        ``include_plan=False`` leaves the plan out (``"plan": null``) for callers that store
        the plan separately (the gateway journal does): a week's plan is most of the bytes,
        and it does not change from one tap to the next. Give it back to :meth:`from_json`.
        """
        body = {
            "format": STATE_FORMAT,
            "clock_ok": self.clock_ok,
            # Only visits something happened to: a week's plan is mostly untouched visits,
            # and this runs after every tap. from_json restores the rest from the plan.
            "visits": [
                v.to_dict()
                for visit_id, v in sorted(self.visits.items())
                if self.index.untouched.get(visit_id) != v
            ],
            "contacts": [c.to_dict() for c in self.contacts.values()],
            "last_door_at": iso(self.last_door_at),
            "last_keysafe_at": iso(self.last_keysafe_at),
            "last_carer_tap_at": iso(self.last_carer_tap_at),
            "tag_seen": {k: iso(v) for k, v in self.tag_seen.items()},
            "keysafe_checks": [k.to_dict() for k in self.keysafe_checks],
            "door_check": None if self.door_check is None else self.door_check.to_dict(),
        }
        # The plan is already serialised once per plan (PlanIndex); splice it in at its
        # sorted-key position rather than re-encoding it on every step.
        before = _dumps({k: v for k, v in body.items() if k < "plan"})
        after = _dumps({k: v for k, v in body.items() if k > "plan"})
        plan = (
            "null"
            if not include_plan or self.plan is None or self.index.plan_json is None
            else self.index.plan_json
        )
        return f'{before[:-1]},"plan":{plan},{after[1:]}'

    @classmethod
    def from_json(cls, text: str | bytes, plan: GatewayPlan | None = None) -> HouseholdState:
        """Rebuild a state; ``plan`` is required if it was saved with ``include_plan=False``."""
        body = json.loads(text)
        if body.get("format") not in _READABLE_FORMATS:
            raise ValueError(f"unsupported rules state format {body.get('format')!r}")
        if body["plan"] is not None:
            plan = GatewayPlan.model_validate(body["plan"])
        index = PlanIndex.build(plan)
        stored = {v["visit_id"]: VisitState.from_dict(v) for v in body.get("visits", [])}
        visits = {vid: stored.pop(vid, untouched) for vid, untouched in index.untouched.items()}
        visits.update(stored)  # visits kept for their attendances after leaving the plan
        contacts = [ContactState.from_dict(c) for c in body.get("contacts", [])]
        door = body.get("door_check")
        return cls(
            plan=plan,
            clock_ok=bool(body["clock_ok"]),
            visits=visits,
            contacts={f"{c.kind}:{c.sensor}": c for c in contacts},
            last_door_at=_opt_time(body.get("last_door_at")),
            last_keysafe_at=_opt_time(body.get("last_keysafe_at")),
            last_carer_tap_at=_opt_time(body.get("last_carer_tap_at")),
            tag_seen={k: parse_utc(v) for k, v in body.get("tag_seen", {}).items()},
            keysafe_checks=tuple(KeysafeCheck.from_dict(k) for k in body.get("keysafe_checks", [])),
            door_check=None if door is None else DoorCheck.from_dict(door),
            index=index,
        )


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _opt_time(value: str | None) -> datetime | None:
    return None if value is None else parse_utc(value)


def reconcile_visits(
    index: PlanIndex, old: dict[str, VisitState], known_since: datetime | None
) -> dict[str, VisitState]:
    """Visit states for a (new) plan, keeping what was recorded for visits with the same id.

    New visits get ``known_since`` (deadlines already past when they appeared never fire);
    visits that left the plan are kept (``in_plan`` False) if anything happened to them (an
    attendance or an alert), so a visit removed and later restored does not raise its alerts
    a second time.
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
        if visit_id not in visits and (vs.attendances or vs.alerts):
            visits[visit_id] = replace(vs, in_plan=False)
    return visits
