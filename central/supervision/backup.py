"""Backup detection: central runs the gateway's own rules engine for a household, fed by the
events central has received, and raises the time-based alerts while the gateway cannot.

This module owns :class:`BackupHousehold` (one per household) and the facts it takes
(:class:`ObservedEvent`, :class:`PlanChange`, :class:`GatewayCondition`). The engine is
``gateway.rules`` itself, imported, not copied: central's copy of the household state is
built by folding the gateway's reported facts (arrivals, departures, the alerts it raised)
into the engine's state at the times they happened, and stepping the engine between them so
its deadlines fire exactly as they would at the gateway. Why facts are folded into the state
rather than fed as engine inputs is explained in ``docs/backup-detection.md``.

What it answers: :meth:`BackupHousehold.next_deadline` (when to wake), :meth:`~BackupHousehold.due`
(the alerts central must raise now: only while the gateway is offline, unheard of, or
reports a bad clock), and :meth:`~BackupHousehold.observe` (a new fact; returns the alerts
central raised in error that must now be auto-resolved, and the ``call_outside_tolerance``
that replaces central's own ``visit_missed`` when the gateway could not raise it).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from central.supervision import SupervisionError
from central.supervision.dedupe import PER_CARER_TYPES, AlertKey
from central.supervision.liveness import GatewayLiveness
from gateway.rules import (
    VISIT_LIFECYCLE,
    Attendance,
    HouseholdState,
    PlanUpdate,
    RuleOutput,
    VisitState,
    initial_state,
    next_deadline,
    step,
)
from homecall.plan import GatewayPlan
from homecall.wire import EventEnvelope

#: The alerts central raises for a household whose gateway cannot (time-based ones).
BACKUP_TYPES: frozenset[str] = frozenset(
    {"visit_late", "visit_missed", "departure_missing", "double_up_incomplete"}
)
#: Visit alerts whose gateway raise changes the visit's status in the engine.
_STATUS_TRIGGERS: dict[str, str] = {"visit_missed": "visit_missed", "no_access": "no_access"}
_VISIT_ALERTS: frozenset[str] = BACKUP_TYPES | {
    "call_outside_tolerance", "no_access", "short_visit",
}


@dataclass(frozen=True, slots=True)
class ObservedEvent:
    """An event central has stored, with central's best estimate of when it happened.

    ``time_trusted`` False: the gateway's clock was bad and the event was not received live,
    so its time is only known to be no later than ``time``; attendances built from it start
    no timers (no ``departure_missing`` or ``double_up_incomplete`` from central).
    """

    type: str
    time: datetime
    received_at: datetime
    visit_id: str | None = None
    service_user_id: str | None = None
    carer_id: str | None = None
    clock_ok: bool = True  # the gateway's own flag on the event
    time_trusted: bool = True
    seq: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(
        cls, envelope: EventEnvelope, received_at: datetime, *, live: bool
    ) -> ObservedEvent:
        """``live``: received while the gateway was online with nothing queued, so
        ``received_at`` is a good estimate of the event's time when its clock was bad."""
        if envelope.clock_ok:
            time, trusted = envelope.time, True
        else:
            time, trusted = received_at, live
        return cls(
            type=envelope.type.value,
            time=time,
            received_at=received_at,
            visit_id=envelope.visit_id,
            service_user_id=envelope.service_user_id,
            carer_id=envelope.carer_id,
            clock_ok=envelope.clock_ok,
            time_trusted=trusted,
            seq=envelope.seq,
            data=dict(envelope.data),
        )


@dataclass(frozen=True, slots=True)
class PlanChange:
    """A new plan for the household, in force from ``at``."""

    plan: GatewayPlan
    at: datetime


@dataclass(frozen=True, slots=True)
class GatewayCondition:
    """Whether central must cover the household now, and up to when the gateway is known to
    have delivered every alert it raised (alerts due before that were the gateway's call)."""

    at: datetime
    needs_backup: bool
    delivered_until: datetime | None = None

    @classmethod
    def from_liveness(cls, live: GatewayLiveness, at: datetime) -> GatewayCondition:
        return cls(at=at, needs_backup=live.needs_backup, delivered_until=live.delivered_until)


