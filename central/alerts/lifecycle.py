"""The alert lifecycle: every state an alert can be in and every move between them, in one
table.

This module owns :data:`LIFECYCLE` ((state, action) -> new state and who may make the move),
the commands that name each action with its details (:class:`Acknowledge`, :class:`Escalate`,
:class:`Resolve`, :class:`AutoResolve`, :class:`Supersede`, :class:`Reopen`), the alert
snapshot they act on (:class:`AlertRecord`), the audit entry each move produces
(:class:`AuditEntry`), and the single pure function :func:`apply` that checks a move and
performs it. It also owns the two tables that say which events clear which alerts
(:data:`AUTO_RESOLVE`, :data:`CLEARED_BY_EVENT`) and which alert replaces which
(:data:`SUPERSEDED_BY`). A move the table does not allow raises :class:`IllegalTransition`
with the reason; the API reports it as 409 Conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from central.alerts import AlertDeskError
from central.alerts.actors import STAFF_ROLES, SYSTEM, Actor, Role
from central.alerts.incidents import INCIDENT_ALERT_TYPES, IncidentRecord, require_complete
from central.alerts.outcomes import OutcomeCatalogue

AlertState = Literal["open", "acknowledged", "escalated", "resolved", "superseded"]
ALERT_STATES: tuple[AlertState, ...] = (
    "open", "acknowledged", "escalated", "resolved", "superseded",
)
ActionName = Literal["acknowledge", "escalate", "resolve", "auto_resolve", "supersede", "reopen"]

_STAFF = STAFF_ROLES
_SYSTEM_OR_STAFF: frozenset[Role] = STAFF_ROLES | {"system"}
_SYSTEM: frozenset[Role] = frozenset({"system"})
_MANAGER: frozenset[Role] = frozenset({"manager"})


@dataclass(frozen=True, slots=True)
class Move:
    to: AlertState
    roles: frozenset[Role]
    why: str  # what the move means, for docs/alert-desk.md and error messages


# --------------------------------------------------------------------------- the table

#: (state, action) -> move. A pair absent from the table is an illegal move.
LIFECYCLE: dict[tuple[AlertState, ActionName], Move] = {
    ("open", "acknowledge"): Move("acknowledged", _STAFF, "a person takes the alert"),
    ("escalated", "acknowledge"): Move(
        "acknowledged", _STAFF, "someone at the tier it was escalated to takes it"),
    ("open", "escalate"): Move(
        "escalated", _SYSTEM_OR_STAFF, "nobody took it in time (or staff hand it on)"),
    ("escalated", "escalate"): Move(
        "escalated", _SYSTEM_OR_STAFF, "still not taken: on to the next tier"),
    ("acknowledged", "escalate"): Move(
        "escalated", _STAFF, "staff hand it to the next tier, who must take it"),
    ("acknowledged", "resolve"): Move(
        "resolved", _STAFF, "worked to an outcome (code + note; incident record if needed)"),
    ("open", "auto_resolve"): Move("resolved", _SYSTEM, "the condition cleared by itself"),
    ("acknowledged", "auto_resolve"): Move(
        "resolved", _SYSTEM, "the condition cleared while someone was on it"),
    ("escalated", "auto_resolve"): Move("resolved", _SYSTEM, "the condition cleared"),
    ("open", "supersede"): Move("superseded", _SYSTEM, "replaced by a more precise alert"),
    ("acknowledged", "supersede"): Move(
        "superseded", _SYSTEM, "replaced by a more precise alert"),
    ("escalated", "supersede"): Move("superseded", _SYSTEM, "replaced by a more precise alert"),
    ("resolved", "reopen"): Move("open", _MANAGER, "a manager reopens it, with a reason"),
}

#: States in which an alert is still waiting for someone to take it (escalation runs).
AWAITING_ACKNOWLEDGEMENT: frozenset[AlertState] = frozenset({"open", "escalated"})
#: States in which nothing more happens unless a manager reopens it.
CLOSED_STATES: frozenset[AlertState] = frozenset({"resolved", "superseded"})

# --------------------------------------------------------------------------- auto-resolve

AutoResolveReason = Literal[
    "carer_arrived", "gateway_back", "keysafe_closed", "door_closed", "raised_in_error",
    "conflict_resolved",
]

#: reason -> the alert types that reason may clear. ``visit_missed`` is absent from every
#: reason but ``raised_in_error``: a late arrival supersedes it (see SUPERSEDED_BY) instead.
AUTO_RESOLVE: dict[AutoResolveReason, frozenset[str]] = {
    "carer_arrived": frozenset({"visit_late"}),
    "gateway_back": frozenset({"gateway_offline"}),
    "keysafe_closed": frozenset({"keysafe_left_open"}),
    "door_closed": frozenset({"door_left_open"}),
    # a manager chose which of two claims to one seq is the gateway's real event
    "conflict_resolved": frozenset({"gateway_integrity"}),
    # central raised it while covering a silent gateway, and the gateway's own events (an
    # arrival or departure central had not seen yet) show the condition never held
    "raised_in_error": frozenset(
        {"visit_late", "visit_missed", "departure_missing", "double_up_incomplete"}
    ),
}

#: Event seen at central -> (alert type it clears, reason). The storage layer looks up the
#: open alerts of that type for the same visit (or household, for the gateway and sensors).
CLEARED_BY_EVENT: dict[str, tuple[tuple[str, AutoResolveReason], ...]] = {
    "arrival": (("visit_late", "carer_arrived"),),
    "gateway_online": (("gateway_offline", "gateway_back"),),
    "keysafe_closed": (("keysafe_left_open", "keysafe_closed"),),
    "door_closed": (("door_left_open", "door_closed"),),
}

#: New alert type -> the alert types of the same visit it supersedes.
SUPERSEDED_BY: dict[str, frozenset[str]] = {
    "call_outside_tolerance": frozenset({"visit_missed"}),
}


def cleared_by(event: str) -> tuple[tuple[str, AutoResolveReason], ...]:
    """The (alert type, reason) pairs an event clears; empty for most events."""
    return CLEARED_BY_EVENT.get(event, ())


def supersedes(new_type: str) -> frozenset[str]:
    return SUPERSEDED_BY.get(new_type, frozenset())


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Acknowledge:
    name: Literal["acknowledge"] = field(default="acknowledge", init=False)


@dataclass(frozen=True, slots=True)
class Escalate:
    tier: str
    name: Literal["escalate"] = field(default="escalate", init=False)


@dataclass(frozen=True, slots=True)
class Resolve:
    outcome: str
    note: str
    incident: IncidentRecord | None = None
    name: Literal["resolve"] = field(default="resolve", init=False)


@dataclass(frozen=True, slots=True)
class AutoResolve:
    reason: AutoResolveReason
    detail: str = ""
    name: Literal["auto_resolve"] = field(default="auto_resolve", init=False)


@dataclass(frozen=True, slots=True)
class Supersede:
    by_alert_id: str
    by_type: str
    name: Literal["supersede"] = field(default="supersede", init=False)


@dataclass(frozen=True, slots=True)
class Reopen:
    reason: str
    name: Literal["reopen"] = field(default="reopen", init=False)


Command = Acknowledge | Escalate | Resolve | AutoResolve | Supersede | Reopen


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """What the lifecycle needs to know about one alert (the storage layer's row, trimmed)."""

    alert_id: str
    type: str
    severity: str
    raised_at: datetime
    state: AlertState = "open"
    tier: str = "desk"
    tier_since: datetime | None = None  # when the current tier was given it (None: raised_at)
    escalations: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    outcome: str | None = None  # an outcome code, or "auto:<reason>"
    outcome_note: str | None = None
    superseded_by: str | None = None

    @property
    def waiting_since(self) -> datetime:
        return self.tier_since or self.raised_at


@dataclass(frozen=True, slots=True)
class AuditEntry:
    alert_id: str
    at: datetime
    action: ActionName
    actor_id: str
    actor_role: Role
    from_state: AlertState
    to_state: AlertState
    detail: dict[str, Any] = field(default_factory=dict)


class IllegalTransition(AlertDeskError):
    """A move the lifecycle does not allow (409): ``reason`` says why."""

    def __init__(self, state: str, action: str, reason: str) -> None:
        self.state = state
        self.action = action
        self.reason = reason
        super().__init__(reason)


class NotPermitted(IllegalTransition):
    """The move exists but this actor's role may not make it."""


_CLOSED_REASON: dict[AlertState, str] = {
    "resolved": "it is already resolved; only a manager can reopen it, with a reason",
    "superseded": "it was superseded by another alert; work that alert instead",
}


def _illegal(alert: AlertRecord, action: ActionName) -> IllegalTransition:
    if alert.state in _CLOSED_REASON:
        reason = f"cannot {action.replace('_', '-')} this alert: {_CLOSED_REASON[alert.state]}"
    elif action == "resolve":
        reason = "acknowledge the alert before resolving it, so the record shows who took it"
    elif action == "reopen":
        reason = f"only a resolved alert can be reopened; this one is {alert.state}"
    else:
        reason = f"cannot {action.replace('_', '-')} an alert that is {alert.state}"
    return IllegalTransition(alert.state, action, reason)


def apply(
    alert: AlertRecord,
    command: Command,
    actor: Actor,
    now: datetime,
    *,
    outcomes: OutcomeCatalogue | None = None,
) -> tuple[AlertRecord, AuditEntry]:
    """Check and perform one move. Returns the alert after it and the audit entry to store.

    Raises :class:`IllegalTransition` (or its :class:`NotPermitted`) for a move the table
    does not allow, :class:`~central.alerts.outcomes.InvalidOutcome` for a resolution without
    a valid outcome, and :class:`~central.alerts.incidents.IncidentIncomplete` when the alert
    needs an incident record that is not complete.
    """
    action: ActionName = command.name
    move = LIFECYCLE.get((alert.state, action))
    if move is None:
        raise _illegal(alert, action)
    if actor.role not in move.roles:
        allowed = ", ".join(sorted(move.roles))
        raise NotPermitted(
            alert.state, action,
            f"a {actor.role} cannot {action.replace('_', '-')} an alert ({allowed} can)",
        )
    detail: dict[str, Any] = {}
    new: AlertRecord
    match command:
        case Acknowledge():
            new = replace(alert, state=move.to, acknowledged_by=actor.user_id,
                          acknowledged_at=now)
            detail = {"tier": alert.tier}
        case Escalate(tier=tier):
            if not tier:
                raise IllegalTransition(alert.state, action, "escalation needs a tier")
            new = replace(alert, state=move.to, tier=tier, tier_since=now,
                          escalations=alert.escalations + 1,
                          acknowledged_by=None, acknowledged_at=None)
            # the same tier again: the last tier is reminded (notified again)
            detail = {"from_tier": alert.tier, "to_tier": tier, "renotify": tier == alert.tier}
        case Resolve(outcome=code, note=note, incident=incident):
            catalogue = outcomes or OutcomeCatalogue.default()
            catalogue.check(code, alert.type, note)
            require_complete(incident, alert.type)
            new = replace(alert, state=move.to, resolved_by=actor.user_id, resolved_at=now,
                          outcome=code, outcome_note=note.strip())
            detail = {"outcome": code, "note": note.strip()}
            if alert.type in INCIDENT_ALERT_TYPES and incident is not None:
                detail["incident_signed_by"] = incident.sign_off.by if incident.sign_off else None
        case AutoResolve(reason=reason, detail=text):
            if alert.type not in AUTO_RESOLVE.get(reason, frozenset()):
                raise IllegalTransition(alert.state, action, _no_auto_reason(alert.type, reason))
            new = replace(alert, state=move.to, resolved_by=SYSTEM.user_id, resolved_at=now,
                          outcome=f"auto:{reason}", outcome_note=text or None)
            detail = {"reason": reason, "detail": text}
        case Supersede(by_alert_id=by_id, by_type=by_type):
            if alert.type not in supersedes(by_type):
                raise IllegalTransition(
                    alert.state, action, f"a {by_type} does not supersede a {alert.type}")
            new = replace(alert, state=move.to, superseded_by=by_id)
            detail = {"by_alert_id": by_id, "by_type": by_type}
        case Reopen(reason=reason):
            if not reason.strip():
                raise IllegalTransition(alert.state, action,
                                        "reopening an alert needs a reason")
            new = replace(alert, state=move.to, tier_since=now, acknowledged_by=None,
                          acknowledged_at=None, resolved_by=None, resolved_at=None,
                          outcome=None, outcome_note=None)
            detail = {"reason": reason.strip(), "previous_outcome": alert.outcome}
    entry = AuditEntry(
        alert_id=alert.alert_id, at=now, action=action, actor_id=actor.user_id,
        actor_role=actor.role, from_state=alert.state, to_state=new.state, detail=detail,
    )
    return new, entry


def _no_auto_reason(alert_type: str, reason: str) -> str:
    if alert_type == "visit_missed":
        return ("a visit_missed is never cleared automatically: a late arrival turns it into "
                "call_outside_tolerance, which needs an incident record")
    return f"a {alert_type} alert is not cleared by {reason}"
