"""Backup detection with the real rules engine over real plans: central raises the
time-based alerts at their deadlines only while the gateway cannot, each alert exists once
whichever side raised it, and central's raises proved wrong by the gateway's late events are
auto-resolved with that reason."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from central.alerts.lifecycle import cleared_by
from central.supervision.backup import (
    BackupHousehold,
    BackupRaise,
    BackupResolve,
    GatewayCondition,
    ObservedEvent,
    PlanChange,
)
from central.supervision.dedupe import AlertKey, SideRaise, merge_raise
from central.supervision.liveness import GatewayLiveness, on_status
from gateway.rules import RuleOutput
from homecall.wire import EventEnvelope, StatusMessage
from tests.rules.helpers import Household, make_plan, utc, visit

HH = "gw-test-1"
WINDOW_PLAN = make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"))])


def offline(at: datetime) -> GatewayCondition:
    return GatewayCondition(at=at, needs_backup=True)


def online(at: datetime, delivered_until: datetime | None = None) -> GatewayCondition:
    return GatewayCondition(at=at, needs_backup=False, delivered_until=delivered_until)


def event(kind: str, at: datetime, *, visit_id: str = "v-1", carer: str | None = "c-1",
          clock_ok: bool = True, received: datetime | None = None,
          data: dict[str, object] | None = None) -> ObservedEvent:
    return ObservedEvent(type=kind, time=at, received_at=received or at, visit_id=visit_id,
                         service_user_id="su-1", carer_id=carer, clock_ok=clock_ok,
                         time_trusted=clock_ok, data=data or {})


def from_output(out: RuleOutput, received: datetime) -> ObservedEvent:
    """A gateway engine output as central receives it (the gateway's own raise)."""
    return ObservedEvent(type=out.type.value, time=out.time, received_at=received,
                         visit_id=out.visit_id, service_user_id=out.service_user_id,
                         carer_id=out.carer_id, data=out.data)


def kinds(raises: list[BackupRaise]) -> list[tuple[str, str, str]]:
    return [(r.type, r.visit_id, r.time.strftime("%H:%M")) for r in raises]


def test_silent_gateway_visit_late_at_window_end_and_missed_an_hour_later() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    assert backup.due(utc("06:00")) == []
    assert backup.next_deadline() == utc("11:00")
    assert backup.due(utc("10:59:59")) == []
    late = backup.due(utc("11:00"))
    assert kinds(late) == [("visit_late", "v-1", "11:00")]
    assert late[0].severity == "high" and late[0].data["raised_by"] == "central"
    assert late[0].data["window_end"] == "2026-03-02T11:00:00Z"
    assert backup.due(utc("11:30")) == []  # raised once
    assert backup.next_deadline() == utc("12:00")
    assert kinds(backup.due(utc("12:00"))) == [("visit_missed", "v-1", "12:00")]
    assert backup.next_deadline() is None


def test_the_same_alerts_as_the_gateway_engine_at_the_same_deadlines() -> None:
    """A day with a double-up, an overstay and a missed visit: central's backup raises what
    the gateway engine raises for the time-based types, at the same times."""
    plan = make_plan([
        visit("v-1", "08:00", 30, window=("07:00", "09:00"), required=2, carers=("c-1", "c-2")),
        visit("v-2", "12:00", 30),
        visit("v-3", "18:00", 45, carers=("c-3",)),
    ])
    gateway = Household(plan)
    gateway.tap("08:05", "c-1")
    gateway.tap("18:10", "c-3")
    gateway.until("23:59")
    expected = [(o.type.value, o.visit_id, o.time.strftime("%H:%M")) for o in gateway.outputs
                if o.type.value in {"visit_late", "visit_missed", "departure_missing",
                                    "double_up_incomplete"}]
    backup = BackupHousehold(HH, plan)
    backup.observe(offline(utc("00:00")))
    for out in gateway.outputs:
        if out.type.value in {"arrival", "departure"}:
            backup.observe(from_output(out, out.time))
    raised: list[BackupRaise] = []
    while (deadline := backup.next_deadline()) is not None and deadline <= utc("23:59"):
        raised += backup.due(deadline)
    assert kinds(raised) == expected
    assert [k[0] for k in expected] == [
        "double_up_incomplete", "departure_missing", "visit_late", "visit_missed",
        "departure_missing"]


def test_online_gateway_with_good_clock_central_raises_nothing() -> None:
    gateway = Household(WINDOW_PLAN)
    gateway.until("13:00")
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(online(utc("06:00")))
    assert backup.due(utc("11:00")) == []
    for out in gateway.outputs:  # the gateway's own alerts arrive within the second
        assert backup.observe(from_output(out, out.time + timedelta(seconds=1))) == []
        assert backup.due(out.time + timedelta(seconds=1)) == []
    assert backup.raised_by_gateway == {AlertKey(HH, "v-1", "visit_late"),
                                        AlertKey(HH, "v-1", "visit_missed")}
    backup.observe(offline(utc("13:00")))  # it dies later: nothing left to cover
    assert backup.due(utc("13:00")) == []
    assert backup.raised_by_central == frozenset()


def test_gateway_that_died_just_before_the_deadline_is_covered_once_it_is_known_offline() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(online(utc("10:59:50"), delivered_until=utc("10:59:40")))
    assert backup.due(utc("11:00")) == []  # online: the gateway's job
    backup.observe(offline(utc("11:00:20")))  # three heartbeats later
    assert backup.next_deadline() == utc("11:00")  # already past: call due() now
    assert kinds(backup.due(utc("11:00:20"))) == [("visit_late", "v-1", "11:00")]


def test_deadlines_the_gateway_had_already_answered_for_are_not_raised_later() -> None:
    """Caught up after the deadline without raising it: the gateway decided (for instance on
    a newer plan); central must not raise it hours later when the gateway dies."""
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(online(utc("10:00")))
    backup.due(utc("11:30"))
    backup.observe(online(utc("11:30"), delivered_until=utc("11:29:50")))
    backup.observe(offline(utc("11:45")))
    assert kinds(backup.due(utc("11:45"))) == []
    assert kinds(backup.due(utc("12:00"))) == [("visit_missed", "v-1", "12:00")]


def test_replayed_gateway_alerts_make_one_alert_each_with_both_raises_recorded() -> None:
    gateway = Household(WINDOW_PLAN)
    gateway.until("13:00")  # offline with a good clock: it raised them too, in its journal
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    store: dict[AlertKey, object] = {}
    for t in ("11:00", "12:00"):
        for r in backup.due(utc(t)):
            store[r.key], result = merge_raise(None, r.key, SideRaise("central", r.time, utc(t)))
            assert result == "created"
    replay_at = utc("14:00")
    for i, out in enumerate(gateway.outputs):
        assert backup.observe(from_output(out, replay_at)) == []  # no errors
        key = AlertKey.of(HH, str(out.visit_id), out.type.value)
        merged, result = merge_raise(store[key], key,  # type: ignore[arg-type]
                                     SideRaise("gateway", out.time, replay_at, event_seq=i + 1))
        assert result == "recorded"
        assert merged.raised_by == "central" and merged.received_at == out.time
        assert [r.side for r in merged.raises] == ["central", "gateway"]
        again, result = merge_raise(merged, key, SideRaise("gateway", out.time, replay_at, i + 1))
        assert (again, result) == (merged, "duplicate")
    assert len(store) == 2


def test_raised_in_error_when_the_gateway_had_an_arrival_central_had_not_seen() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    assert kinds(backup.due(utc("11:00"))) == [("visit_late", "v-1", "11:00")]
    # the gateway comes back at 11:30 and delivers the 10:50 arrival from its journal
    backup.observe(online(utc("11:30")))
    actions = backup.observe(event("arrival", utc("10:50"), received=utc("11:30")))
    assert actions == [BackupResolve(AlertKey(HH, "v-1", "visit_late"), "raised_in_error",
                                     actions[0].detail)]  # type: ignore[union-attr]
    assert "arrival before the window closed" in actions[0].detail  # type: ignore[union-attr]
    backup.observe(offline(utc("11:31")))
    # no visit_missed for a visit that happened; the carer never tapped out, though
    assert [r.type for r in backup.due(utc("13:00"))] == ["departure_missing"]


def test_a_genuinely_late_arrival_keeps_visit_late_which_the_lifecycle_clears() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    backup.due(utc("11:00"))
    assert backup.observe(event("arrival", utc("11:20"), received=utc("11:30"))) == []
    assert cleared_by("arrival") == (("visit_late", "carer_arrived"),)
    # arrived: no visit_missed (only the missing departure tap, an hour after 11:50)
    assert kinds(backup.due(utc("13:00"))) == [("departure_missing", "v-1", "12:50")]


def test_visit_missed_raised_in_error_too() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    backup.due(utc("12:00"))
    actions = backup.observe(event("arrival", utc("11:40"), received=utc("12:10")))
    assert [(a.key.type, type(a).__name__) for a in actions] == [
        ("visit_missed", "BackupResolve")]


def test_bad_clock_late_arrival_after_centrals_visit_missed_is_call_outside_tolerance() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    live, _ = on_status(GatewayLiveness(HH), StatusMessage(
        gateway_id=HH, state="online", clock_ok=False, backlog=0, heartbeat_s=10), utc("06:00"))
    backup.observe(GatewayCondition.from_liveness(live, utc("06:00")))
    assert kinds(backup.due(utc("12:00"))) == [("visit_late", "v-1", "11:00"),
                                              ("visit_missed", "v-1", "12:00")]
    actions = backup.observe(event("arrival", utc("12:31"), clock_ok=False))
    assert len(actions) == 1 and isinstance(actions[0], BackupRaise)
    cot = actions[0]
    assert (cot.type, cot.severity, cot.time, cot.data["supersedes"]) == (
        "call_outside_tolerance", "high", utc("12:31"), "visit_missed")


def test_good_clock_late_arrival_leaves_call_outside_tolerance_to_the_gateway() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    backup.due(utc("12:00"))
    assert backup.observe(event("arrival", utc("12:31"), received=utc("14:00"))) == []


def test_departure_missing_from_a_trusted_arrival_only() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    backup.observe(event("arrival", utc("08:00")))
    assert backup.next_deadline() == utc("09:30")  # planned end 08:30 + 60 min
    assert kinds(backup.due(utc("09:30"))) == [("departure_missing", "v-1", "09:30")]
    assert backup.due(utc("10:00")) == []  # once
    untrusted = BackupHousehold(HH, WINDOW_PLAN)
    untrusted.observe(offline(utc("06:00")))
    untrusted.observe(event("arrival", utc("08:00"), clock_ok=False))
    assert untrusted.due(utc("23:00")) == []


def test_departure_missing_in_error_when_the_departure_arrives_late() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    backup.observe(event("arrival", utc("08:00")))
    backup.due(utc("09:30"))
    actions = backup.observe(event("departure", utc("08:35"), received=utc("10:00")))
    assert [(a.key.type, a.key.sub) for a in actions] == [("departure_missing", "c-1")]


def test_double_up_incomplete_and_its_error_when_the_second_carer_had_arrived() -> None:
    plan = make_plan([visit("v-1", "08:00", 30, required=2, carers=("c-1", "c-2"))])
    backup = BackupHousehold(HH, plan)
    backup.observe(offline(utc("06:00")))
    backup.observe(event("arrival", utc("08:00")))
    assert kinds(backup.due(utc("08:15"))) == [("double_up_incomplete", "v-1", "08:15")]
    actions = backup.observe(event("arrival", utc("08:10"), carer="c-2", received=utc("08:20")))
    assert [a.key.type for a in actions] == ["double_up_incomplete"]


def test_a_no_reply_report_stops_the_late_and_missed_alerts() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    backup.observe(event("no_access", utc("09:00"), carer=None))
    assert backup.due(utc("13:00")) == []


def test_a_cancelled_visit_raises_nothing_and_a_new_household_not_its_past() -> None:
    backup = BackupHousehold(HH, WINDOW_PLAN)
    backup.observe(offline(utc("06:00")))
    cancelled = make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"),
                                 status="cancelled")], version=2)
    backup.observe(PlanChange(cancelled, utc("09:00")))
    assert backup.due(utc("13:00")) == []
    late_start = BackupHousehold(HH, WINDOW_PLAN, since=utc("15:00"))
    late_start.observe(offline(utc("15:00")))
    assert late_start.due(utc("15:00")) == [] and late_start.next_deadline() is None


