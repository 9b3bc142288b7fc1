"""The alert lifecycle table: legal moves, refusals with their reasons, auto-resolution and
supersession, and the audit entry every move leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.alerts.actors import SYSTEM, Actor
from central.alerts.incidents import IncidentIncomplete, IncidentRecord
from central.alerts.lifecycle import (
    ALERT_STATES,
    LIFECYCLE,
    Acknowledge,
    AlertRecord,
    AutoResolve,
    Escalate,
    IllegalTransition,
    NotPermitted,
    Reopen,
    Resolve,
    Supersede,
    apply,
    cleared_by,
    supersedes,
)
from central.alerts.outcomes import InvalidOutcome, OutcomeCatalogue, OutcomeCode

T0 = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
MONITOR = Actor("u-mon", "monitor")
DUTY = Actor("u-duty", "duty")
MANAGER = Actor("u-mgr", "manager")


def alert(kind: str = "visit_late", severity: str = "high", **kw: object) -> AlertRecord:
    return AlertRecord(alert_id="a-1", type=kind, severity=severity, raised_at=T0, **kw)  # type: ignore[arg-type]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_acknowledge_then_resolve_records_who_when_and_outcome() -> None:
    a, ack = apply(alert(), Acknowledge(), MONITOR, at(2))
    assert (a.state, a.acknowledged_by, a.acknowledged_at) == ("acknowledged", "u-mon", at(2))
    assert (ack.action, ack.from_state, ack.to_state, ack.actor_id) == (
        "acknowledge", "open", "acknowledged", "u-mon")
    a, res = apply(a, Resolve("care_delivered_late", "  Carer stuck in traffic, arrived 11:40 "),
                   MONITOR, at(30))
    assert (a.state, a.outcome, a.outcome_note, a.resolved_by, a.resolved_at) == (
        "resolved", "care_delivered_late", "Carer stuck in traffic, arrived 11:40", "u-mon", at(30))
    assert res.detail == {"outcome": "care_delivered_late",
                          "note": "Carer stuck in traffic, arrived 11:40"}


def test_resolve_needs_acknowledgement_first() -> None:
    with pytest.raises(IllegalTransition, match="acknowledge the alert before resolving"):
        apply(alert(), Resolve("false_alarm", "test"), MONITOR, at(1))


@pytest.mark.parametrize("code,note,message", [
    ("no_such_code", "x", "unknown outcome code 'no_such_code'"),
    ("property_secured", "x", "does not apply to a visit_late"),
    ("care_delivered_late", "   ", "needs a note"),
])
def test_resolution_needs_a_known_applicable_code_and_a_note(code: str, note: str,
                                                            message: str) -> None:
    a, _ = apply(alert(), Acknowledge(), MONITOR, at(1))
    with pytest.raises(InvalidOutcome, match=message):
        apply(a, Resolve(code, note), MONITOR, at(2))


def test_an_organisation_can_replace_the_outcome_list() -> None:
    own = OutcomeCatalogue([OutcomeCode(code="sorted", label="Sorted", description="Done.")])
    a, _ = apply(alert(), Acknowledge(), MONITOR, at(1))
    with pytest.raises(InvalidOutcome, match="this organisation uses: sorted"):
        apply(a, Resolve("care_delivered_late", "late"), MONITOR, at(2), outcomes=own)
    a, _ = apply(a, Resolve("sorted", "rang the carer"), MONITOR, at(2), outcomes=own)
    assert a.outcome == "sorted"
    with pytest.raises(InvalidOutcome, match="listed twice"):
        OutcomeCatalogue([OutcomeCode(code="x1", label="x", description="x")] * 2)


def test_a_resolved_alert_is_reopened_only_by_a_manager_with_a_reason() -> None:
    a, _ = apply(alert(), Acknowledge(), MONITOR, at(1))
    a, _ = apply(a, Resolve("false_alarm", "sensor glitch"), MONITOR, at(2))
    for action in (Acknowledge(), Escalate("duty_team"), Resolve("false_alarm", "again")):
        with pytest.raises(IllegalTransition, match="already resolved; only a manager"):
            apply(a, action, MONITOR, at(3))
    with pytest.raises(NotPermitted, match="a monitor cannot reopen"):
        apply(a, Reopen("wrong outcome"), MONITOR, at(3))
    with pytest.raises(IllegalTransition, match="needs a reason"):
        apply(a, Reopen("  "), MANAGER, at(3))
    a, entry = apply(a, Reopen("the carer never went"), MANAGER, at(4))
    assert (a.state, a.outcome, a.acknowledged_by, a.waiting_since) == ("open", None, None, at(4))
    assert entry.detail == {"reason": "the carer never went", "previous_outcome": "false_alarm"}


def test_escalation_moves_tier_and_needs_a_new_acknowledgement() -> None:
    a, e1 = apply(alert(severity="critical"), Escalate("duty_team"), SYSTEM, at(5))
    assert (a.state, a.tier, a.escalations, a.waiting_since) == ("escalated", "duty_team", 1, at(5))
    assert e1.detail == {"from_tier": "desk", "to_tier": "duty_team", "renotify": False}
    a, _ = apply(a, Escalate("manager"), SYSTEM, at(10))
    a, e3 = apply(a, Escalate("manager"), SYSTEM, at(15))
    assert (a.tier, a.escalations, e3.detail["renotify"]) == ("manager", 3, True)
    a, _ = apply(a, Acknowledge(), MANAGER, at(16))
    assert (a.state, a.acknowledged_by) == ("acknowledged", "u-mgr")
    # staff may hand an acknowledged alert on; the next tier must take it again
    a, _ = apply(a, Escalate("duty_team"), MANAGER, at(17))
    assert (a.state, a.acknowledged_by) == ("escalated", None)


def test_system_only_moves_refuse_staff_and_staff_moves_refuse_the_system() -> None:
    with pytest.raises(NotPermitted):
        apply(alert(), AutoResolve("carer_arrived"), MONITOR, at(1))
    with pytest.raises(NotPermitted):
        apply(alert(), Acknowledge(), SYSTEM, at(1))


def test_auto_resolve_per_type_and_reason() -> None:
    a, entry = apply(alert("visit_late"), AutoResolve("carer_arrived", "c-1 at 11:20"),
                     SYSTEM, at(20))
    assert (a.state, a.outcome, a.outcome_note) == ("resolved", "auto:carer_arrived",
                                                   "c-1 at 11:20")
    assert entry.actor_role == "system"
    for kind, reason in [("gateway_offline", "gateway_back"), ("door_left_open", "door_closed"),
                         ("keysafe_left_open", "keysafe_closed")]:
        assert apply(alert(kind), AutoResolve(reason), SYSTEM, at(1))[0].state == "resolved"  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition, match="not cleared by door_closed"):
        apply(alert("visit_late"), AutoResolve("door_closed"), SYSTEM, at(1))


def test_visit_missed_is_never_auto_resolved_by_an_arrival_but_superseded() -> None:
    missed = alert("visit_missed", "critical")
    with pytest.raises(IllegalTransition, match="turns it into call_outside_tolerance"):
        apply(missed, AutoResolve("carer_arrived"), SYSTEM, at(61))
    a, entry = apply(missed, Supersede("a-2", "call_outside_tolerance"), SYSTEM, at(61))
    assert entry.detail == {"by_alert_id": "a-2", "by_type": "call_outside_tolerance"}
    assert (a.state, a.superseded_by) == ("superseded", "a-2")
    assert supersedes("call_outside_tolerance") == {"visit_missed"}
    with pytest.raises(IllegalTransition, match="superseded by another alert"):
        apply(a, Acknowledge(), MONITOR, at(62))
    with pytest.raises(IllegalTransition, match="does not supersede"):
        apply(alert("visit_late"), Supersede("a-3", "call_outside_tolerance"), SYSTEM, at(1))
    # central's own backup raise shown wrong by the gateway's events is the one exception
    a, _ = apply(missed, AutoResolve("raised_in_error"), SYSTEM, at(90))
    assert a.outcome == "auto:raised_in_error"


def test_events_that_clear_alerts() -> None:
    assert cleared_by("arrival") == (("visit_late", "carer_arrived"),)
    assert cleared_by("gateway_online") == (("gateway_offline", "gateway_back"),)
    assert cleared_by("departure") == ()


def test_incident_alerts_resolve_only_with_a_complete_record() -> None:
    a, _ = apply(alert("visit_missed", "critical"), Acknowledge(), MONITOR, at(1))
    with pytest.raises(IncidentIncomplete, match="none started"):
        apply(a, Resolve("missed_no_care_delivered", "nobody went"), MONITOR, at(2))
    draft = IncidentRecord.start("a-1", "visit_missed", MONITOR, at(1))
    with pytest.raises(IncidentIncomplete) as err:
        apply(a, Resolve("missed_no_care_delivered", "nobody went", draft), MONITOR, at(2))
    assert any(m.startswith("sign_off") for m in err.value.missing)


def test_every_state_and_action_pair_is_decided() -> None:
    """Each pair outside the table is refused with a reason (no silent no-op)."""
    commands = [Acknowledge(), Escalate("duty_team"), Resolve("false_alarm", "n"),
                AutoResolve("raised_in_error"), Supersede("a-9", "call_outside_tolerance"),
                Reopen("r")]
    roles = {"acknowledge": MANAGER, "escalate": MANAGER, "resolve": MANAGER,
             "auto_resolve": SYSTEM, "supersede": SYSTEM, "reopen": MANAGER}
    for state in ALERT_STATES:
        for cmd in commands:
            rec = alert("visit_missed" if cmd.name == "supersede" else "visit_late", state=state)
            if (state, cmd.name) in LIFECYCLE:
                new, entry = apply(rec, cmd, roles[cmd.name], at(1))
                assert new.state == LIFECYCLE[(state, cmd.name)].to == entry.to_state
            else:
                with pytest.raises(IllegalTransition) as err:
                    apply(rec, cmd, roles[cmd.name], at(1))
                assert err.value.reason and err.value.state == state