@dataclass(frozen=True, slots=True)
class BackupRaise:
    """An alert central raises itself (``raised_by`` = central)."""

    key: AlertKey
    type: str
    severity: str
    time: datetime  # the deadline (or, for call_outside_tolerance, the arrival)
    visit_id: str
    service_user_id: str | None
    carer_id: str | None
    data: dict[str, Any]
    raised_by: Literal["central"] = "central"


@dataclass(frozen=True, slots=True)
class BackupResolve:
    """Auto-resolve central's own alert: the gateway's events show it never applied."""

    key: AlertKey
    reason: Literal["raised_in_error"]
    detail: str


Fact = ObservedEvent | PlanChange


def _fact_time(fact: Fact) -> datetime:
    return fact.time if isinstance(fact, ObservedEvent) else fact.at


def _key_of(household_id: str, alert_type: str, visit_id: str, carer_id: str | None) -> AlertKey:
    return AlertKey.of(household_id, visit_id, alert_type, carer_id)


def _engine_alert_key(alert_type: str, carer_id: str | None) -> str:
    """The key the engine keeps in ``VisitState.alerts`` for an alert already raised."""
    if alert_type in PER_CARER_TYPES:
        return f"{alert_type}:{carer_id}"
    return alert_type


def fold(state: HouseholdState, event: ObservedEvent) -> HouseholdState:
    """Write one gateway-reported fact into the engine's state (no outputs)."""
    if event.visit_id is None:
        return state
    vs = state.visits.get(event.visit_id)
    if vs is None:
        return state  # a visit central's plan does not have: nothing to time
    if event.type == "arrival" and event.carer_id:
        vs = _fold_arrival(vs, event)
    elif event.type == "departure" and event.carer_id:
        vs = _fold_departure(vs, event)
    elif event.type in _VISIT_ALERTS:
        key = _engine_alert_key(event.type, event.carer_id)
        status = vs.status
        trigger = _STATUS_TRIGGERS.get(event.type)
        if trigger is not None:
            status = VISIT_LIFECYCLE.get((status, trigger), status)
        vs = replace(vs, alerts=vs.alerts | {key}, status=status)
    else:
        return state
    return replace(state, visits={**state.visits, vs.visit_id: vs})


def _fold_arrival(vs: VisitState, event: ObservedEvent) -> VisitState:
    if any(a.open and a.carer_id == event.carer_id for a in vs.attendances):
        return vs
    first = not vs.attendances
    attendance = Attendance(
        carer_id=str(event.carer_id),
        arrived_at=event.time,
        verified=bool(event.data.get("verified", False)),
        clock_ok=event.time_trusted,
    )
    return replace(
        vs,
        attendances=(*vs.attendances, attendance),
        status=VISIT_LIFECYCLE.get((vs.status, "arrival"), vs.status),
        punctuality=event.data.get("punctuality") if first else vs.punctuality,
        minutes_outside_window=(
            event.data.get("minutes_outside_window") if first else vs.minutes_outside_window
        ),
    )


def _fold_departure(vs: VisitState, event: ObservedEvent) -> VisitState:
    index = next(
        (i for i, a in enumerate(vs.attendances) if a.open and a.carer_id == event.carer_id),
        None,
    )
    if index is None:
        return vs  # a departure whose arrival central never saw: nothing open to close
    closed = replace(vs.attendances[index], departed_at=event.time)
    attendances = (*vs.attendances[:index], closed, *vs.attendances[index + 1 :])
    still_in = any(a.open for a in attendances)
    trigger = "departure" if still_in else "last_departure"
    return replace(vs, attendances=attendances,
                   status=VISIT_LIFECYCLE.get((vs.status, trigger), vs.status))