def test_facts_out_of_order_give_the_same_alerts_as_in_order() -> None:
    plan = make_plan([
        visit("v-1", "08:00", 30, window=("07:00", "09:00"), required=2, carers=("c-1", "c-2")),
        visit("v-2", "12:00", 30, carers=("c-3",)),
        visit("v-3", "18:00", 30),
    ])
    facts = [event("arrival", utc("08:05")), event("arrival", utc("08:12"), carer="c-2"),
             event("departure", utc("08:40")), event("departure", utc("08:41"), carer="c-2"),
             event("arrival", utc("12:40"), visit_id="v-2", carer="c-3")]

    def run(order: list[ObservedEvent]) -> dict[AlertKey, datetime]:
        backup = BackupHousehold(HH, plan)
        backup.observe(online(utc("00:00")))
        for fact in order:
            backup.observe(fact)
        backup.due(utc("23:59"))
        return backup.expected()

    in_order = run(facts)
    shuffled = facts[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != facts
    assert run(shuffled) == in_order
    assert run(facts[::-1]) == in_order
    assert sorted((k.type, k.visit_id) for k in in_order) == [
        ("departure_missing", "v-2"), ("visit_late", "v-2"), ("visit_late", "v-3"),
        ("visit_missed", "v-3")]


def test_spring_change_day_deadlines_in_local_time() -> None:
    day = "2026-03-29"
    plan = make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"), day=day),
                      visit("v-2", "01:30", 30, day=day)])  # 01:30 does not exist: 02:30 BST
    backup = BackupHousehold(HH, plan)
    backup.observe(offline(datetime(2026, 3, 28, 23, 0, tzinfo=UTC)))
    raised: list[BackupRaise] = []
    while (deadline := backup.next_deadline()) is not None:
        raised += backup.due(deadline)
    assert [(r.type, r.visit_id, r.time) for r in raised] == [
        ("visit_late", "v-2", datetime(2026, 3, 29, 2, 0, tzinfo=UTC)),   # 03:00 BST
        ("visit_missed", "v-2", datetime(2026, 3, 29, 3, 0, tzinfo=UTC)),
        ("visit_late", "v-1", datetime(2026, 3, 29, 10, 0, tzinfo=UTC)),  # 11:00 BST
        ("visit_missed", "v-1", datetime(2026, 3, 29, 11, 0, tzinfo=UTC)),
    ]


