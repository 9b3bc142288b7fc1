"""Incident records for missed, out-of-tolerance and aborted visits, and the no-response
checklist.

This module owns :class:`IncidentRecord` (what happened, the actions taken with their times,
whether the family or emergency contact was told, whether the police were called, whether a
safeguarding referral was considered, the registered manager's decision on notifying the
regulator, and the manager's sign-off), :func:`missing_for_resolution` (what still has to be
filled in before the alert can be resolved), and the "no response on visit" checklist:
:data:`NO_RESPONSE_CHECKLIST` (step ids, wording, order) and :func:`tick`, whose ticks record
who did each step and when. Records are immutable: every change returns a new record that
the storage layer persists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from central.alerts import AlertDeskError
from central.alerts.actors import Actor, Role

IncidentAlertType = Literal["visit_missed", "call_outside_tolerance", "no_access"]
INCIDENT_ALERT_TYPES: frozenset[str] = frozenset(
    {"visit_missed", "call_outside_tolerance", "no_access"}
)


class IncidentError(AlertDeskError):
    """A change to an incident record that is not allowed (wrong role, unknown step...)."""


class IncidentIncomplete(IncidentError):
    """The alert cannot be resolved yet: ``missing`` names each field still to complete."""

    def __init__(self, alert_type: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"the incident record for this {alert_type} is not complete: " + "; ".join(missing)
        )


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value: object) -> object:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("times must carry a UTC offset")
        return value


class ActionTaken(_Frozen):
    """One thing staff did, when, and who did it."""

    at: datetime
    by: str = Field(min_length=1)
    what: str = Field(min_length=1, max_length=2000)


class ContactDecision(_Frozen):
    """Whether the family / emergency contact was told (and when), or why not."""

    informed: bool
    at: datetime | None = None
    by: str = Field(min_length=1)
    contact: str = Field("", max_length=200)  # e.g. "daughter (emergency contact)"
    reason_not: str = Field("", max_length=1000)


class PoliceDecision(_Frozen):
    """Whether the police were contacted (with their reference), or why not."""

    contacted: bool
    at: datetime | None = None
    by: str = Field(min_length=1)
    reference: str = Field("", max_length=100)
    reason_not: str = Field("", max_length=1000)


class SafeguardingDecision(_Frozen):
    """A safeguarding referral was considered: made (with reference) or not, and why."""

    considered_at: datetime
    by: str = Field(min_length=1)
    referral_made: bool
    reference: str = Field("", max_length=100)
    rationale: str = Field(min_length=1, max_length=2000)


class RegulatorDecision(_Frozen):
    """The registered manager's decision whether the regulator (CQC) must be notified."""

    notification_required: bool
    decided_at: datetime
    decided_by: str = Field(min_length=1)
    decided_by_role: Role
    notified_at: datetime | None = None
    rationale: str = Field(min_length=1, max_length=2000)


class ManagerSignOff(_Frozen):
    """The manager is satisfied the necessary action has been taken."""

    by: str = Field(min_length=1)
    role: Role
    at: datetime
    note: str = Field("", max_length=2000)


# --------------------------------------------------------------------------- checklist

StepBy = Literal["carer", "duty"]


