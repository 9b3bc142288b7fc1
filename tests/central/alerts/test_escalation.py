"""Escalation: deadlines per severity, tiers by office hours (DST-correct), reminders at the
last tier, and the escalation applied through the lifecycle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from central.alerts.actors import SYSTEM, Actor
from central.alerts.escalation import (
    EscalationPolicy,
    EscalationStep,
    OfficeHours,
    PolicyError,
    Tier,
    due_escalation,
    next_escalation,
    tiers_to_notify_on_raise,
)
from central.alerts.lifecycle import Acknowledge, AlertRecord, apply

POLICY = EscalationPolicy()
MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # GMT: office hours
MONDAY_NIGHT = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # out of hours


def alert(severity: str, raised: datetime, kind: str = "visit_late") -> AlertRecord:
    return AlertRecord(alert_id="a-1", type=kind, severity=severity, raised_at=raised)


def run(record: AlertRecord, policy: EscalationPolicy, until: datetime) -> list[tuple[str, str]]:
    """Wake at each escalation deadline up to ``until`` and apply it, as the scheduler does;
    returns (UTC HH:MM, tier) for each escalation."""
    seen: list[tuple[str, str]] = []
    while (step := next_escalation(record, policy)) is not None and step.due_at <= until:
        assert due_escalation(record, policy, step.due_at - timedelta(seconds=1)) is None
        command = due_escalation(record, policy, step.due_at)
        assert command is not None
        record, _ = apply(record, command, SYSTEM, step.due_at)
        seen.append((step.due_at.strftime("%H:%M"), command.tier))
    return seen


def test_default_waits_per_severity() -> None:
    assert next_escalation(alert("critical", MONDAY_NOON), POLICY) == EscalationStep(
        MONDAY_NOON + timedelta(minutes=5), "manager", remind=False)
    step = next_escalation(alert("high", MONDAY_NOON), POLICY)
    assert step is not None and step.due_at == MONDAY_NOON + timedelta(minutes=15)
    step = next_escalation(alert("medium", MONDAY_NOON), POLICY)
    assert step is not None and step.due_at == MONDAY_NOON + timedelta(minutes=60)
    assert next_escalation(alert("low", MONDAY_NOON), POLICY) is None


def test_office_hours_skip_the_out_of_hours_duty_team() -> None:
    assert run(alert("critical", MONDAY_NOON), POLICY, MONDAY_NOON + timedelta(minutes=31)) == [
        ("12:05", "manager"), ("12:20", "manager")]


def test_out_of_hours_chain_is_desk_duty_team_manager_then_reminders() -> None:
    assert run(alert("critical", MONDAY_NIGHT), POLICY, MONDAY_NIGHT + timedelta(minutes=40)) == [
        ("22:05", "duty_team"), ("22:10", "manager"), ("22:25", "manager"), ("22:40", "manager")]


def test_acknowledgement_stops_escalation() -> None:
    record, _ = apply(alert("critical", MONDAY_NIGHT), Acknowledge(), Actor("u", "monitor"),
                      MONDAY_NIGHT + timedelta(minutes=2))
    assert next_escalation(record, POLICY) is None
    assert due_escalation(record, POLICY, MONDAY_NIGHT + timedelta(hours=5)) is None


def test_no_reminders_when_the_policy_says_so() -> None:
    policy = EscalationPolicy(remind_last_tier_min=None)
    assert run(alert("high", MONDAY_NIGHT), policy, MONDAY_NIGHT + timedelta(hours=3)) == [
        ("22:15", "duty_team"), ("22:30", "manager")]


def test_office_hours_use_local_time_across_dst() -> None:
    """08:30 UTC on 30 March 2026 is 09:30 BST: in office hours; on 2 March it is 08:30 GMT."""
    hours = OfficeHours()
    assert hours.contains(datetime(2026, 3, 30, 8, 30, tzinfo=UTC))
    assert not hours.contains(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    assert not hours.contains(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # Saturday
    bank = OfficeHours(closed_days=frozenset({date(2026, 4, 6)}))
    assert not bank.contains(datetime(2026, 4, 6, 11, 0, tzinfo=UTC))  # Easter Monday


def test_the_tier_is_chosen_at_the_deadline_not_at_the_raise() -> None:
    """Raised 16:50 GMT (office), a high alert escalates at 17:05: out of hours by then."""
    raised = datetime(2026, 3, 2, 16, 50, tzinfo=UTC)
    step = next_escalation(alert("high", raised), POLICY)
    assert step is not None and step.to_tier == "duty_team"


def test_no_access_out_of_hours_tells_the_duty_team_at_once() -> None:
    assert tiers_to_notify_on_raise(POLICY, "no_access", MONDAY_NIGHT) == ("desk", "duty_team")
    assert tiers_to_notify_on_raise(POLICY, "no_access", MONDAY_NOON) == ("desk",)
    assert tiers_to_notify_on_raise(POLICY, "visit_late", MONDAY_NIGHT) == ("desk",)


def test_an_organisation_policy_is_validated() -> None:
    with pytest.raises(ValidationError, match="unknown severities"):
        EscalationPolicy(acknowledge_within_min={"urgent": 5})
    with pytest.raises(ValidationError, match="first tier must cover every hour"):
        EscalationPolicy(tiers=(Tier(name="duty_team", hours="out_of_hours"),))
    with pytest.raises(ValidationError, match="unique"):
        EscalationPolicy(tiers=(Tier(name="desk"), Tier(name="desk")))
    with pytest.raises(ValidationError, match="unknown time zone"):
        OfficeHours(timezone="Mars/Olympus")
    with pytest.raises(PolicyError, match="not in this policy"):
        POLICY.next_tier("nobody", MONDAY_NOON)
    own = EscalationPolicy(acknowledge_within_min={"critical": 2, "high": 10})
    step = next_escalation(alert("medium", MONDAY_NOON), own)
    assert step is None  # a severity the organisation leaves out is never escalated