def test_autumn_change_day_window_across_the_repeated_hour() -> None:
    day = "2026-10-25"
    plan = make_plan([visit("v-1", "01:15", 30, window=("01:00", "02:00"), day=day)])
    backup = BackupHousehold(HH, plan)
    backup.observe(offline(datetime(2026, 10, 24, 22, 0, tzinfo=UTC)))
    # 01:00 BST (00:00Z) to 02:00 GMT (02:00Z): two real hours
    assert backup.next_deadline() == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    assert backup.due(datetime(2026, 10, 25, 1, 59, tzinfo=UTC)) == []
    assert [r.type for r in backup.due(datetime(2026, 10, 25, 3, 0, tzinfo=UTC))] == [
        "visit_late", "visit_missed"]


def test_observed_event_from_an_envelope_with_a_bad_clock_uses_the_receive_time() -> None:
    body = {"id": "e-1", "gateway_id": HH, "seq": 3, "type": "arrival",
            "time": "2000-01-01T00:00:00Z", "mono": 12.5, "boot_id": "b", "clock_ok": False,
            "visit_id": "v-1", "carer_id": "c-1", "prev_hash": "0" * 64, "hash": "0" * 64}
    envelope = EventEnvelope.model_validate(body)
    live = ObservedEvent.from_envelope(envelope, utc("08:00"), live=True)
    assert (live.time, live.time_trusted, live.clock_ok, live.seq) == (utc("08:00"), True,
                                                                     False, 3)
    replayed = ObservedEvent.from_envelope(envelope, utc("14:00"), live=False)
    assert (replayed.time, replayed.time_trusted) == (utc("14:00"), False)
    good = EventEnvelope.model_validate({**body, "clock_ok": True,
                                         "time": "2026-03-02T08:00:00Z"})
    assert ObservedEvent.from_envelope(good, utc("14:00"), live=False).time == utc("08:00")


def test_after_a_restart_nothing_is_raised_twice_and_errors_are_still_found() -> None:
    first = BackupHousehold(HH, WINDOW_PLAN)
    first.observe(offline(utc("06:00")))
    raised = {r.key: utc(t) for t in ("11:00", "12:00") for r in first.due(utc(t))}
    assert len(raised) == 2
    # central restarts at 12:05: rebuilt from what the database holds
    again = BackupHousehold(HH, WINDOW_PLAN)
    again.mark_raised_by_central(raised)
    again.observe(offline(utc("12:05")))
    assert again.due(utc("12:05")) == []
    assert again.observe(event("no_access", utc("12:03"), carer=None)) == []
    # the restored visit_missed is proved wrong by an arrival delivered after the restart;
    # the restored visit_late stands (the arrival was after the window)
    late = BackupHousehold(HH, WINDOW_PLAN)
    late.mark_raised_by_central(raised)
    late.observe(offline(utc("12:05")))
    actions = late.observe(event("arrival", utc("11:20"), received=utc("12:10")))
    assert [(a.key.type, type(a).__name__) for a in actions] == [
        ("visit_missed", "BackupResolve")]