class ChecklistStep(_Frozen):
    """One step: ``required`` False means it may be ticked "not applicable" with a reason."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")
    wording: str
    by: StepBy
    required: bool = True


class Tick(_Frozen):
    step_id: str
    status: Literal["done", "not_applicable"]
    at: datetime
    by: str = Field(min_length=1)
    note: str = Field("", max_length=2000)


class Checklist(_Frozen):
    """An ordered list of steps (the order is the suggested order, not enforced)."""

    name: str
    steps: tuple[ChecklistStep, ...]

    def step(self, step_id: str) -> ChecklistStep:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise IncidentError(
            f"no step {step_id!r} in the {self.name} checklist; steps are "
            + ", ".join(s.id for s in self.steps)
        )


NO_RESPONSE_CHECKLIST = Checklist(
    name="no_response",
    steps=(
        ChecklistStep(
            id="search_property",
            by="carer",
            required=False,  # no key safe / no way in: only outside can be checked
            wording="If you can get in, check every room, the garden and any outbuildings. "
            "Touch and move nothing.",
        ),
        ChecklistStep(
            id="tell_duty",
            by="carer",
            wording="Tell the person on duty that there is no reply and the person does not "
            "seem to be at home.",
        ),
        ChecklistStep(
            id="notify_council",
            by="duty",
            wording="Tell the person's social worker or brokerage team straight away; outside "
            "office hours, the council's out-of-hours duty team.",
        ),
        ChecklistStep(
            id="check_records",
            by="duty",
            wording="Look through the person's records for anything that explains the absence "
            "(hospital stay, respite, appointment).",
        ),
        ChecklistStep(
            id="phone_person",
            by="duty",
            required=False,  # not everyone has a phone
            wording="Ring the person on their own phone.",
        ),
        ChecklistStep(
            id="record_attempt",
            by="carer",
            wording="Tap in and out on the reader so the attempted visit is on record.",
        ),
        ChecklistStep(
            id="ask_neighbours",
            by="carer",
            required=False,  # only where the person's contingency plan says so
            wording="Where the contingency plan allows, ask neighbours whether they know "
            "where the person is, without giving away anything personal.",
        ),
        ChecklistStep(
            id="report_findings",
            by="carer",
            wording="Tell the person on duty what you did and what you found.",
        ),
        ChecklistStep(
            id="inform_family",
            by="duty",
            wording="Tell the family or emergency contact and offer support.",
        ),
        ChecklistStep(
            id="update_carer",
            by="duty",
            wording="Tell the carer who called what contact was made and what happens next "
            "(they may need to go back).",
        ),
        ChecklistStep(
            id="call_police",
            by="duty",
            required=False,  # only when nothing shows where the person is
            wording="Call the police if there is still no sign of where the person is.",
        ),
        ChecklistStep(
            id="complete_incident_record",
            by="duty",
            wording="Fill in the incident record describing what happened.",
        ),
        ChecklistStep(
            id="record_aborted_visit",
            by="duty",
            wording="Ask the scheduling team to record the visit as aborted.",
        ),
    ),
)


class ChecklistState(_Frozen):
    checklist: Checklist = NO_RESPONSE_CHECKLIST
    ticks: tuple[Tick, ...] = ()

    def tick_for(self, step_id: str) -> Tick | None:
        return next((t for t in self.ticks if t.step_id == step_id), None)

    def outstanding(self) -> list[str]:
        """Step ids not yet ticked, in checklist order."""
        done = {t.step_id for t in self.ticks}
        return [s.id for s in self.checklist.steps if s.id not in done]


def tick(
    state: ChecklistState,
    step_id: str,
    actor: Actor,
    at: datetime,
    *,
    not_applicable_reason: str | None = None,
    note: str = "",
) -> ChecklistState:
    """Record that ``actor`` did step ``step_id`` at ``at`` (or found it not applicable)."""
    step = state.checklist.step(step_id)
    if actor.role == "system":
        raise IncidentError("checklist steps are ticked by a person, not by the system")
    if state.tick_for(step_id) is not None:
        previous = state.tick_for(step_id)
        assert previous is not None
        raise IncidentError(
            f"step {step_id!r} was already ticked by {previous.by} at {previous.at.isoformat()}"
        )
    if not_applicable_reason is not None:
        if step.required:
            raise IncidentError(f"step {step_id!r} is required: it cannot be not applicable")
        if not not_applicable_reason.strip():
            raise IncidentError(f"say why step {step_id!r} does not apply")
        entry = Tick(step_id=step_id, status="not_applicable", at=at, by=actor.user_id,
                     note=not_applicable_reason)
    else:
        entry = Tick(step_id=step_id, status="done", at=at, by=actor.user_id, note=note)
    return state.model_copy(update={"ticks": (*state.ticks, entry)})


# --------------------------------------------------------------------------- the record


class IncidentRecord(_Frozen):
    """The incident record kept with a ``visit_missed``, ``call_outside_tolerance`` or
    ``no_access`` alert. Every field but the ids may be empty while it is being drafted."""

    alert_id: str = Field(min_length=1)
    alert_type: IncidentAlertType
    started_at: datetime
    started_by: str = Field(min_length=1)
    what_happened: str = Field("", max_length=10_000)
    actions: tuple[ActionTaken, ...] = ()
    family_contact: ContactDecision | None = None
    police: PoliceDecision | None = None
    safeguarding: SafeguardingDecision | None = None
    regulator: RegulatorDecision | None = None
    sign_off: ManagerSignOff | None = None
    checklist: ChecklistState | None = None

    @classmethod
    def start(cls, alert_id: str, alert_type: str, actor: Actor, at: datetime) -> IncidentRecord:
        if alert_type not in INCIDENT_ALERT_TYPES:
            raise IncidentError(f"a {alert_type} alert does not take an incident record")
        checklist = ChecklistState() if alert_type == "no_access" else None
        return cls.model_validate(
            {
                "alert_id": alert_id,
                "alert_type": alert_type,
                "started_at": at,
                "started_by": actor.user_id,
                "checklist": checklist,
            }
        )

    def add_action(self, actor: Actor, at: datetime, what: str) -> IncidentRecord:
        action = ActionTaken(at=at, by=actor.user_id, what=what)
        return self.model_copy(update={"actions": (*self.actions, action)})

    def tick(
        self,
        step_id: str,
        actor: Actor,
        at: datetime,
        *,
        not_applicable_reason: str | None = None,
        note: str = "",
    ) -> IncidentRecord:
        if self.checklist is None:
            raise IncidentError(f"a {self.alert_type} incident has no checklist")
        state = tick(self.checklist, step_id, actor, at,
                     not_applicable_reason=not_applicable_reason, note=note)
        return self.model_copy(update={"checklist": state})

    def decide_regulator(
        self, actor: Actor, at: datetime, *, required: bool, rationale: str,
        notified_at: datetime | None = None,
    ) -> IncidentRecord:
        if actor.role != "manager":
            raise IncidentError("only the registered manager decides on notifying the regulator")
        decision = RegulatorDecision(
            notification_required=required, decided_at=at, decided_by=actor.user_id,
            decided_by_role=actor.role, notified_at=notified_at, rationale=rationale,
        )
        return self.model_copy(update={"regulator": decision})

    def sign(self, actor: Actor, at: datetime, note: str = "") -> IncidentRecord:
        if actor.role != "manager":
            raise IncidentError("only a manager can sign off an incident record")
        missing = [m for m in missing_for_resolution(self) if not m.startswith("sign_off")]
        if missing:
            raise IncidentIncomplete(self.alert_type, missing)
        return self.model_copy(
            update={"sign_off": ManagerSignOff(by=actor.user_id, role=actor.role, at=at,
                                               note=note)}
        )


def missing_for_resolution(record: IncidentRecord) -> list[str]:
    """What must still be filled in before the alert can be resolved (empty: complete)."""
    missing: list[str] = []
    if not record.what_happened.strip():
        missing.append("what_happened: describe what happened")
    if not record.actions:
        missing.append("actions: record at least one action taken, with its time")
    fc = record.family_contact
    if fc is None:
        missing.append("family_contact: say whether the family / emergency contact was told")
    elif fc.informed and fc.at is None:
        missing.append("family_contact.at: when the family / emergency contact was told")
    elif not fc.informed and not fc.reason_not.strip():
        missing.append("family_contact.reason_not: why the family was not told")
    police = record.police
    if police is None:
        missing.append("police: say whether the police were contacted")
    elif police.contacted and police.at is None:
        missing.append("police.at: when the police were contacted")
    elif not police.contacted and not police.reason_not.strip():
        missing.append("police.reason_not: why the police were not contacted")
    if record.safeguarding is None:
        missing.append("safeguarding: record that a safeguarding referral was considered")
    elif record.safeguarding.referral_made and not record.safeguarding.reference.strip():
        missing.append("safeguarding.reference: the referral's reference")
    reg = record.regulator
    if reg is None:
        missing.append("regulator: the registered manager's decision on notifying CQC")
    elif reg.decided_by_role != "manager":
        missing.append("regulator: must be decided by a manager")
    elif reg.notification_required and reg.notified_at is None:
        missing.append("regulator.notified_at: when CQC was notified")
    if record.checklist is not None:
        for step_id in record.checklist.outstanding():
            missing.append(f"checklist.{step_id}: not ticked")
    if record.sign_off is None:
        missing.append("sign_off: a manager's sign-off")
    elif record.sign_off.role != "manager":
        missing.append("sign_off: must be by a manager")
    return missing


def require_complete(record: IncidentRecord | None, alert_type: str) -> None:
    """Raise :class:`IncidentIncomplete` unless an alert of ``alert_type`` may be resolved."""
    if alert_type not in INCIDENT_ALERT_TYPES:
        return
    if record is None:
        raise IncidentIncomplete(alert_type, ["incident record: none started"])
    if record.alert_type != alert_type:
        raise IncidentError(
            f"the incident record is for a {record.alert_type}, not a {alert_type}"
        )
    missing = missing_for_resolution(record)
    if missing:
        raise IncidentIncomplete(alert_type, missing)