class BackupHousehold:
    """Central's run of the rules engine for one household."""

    def __init__(
        self,
        household_id: str,
        plan: GatewayPlan | None,
        *,
        since: datetime | None = None,
        needs_backup: bool = True,
    ) -> None:
        """``since``: deadlines before this instant never fire (a household first seen
        mid-day is not alerted for its morning); None: every visit of ``plan`` is live."""
        self.household_id = household_id
        if since is None or plan is None:
            self._base = initial_state(plan)
        else:
            self._base, _, _ = step(initial_state(None), PlanUpdate(plan), since)
        self._facts: list[tuple[datetime, int, Fact]] = []
        self._counter = 0
        self._applied = 0
        self._state = self._base
        self._time: datetime | None = None
        self._computed: dict[AlertKey, RuleOutput] = {}
        self._gateway_raised: set[AlertKey] = set()
        self._central_raised: dict[AlertKey, datetime] = {}
        self._resolved_in_error: set[AlertKey] = set()
        self.needs_backup = needs_backup
        self.delivered_until: datetime | None = None

    # ------------------------------------------------------------------ queries

    @property
    def state(self) -> HouseholdState:
        return self._state

    @property
    def raised_by_central(self) -> frozenset[AlertKey]:
        return frozenset(self._central_raised)

    @property
    def raised_by_gateway(self) -> frozenset[AlertKey]:
        return frozenset(self._gateway_raised)

    def expected(self) -> dict[AlertKey, datetime]:
        """Every time-based alert central's run says is due so far (by either side)."""
        return {k: o.time for k, o in self._computed.items()}

    def next_deadline(self) -> datetime | None:
        """When to call :meth:`due` next (possibly already past: call it now)."""
        upcoming = next_deadline(self._state)
        pending = list(self._pending().values()) if self.needs_backup else []
        candidates = [t for t in (upcoming, *pending) if t is not None]
        return min(candidates, default=None)

    # ------------------------------------------------------------------ commands

    def mark_raised_by_central(self, raised: Mapping[AlertKey, datetime]) -> None:
        """After a restart: the alerts central had already raised for this household, with
        the time central raised each (so none is raised twice, and a later fact can still
        show one was raised in error)."""
        for key, at in raised.items():
            self._central_raised.setdefault(key, at)
        if raised:
            # replay up to the last of them (a past instant), so that facts observed from now
            # on are checked against every restored raise
            self._sync(max(raised.values()) if self._time is None
                       else max(self._time, *raised.values()))

    def observe(self, fact: Fact | GatewayCondition) -> list[BackupRaise | BackupResolve]:
        if isinstance(fact, GatewayCondition):
            self.needs_backup = fact.needs_backup
            if fact.delivered_until is not None and (
                self.delivered_until is None or fact.delivered_until > self.delivered_until
            ):
                self.delivered_until = fact.delivered_until
            return []
        at = _fact_time(fact)
        if at.tzinfo is None:
            raise SupervisionError("backup facts need aware UTC times")
        entry = (at, self._counter, fact)
        self._counter += 1
        position = bisect.bisect_right(self._facts, (at, entry[1]), key=lambda e: (e[0], e[1]))
        self._facts.insert(position, entry)
        if position < self._applied or (self._time is not None and at < self._time):
            self._rebuild()  # a fact from the past: replay from the start (same engine)
        if isinstance(fact, ObservedEvent) and fact.visit_id and fact.type in _VISIT_ALERTS:
            self._gateway_raised.add(
                _key_of(self.household_id, fact.type, fact.visit_id, fact.carer_id))
        self._sync(max(at, self._time) if self._time is not None else at)
        actions: list[BackupRaise | BackupResolve] = list(self._errors())
        if isinstance(fact, ObservedEvent) and fact.type == "arrival":
            cot = self._outside_tolerance(fact)
            if cot is not None:
                actions.append(cot)
        return actions

    def due(self, now: datetime) -> list[BackupRaise]:
        """Advance to ``now``; the alerts central must raise now (empty while the gateway is
        online with a good clock: it raises them itself)."""
        if now.tzinfo is None:
            raise SupervisionError("due() needs an aware UTC time")
        self._sync(now)
        if not self.needs_backup:
            return []
        raises: list[BackupRaise] = []
        for key, deadline in sorted(self._pending().items(), key=lambda kv: (kv[1], kv[0])):
            out = self._computed[key]
            self._central_raised[key] = now
            raises.append(
                BackupRaise(
                    key=key, type=out.type.value, severity=str(out.severity), time=deadline,
                    visit_id=key.visit_id, service_user_id=out.service_user_id,
                    carer_id=out.carer_id, data={**out.data, "raised_by": "central"},
                )
            )
        return raises

    # ------------------------------------------------------------------ internals

    def _pending(self) -> dict[AlertKey, datetime]:
        return {
            key: out.time
            for key, out in self._computed.items()
            if key not in self._gateway_raised
            and key not in self._central_raised
            and (self.delivered_until is None or out.time > self.delivered_until)
            and (self._time is None or out.time <= self._time)
        }

    def _rebuild(self) -> None:
        self._state = self._base
        self._applied = 0
        until = self._time
        self._time = None
        self._computed = {}
        if until is not None:
            self._sync(until)

    def _sync(self, until: datetime) -> None:
        while self._applied < len(self._facts) and self._facts[self._applied][0] <= until:
            at, _, fact = self._facts[self._applied]
            self._step(None, at)
            if isinstance(fact, PlanChange):
                self._step(PlanUpdate(fact.plan), at)
            else:
                self._state = fold(self._state, fact)
            self._applied += 1
        if self._time is None or until >= self._time:
            self._step(None, until)
            self._time = until

    def _step(self, input_: PlanUpdate | None, at: datetime) -> None:
        self._state, outputs, _ = step(self._state, input_, at)
        for out in outputs:
            if out.type.value in BACKUP_TYPES and out.visit_id is not None:
                key = _key_of(self.household_id, out.type.value, out.visit_id, out.carer_id)
                self._computed.setdefault(key, out)

    def _errors(self) -> list[BackupResolve]:
        found = []
        for key, raised_at in sorted(self._central_raised.items()):
            if key.type not in BACKUP_TYPES or key in self._resolved_in_error:
                continue
            if self._time is None or self._time < raised_at:
                continue  # the replay has not yet reached the moment central raised it
            if key in self._computed or key in self._gateway_raised:
                continue
            self._resolved_in_error.add(key)
            found.append(BackupResolve(
                key=key, reason="raised_in_error",
                detail=_ERROR_DETAIL.get(key.type, "the gateway's events show it never applied"),
            ))
        return found

    def _outside_tolerance(self, arrival: ObservedEvent) -> BackupRaise | None:
        """A late arrival after central's own ``visit_missed``: the gateway (clock bad, so it
        never raised ``visit_missed``) will not turn it into ``call_outside_tolerance``."""
        if arrival.clock_ok or arrival.visit_id is None:
            return None
        missed = _key_of(self.household_id, "visit_missed", arrival.visit_id, None)
        cot = _key_of(self.household_id, "call_outside_tolerance", arrival.visit_id, None)
        if (
            missed not in self._central_raised
            or missed in self._gateway_raised
            or missed not in self._computed
            or cot in self._central_raised
            or cot in self._gateway_raised
        ):
            return None
        vs = self._state.visits.get(arrival.visit_id)
        if vs is None or not vs.attendances or vs.attendances[0].carer_id != arrival.carer_id:
            return None
        self._central_raised[cot] = arrival.received_at
        return BackupRaise(
            key=cot, type="call_outside_tolerance", severity="high", time=arrival.time,
            visit_id=arrival.visit_id, service_user_id=arrival.service_user_id,
            carer_id=arrival.carer_id,
            data={"arrived_at": arrival.time.isoformat(), "supersedes": "visit_missed",
                  "incident_record_required": True, "clock_ok": False,
                  "raised_by": "central"},
        )


_ERROR_DETAIL = {
    "visit_late": "the gateway had recorded an arrival before the window closed that central "
    "had not yet received",
    "visit_missed": "the gateway had recorded an arrival before the missed-call deadline that "
    "central had not yet received",
    "departure_missing": "the gateway had recorded the departure in time; central had not "
    "yet received it",
    "double_up_incomplete": "the gateway had recorded the second carer's arrival in time; "
    "central had not yet received it",
}
