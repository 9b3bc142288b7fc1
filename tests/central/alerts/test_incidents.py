"""Incident records: what must be filled in before resolution, who may decide and sign,
and the no-response checklist whose ticks record who and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.alerts.actors import SYSTEM, Actor
from central.alerts.incidents import (
    NO_RESPONSE_CHECKLIST,
    ContactDecision,
    IncidentError,
    IncidentIncomplete,
    IncidentRecord,
    PoliceDecision,
    SafeguardingDecision,
    missing_for_resolution,
)
from central.alerts.lifecycle import Acknowledge, AlertRecord, Resolve, apply

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MONITOR = Actor("u-mon", "monitor")
CARER_DESK = Actor("u-desk", "duty")
MANAGER = Actor("u-mgr", "manager")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def filled(kind: str = "visit_missed") -> IncidentRecord:
    r = IncidentRecord.start("a-1", kind, MONITOR, at(0))
    r = r.model_copy(update={
        "what_happened": "No carer attended the 08:00 visit; rota gap after sickness.",
        "family_contact": ContactDecision(informed=True, at=at(10), by="u-mon",
                                          contact="son (emergency contact)"),
        "police": PoliceDecision(contacted=False, by="u-mon",
                                 reason_not="person at home and safe"),
        "safeguarding": SafeguardingDecision(considered_at=at(30), by="u-mgr",
                                             referral_made=False,
                                             rationale="no harm, one-off rota error"),
    })
    r = r.add_action(MONITOR, at(5), "Rang the person: at home, had not had breakfast")
    r = r.add_action(MONITOR, at(8), "Sent c-2, arrived 12:40")
    return r.decide_regulator(MANAGER, at(40), required=False, rationale="no harm")


def test_a_new_record_lists_everything_still_missing() -> None:
    r = IncidentRecord.start("a-1", "visit_missed", MONITOR, at(0))
    fields = [m.split(":")[0] for m in missing_for_resolution(r)]
    assert fields == ["what_happened", "actions", "family_contact", "police", "safeguarding",
                      "regulator", "sign_off"]


def test_complete_record_signed_by_a_manager_allows_resolution() -> None:
    r = filled()
    assert [m.split(":")[0] for m in missing_for_resolution(r)] == ["sign_off"]
    with pytest.raises(IncidentError, match="only a manager can sign"):
        r.sign(MONITOR, at(50))
    r = r.sign(MANAGER, at(50), "satisfied")
    assert missing_for_resolution(r) == []
    assert (r.sign_off.by, r.sign_off.at) == ("u-mgr", at(50))  # type: ignore[union-attr]
    alert = AlertRecord(alert_id="a-1", type="visit_missed", severity="critical", raised_at=T0)
    alert, _ = apply(alert, Acknowledge(), MONITOR, at(1))
    done, entry = apply(alert, Resolve("covered_by_another_carer", "c-2 went", r), MONITOR,
                        at(51))
    assert done.state == "resolved" and entry.detail["incident_signed_by"] == "u-mgr"


def test_sign_off_refused_while_fields_are_missing() -> None:
    r = IncidentRecord.start("a-1", "call_outside_tolerance", MONITOR, at(0))
    with pytest.raises(IncidentIncomplete, match="what_happened"):
        r.sign(MANAGER, at(1))


def test_only_a_manager_decides_on_the_regulator() -> None:
    r = IncidentRecord.start("a-1", "visit_missed", MONITOR, at(0))
    with pytest.raises(IncidentError, match="registered manager"):
        r.decide_regulator(MONITOR, at(1), required=True, rationale="x")
    r = r.decide_regulator(MANAGER, at(1), required=True, rationale="harm")
    assert "regulator.notified_at: when CQC was notified" in missing_for_resolution(r)


def test_decisions_that_are_no_need_a_reason() -> None:
    r = filled().model_copy(update={
        "family_contact": ContactDecision(informed=False, by="u-mon"),
        "police": PoliceDecision(contacted=True, by="u-mon"),
    })
    missing = missing_for_resolution(r)
    assert "family_contact.reason_not: why the family was not told" in missing
    assert "police.at: when the police were contacted" in missing


def test_incident_record_only_for_incident_types_and_aware_times() -> None:
    with pytest.raises(IncidentError, match="does not take an incident record"):
        IncidentRecord.start("a-1", "visit_late", MONITOR, at(0))
    with pytest.raises(ValueError, match="UTC offset"):
        IncidentRecord.start("a-1", "no_access", MONITOR, datetime(2026, 3, 2, 12, 0))


def test_no_access_checklist_ticks_record_user_and_time() -> None:
    r = IncidentRecord.start("a-1", "no_access", MONITOR, at(0))
    assert r.checklist is not None
    assert r.checklist.outstanding() == [s.id for s in NO_RESPONSE_CHECKLIST.steps]
    r = r.tick("tell_duty", Actor("c-1", "duty"), at(1))
    r = r.tick("notify_council", CARER_DESK, at(2), note="out of hours team, ref 123")
    tick = r.checklist.tick_for("notify_council")  # type: ignore[union-attr]
    assert tick is not None and (tick.by, tick.at, tick.status) == ("u-desk", at(2), "done")
    with pytest.raises(IncidentError, match="already ticked by u-desk"):
        r.tick("notify_council", MONITOR, at(3))
    with pytest.raises(IncidentError, match="no step 'make_tea'"):
        r.tick("make_tea", MONITOR, at(3))
    with pytest.raises(IncidentError, match="is required"):
        r.tick("inform_family", MONITOR, at(3), not_applicable_reason="no family")
    with pytest.raises(IncidentError, match="say why"):
        r.tick("ask_neighbours", MONITOR, at(3), not_applicable_reason=" ")
    with pytest.raises(IncidentError, match="by a person"):
        r.tick("ask_neighbours", SYSTEM, at(3))
    r = r.tick("ask_neighbours", MONITOR, at(3), not_applicable_reason="not in the plan")
    assert r.checklist.tick_for("ask_neighbours").status == "not_applicable"  # type: ignore[union-attr]
    assert "checklist.call_police: not ticked" in missing_for_resolution(r)
    assert "checklist.tell_duty: not ticked" not in missing_for_resolution(r)


def test_no_access_resolves_once_every_step_is_ticked() -> None:
    r = filled("no_access")
    for step in NO_RESPONSE_CHECKLIST.steps:
        r = r.tick(step.id, MONITOR, at(20))
    r = r.sign(MANAGER, at(60))
    assert missing_for_resolution(r) == []


def test_other_types_have_no_checklist() -> None:
    with pytest.raises(IncidentError, match="has no checklist"):
        filled().tick("tell_duty", MONITOR, at(1))
