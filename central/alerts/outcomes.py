"""Outcome codes: how staff close an alert, as a catalogue an organisation can replace.

This module owns :data:`DEFAULT_OUTCOMES` (each code with a label and what it means) and
:class:`OutcomeCatalogue`, which checks that a resolution names a code that exists and
applies to the alert's type. An organisation may supply its own list (for example to match
its incident-reporting categories); the catalogue is then built from that list instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from central.alerts import AlertDeskError


class InvalidOutcome(AlertDeskError):
    """A resolution without a known, applicable outcome code or without a note."""


class OutcomeCode(BaseModel):
    """One way an alert can end. ``applies_to`` empty means every alert type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,47}$")
    label: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=500)
    applies_to: frozenset[str] = frozenset()


_VISIT = frozenset(
    {
        "visit_late",
        "visit_missed",
        "call_outside_tolerance",
        "no_access",
        "double_up_incomplete",
        "short_visit",
        "departure_missing",
        "unplanned_visit",
    }
)
_HOME = frozenset(
    {"keysafe_unexpected", "keysafe_left_open", "door_left_open", "unknown_tag"}
)
_EQUIPMENT = frozenset({"device_fault", "gateway_offline", "unknown_tag"})

DEFAULT_OUTCOMES: tuple[OutcomeCode, ...] = (
    OutcomeCode(
        code="care_delivered_late",
        label="Care delivered late",
        description="The carer arrived after the window; the person received their care. "
        "Record how late and why in the note.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="care_delivered_not_recorded",
        label="Care delivered, not recorded",
        description="The visit happened but was not recorded on the reader (forgotten tap, "
        "lost fob, reader fault); confirmed with the carer and, where possible, the person.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="covered_by_another_carer",
        label="Covered by another carer",
        description="The desk sent another carer (or the duty team attended) and the person "
        "received their care.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="rearranged_with_person",
        label="Rearranged with the person or family",
        description="A different time was agreed with the person or their family and the "
        "visit plan updated.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="not_needed_person_away",
        label="Not needed: person away or in hospital",
        description="The person was admitted to hospital or was away and the provider had not "
        "been told; the visit is cancelled in the plan and the coordinator informed.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="person_found_safe",
        label="Person found safe",
        description="After no reply or no access, the person was located and is safe "
        "(at a relative's, out shopping, asleep and not hearing the door).",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="access_refused_person_safe",
        label="Access refused, person safe",
        description="The person declined the visit; contact was made, there were no care "
        "needs that could not wait, and the contingency plan was followed.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="emergency_services_involved",
        label="Emergency services involved",
        description="An ambulance or the police were called (person unwell, fallen, or "
        "whereabouts unknown). The incident record holds the details.",
    ),
    OutcomeCode(
        code="missed_no_care_delivered",
        label="Missed: no care delivered",
        description="Nobody attended and the visit could not be covered. An incident record "
        "is required and the registered manager decides on referrals.",
        applies_to=_VISIT,
    ),
    OutcomeCode(
        code="property_secured",
        label="Property secured",
        description="The door or key safe was found open and was closed by a carer, the "
        "person or a neighbour at the desk's request.",
        applies_to=_HOME,
    ),
    OutcomeCode(
        code="authorised_access",
        label="Authorised access",
        description="The key safe or door was used by someone entitled to (family, a nurse, "
        "a carer whose tap was not recorded).",
        applies_to=_HOME,
    ),
    OutcomeCode(
        code="equipment_fixed",
        label="Equipment fixed",
        description="The reader, sensor hub or gateway was repaired, replaced, re-powered or "
        "reconnected.",
        applies_to=_EQUIPMENT,
    ),
    OutcomeCode(
        code="equipment_issue_referred",
        label="Equipment issue referred",
        description="A technician visit or supplier ticket was raised; the desk watches the "
        "household by phone until it is fixed.",
        applies_to=_EQUIPMENT,
    ),
    OutcomeCode(
        code="false_alarm",
        label="False alarm",
        description="Nothing was wrong: a test, a sensor glitch, or the alert was raised on "
        "information that later proved incomplete.",
    ),
    OutcomeCode(
        code="other",
        label="Other",
        description="None of the above; the note must say what happened.",
    ),
)


class OutcomeCatalogue:
    """The outcome codes one organisation uses, looked up by code."""

    def __init__(self, outcomes: Iterable[OutcomeCode]) -> None:
        self._by_code: dict[str, OutcomeCode] = {}
        for outcome in outcomes:
            if outcome.code in self._by_code:
                raise InvalidOutcome(f"outcome code {outcome.code!r} is listed twice")
            self._by_code[outcome.code] = outcome
        if not self._by_code:
            raise InvalidOutcome("an outcome catalogue needs at least one code")

    @classmethod
    def default(cls) -> OutcomeCatalogue:
        return cls(DEFAULT_OUTCOMES)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._by_code)

    def for_type(self, alert_type: str) -> tuple[OutcomeCode, ...]:
        """The codes a monitor may pick for an alert of ``alert_type``, in catalogue order."""
        return tuple(
            o for o in self._by_code.values() if not o.applies_to or alert_type in o.applies_to
        )

    def check(self, code: str, alert_type: str, note: str) -> OutcomeCode:
        """The outcome for ``code``, or :class:`InvalidOutcome` saying what is wrong."""
        outcome = self._by_code.get(code)
        if outcome is None:
            raise InvalidOutcome(
                f"unknown outcome code {code!r}; this organisation uses: "
                + ", ".join(self._by_code)
            )
        if outcome.applies_to and alert_type not in outcome.applies_to:
            raise InvalidOutcome(f"outcome {code!r} does not apply to a {alert_type} alert")
        if not note.strip():
            raise InvalidOutcome("a resolution needs a note saying what was done")
        return outcome
