"""Supervision in central on each engine, from the database alone: a gateway that stops
sending heartbeats is marked offline and ``gateway_offline`` raised (critical while a visit
window is open), and resolved when it is back; while it is silent, central raises
``visit_late`` at the window's end and ``visit_missed`` an hour later (``raised_by`` central,
``received_at`` the run's time); the gateway's later replay of its own alerts leaves each
alert once. A new Supervisor (a restarted central) raises nothing twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from central.alerts.escalation import SEVERITIES, EscalationPolicy
from central.db.engine import Database
from central.db.migrate import upgrade
from central.db.tables import audit, escalations
from central.people.models import HouseholdIn, OrganisationIn
from central.people.repository import People
from central.store import Store
from central.supervision.runner import Supervisor
from central.views import list_alerts, report
from homecall.clock import ManualClock
from homecall.plan import PlanDocument
from homecall.wire import EventType, Severity
from tests.central.test_store import GW, Chain, pairs
from tests.conftest import wait_for

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 07:00 local (GMT in March)
NEVER_ESCALATE = EscalationPolicy(acknowledge_within_min={s: None for s in SEVERITIES})


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    db = Database(database_url)
    upgrade(db)
    yield Store(db)
    db.dispose()


def status(state: str = "online", clock_ok: bool = True) -> str:
    return json.dumps({"v": 1, "gateway_id": GW, "state": state, "clock_ok": clock_ok,
                       "backlog": 0, "heartbeat_s": 10})


def test_a_silent_gateways_visit_is_alerted_by_central_and_the_replay_is_not_doubled(
    store: Store,
) -> None:
    clock = ManualClock(START)
    store.save_plan(PlanDocument.parse({
        "gateway": GW, "service_users": ["su-1"],
        "visits": [{"id": "v1", "service_user": "su-1", "start": "2026-03-02T08:00",
                    "duration_min": 30, "window": ["2026-03-02T07:45", "2026-03-02T08:15"]}],
    }), START, "coordinator")
    store.record_status(GW, status(), "online", START, caught_up=True)
    supervisor = Supervisor(store, clock, policy=NEVER_ESCALATE)
    assert supervisor.run_once() == START + timedelta(seconds=30)  # next heartbeat deadline
    assert list_alerts(store, GW) == []

    clock.set(START + timedelta(minutes=50))  # 07:50: silent for 50 min, window open
    supervisor.run_once()
    [offline] = list_alerts(store, GW)
    assert (offline["type"], offline["severity"], offline["raised_by"]) == (
        "gateway_offline", "critical", "central")
    assert offline["raised_at"] == "2026-03-02T07:00:30Z"

    clock.set(START + timedelta(minutes=75, seconds=2))  # 08:15:02, window closed
    deadline = supervisor.run_once()
    late = [a for a in list_alerts(store, GW) if a["type"] == "visit_late"]
    assert [(a["raised_by"], a["raised_at"], a["received_at"]) for a in late] == [
        ("central", "2026-03-02T08:15:00Z", "2026-03-02T08:15:02Z")]
    assert deadline == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)

    # central restarted: nothing raised twice
    restarted = Supervisor(store, clock, policy=NEVER_ESCALATE)
    restarted.run_once()
    clock.set(datetime(2026, 3, 2, 9, 15, 1, tzinfo=UTC))
    restarted.run_once()
    types = sorted(a["type"] for a in list_alerts(store, GW))
    assert types == ["gateway_offline", "visit_late", "visit_missed"]

    # the gateway comes back and replays its own alerts: each alert still once
    clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    store.record_status(GW, status(), "online", clock.now(), caught_up=True)
    chain = Chain()
    chain.next()
    late_event = chain.next(EventType.VISIT_LATE, visit_id="v1", severity=Severity.HIGH)
    missed_event = chain.next(EventType.VISIT_MISSED, visit_id="v1",
                              severity=Severity.CRITICAL, data={"supersedes": "visit_late"})
    store.store_events(pairs(late_event, missed_event), clock.now())
    restarted.run_once()
    alerts = report(store, GW)["alerts"]
    assert sorted((a["type"], a["raised_by"]) for a in alerts) == [
        ("gateway_offline", "central"), ("visit_late", "central"),
        ("visit_missed", "central")]
    by_type = {a["type"]: a for a in alerts}
    assert by_type["gateway_offline"]["status"] == "resolved"
    assert by_type["visit_missed"]["received_at"] == "2026-03-02T09:15:01Z"


def test_an_online_gateway_with_a_good_clock_is_left_to_raise_its_own(store: Store) -> None:
    clock = ManualClock(START)
    store.save_plan(PlanDocument.parse({
        "gateway": GW, "service_users": ["su-1"],
        "visits": [{"id": "v1", "service_user": "su-1", "start": "2026-03-02T07:10",
                    "duration_min": 30, "window": ["2026-03-02T07:05", "2026-03-02T07:15"]}],
    }), START, "coordinator")
    supervisor = Supervisor(store, clock)
    for minute in range(0, 30, 5):
        clock.set(START + timedelta(minutes=minute))
        store.record_status(GW, status(), "online", clock.now(), caught_up=True)
        supervisor.run_once()
    assert list_alerts(store, GW) == []


def test_a_gateway_with_a_bad_clock_is_covered_by_central(store: Store) -> None:
    clock = ManualClock(START)
    store.save_plan(PlanDocument.parse({
        "gateway": GW, "service_users": ["su-1"],
        "visits": [{"id": "v1", "service_user": "su-1", "start": "2026-03-02T07:10",
                    "duration_min": 30, "window": ["2026-03-02T07:05", "2026-03-02T07:15"]}],
    }), START, "coordinator")
    supervisor = Supervisor(store, clock)
    for minute in range(0, 30, 5):
        clock.set(START + timedelta(minutes=minute))
        store.record_status(GW, status(clock_ok=False), "online", clock.now())
        supervisor.run_once()
    assert [(a["type"], a["raised_by"]) for a in list_alerts(store, GW)] == [
        ("visit_late", "central")]


def test_last_will_raises_gateway_offline_high_outside_any_window(store: Store) -> None:
    clock = ManualClock(START)
    store.record_status(GW, status(), "online", START)
    store.record_status(GW, status("offline"), "offline", START + timedelta(seconds=5))
    Supervisor(store, clock).run_once()
    Supervisor(store, clock).run_once()
    [alert] = list_alerts(store, GW)
    assert (alert["type"], alert["severity"], alert["data"]["reason"]) == (
        "gateway_offline", "high", "last_will")


def test_an_unacknowledged_critical_alert_is_escalated_and_audited(store: Store) -> None:
    clock = ManualClock(START)
    chain = Chain()
    store.store_events(pairs(chain.next(EventType.NO_ACCESS, visit_id="v1",
                                        severity=Severity.CRITICAL)), START)
    supervisor = Supervisor(store, clock)
    assert supervisor.run_once() == START + timedelta(minutes=5)
    assert list_alerts(store, GW)[0]["status"] == "open"
    clock.set(START + timedelta(minutes=5))
    supervisor.run_once()
    [alert] = list_alerts(store, GW)
    assert (alert["status"], alert["escalations"]) == ("escalated", 1)
    assert alert["tier"] != "desk"
    with store.db.read() as conn:
        actions = [r.action for r in conn.execute(
            sa.select(audit.c.action).where(audit.c.target == f"alert:{alert['id']}"))]
        recorded = conn.execute(sa.select(escalations.c.to_tier, escalations.c.by)).all()
    assert actions == ["alert.escalated"]
    assert [tuple(r) for r in recorded] == [(alert["tier"], "system")]
    Supervisor(store, clock).run_once()  # a restarted central does not escalate it again
    assert list_alerts(store, GW)[0]["escalations"] == 1


def test_the_scheduled_supervisor_runs_by_itself_and_stops_cleanly(store: Store) -> None:
    clock = ManualClock(START)
    chain = Chain()  # a critical alert: each run re-arms for its escalation
    store.store_events(pairs(chain.next(EventType.NO_ACCESS, visit_id="v1",
                                        severity=Severity.CRITICAL)), START)
    supervisor = Supervisor(store, clock)
    supervisor.start()
    try:
        wait_for(lambda: supervisor.runs >= 1, message="the first scheduled run")
        clock.set(START + timedelta(minutes=5))
        supervisor.wake()
        wait_for(lambda: list_alerts(store, GW)[0]["status"] == "escalated",
                 message="escalation by the scheduled run")
    finally:
        stopper = threading.Thread(target=supervisor.stop)
        stopper.start()
        stopper.join(timeout=30)
    assert not stopper.is_alive(), "Supervisor.stop() hung"


def test_an_organisations_own_policy_sets_when_its_alerts_escalate(store: Store) -> None:
    """Org 1 (whose household has GW) asks for critical alerts to be taken within 2 min; the
    default (5 min) still applies to a gateway of no organisation with a policy."""
    people = People(store.db, ManualClock(START))
    people.create_organisation(OrganisationIn(name="Quick Org"), "test", org_id="org-1")
    people.create_household(HouseholdIn(gateway_id=GW, address="1 Road"), "org-1", "test")
    store.set_escalation_policy("org-1", EscalationPolicy(acknowledge_within_min={
        "critical": 2, "high": 15, "medium": 60, "low": None}), START, "mary")
    clock = ManualClock(START)
    store.store_events(pairs(Chain().next(EventType.NO_ACCESS, visit_id="v1",
                                          severity=Severity.CRITICAL)), START)
    other = Chain("gw-other")
    store.store_events(pairs(other.next(EventType.NO_ACCESS, visit_id="v9",
                                        severity=Severity.CRITICAL)), START)
    supervisor = Supervisor(store, clock)
    assert supervisor.run_once() == START + timedelta(minutes=2)
    clock.set(START + timedelta(minutes=2))
    supervisor.run_once()
    assert list_alerts(store, GW)[0]["status"] == "escalated"
    assert list_alerts(store, "gw-other")[0]["status"] == "open"  # 5 min by default
    with store.db.read() as conn:
        who = conn.execute(sa.select(audit.c.who).where(
            audit.c.action == "escalation_policy.set")).scalar()
    assert who == "mary"


def test_a_run_reads_only_the_gateways_that_are_due(store: Store) -> None:
    """At 10,000 gateways a run must not read every row: an online gateway whose last status
    came within three heartbeats, with a good clock, is left out until its deadline."""
    def gateway_status(gateway_id: str, clock_ok: bool = True) -> str:
        return json.dumps({"v": 1, "gateway_id": gateway_id, "state": "online",
                           "clock_ok": clock_ok, "backlog": 0, "heartbeat_s": 10})

    store.record_status("gw-on-time", gateway_status("gw-on-time"), "online", START)
    store.record_status("gw-silent", gateway_status("gw-silent"), "online",
                        START - timedelta(seconds=31))
    store.record_status("gw-bad-clock", gateway_status("gw-bad-clock", clock_ok=False),
                        "online", START)
    store.record_status("gw-will", json.dumps({"v": 1, "gateway_id": "gw-will",
                                               "state": "offline"}), "offline", START)
    due = {row.id for row in store.supervision_rows(due_at=START)}
    assert due == {"gw-silent", "gw-bad-clock", "gw-will"}
    assert {row.id for row in store.supervision_rows()} == due | {"gw-on-time"}
    # the next run is due when the on-time gateway's three heartbeats run out
    assert store.next_offline_deadline(START) == START + timedelta(seconds=30)

    Supervisor(store, ManualClock(START), policy=NEVER_ESCALATE).run_once()
    offline = {a["gateway"] for a in list_alerts(store) if a["type"] == "gateway_offline"}
    assert offline == {"gw-silent", "gw-will"}


def test_a_wake_that_comes_during_a_run_is_not_lost(
    store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A last will stored while a run is under way (the run has already read the gateway as
    online) must be alerted as soon as that run ends, not at the next deadline 30 s on. The
    run is held after its read so the wake lands inside it."""
    from homecall.clock import SystemClock

    clock = SystemClock()
    store.record_status(GW, status(), "online", clock.now())  # offline deadline: 30 s on
    read = threading.Event()
    release = threading.Event()
    real_rows = store.supervision_rows

    def rows_then_hold(*args: object, **kwargs: object) -> list[object]:
        rows = real_rows(*args, **kwargs)  # type: ignore[arg-type]
        if not read.is_set():
            read.set()
            release.wait(10)
        return rows

    monkeypatch.setattr(store, "supervision_rows", rows_then_hold)
    supervisor = Supervisor(store, clock, policy=NEVER_ESCALATE)
    supervisor.start()
    try:
        assert read.wait(10)
        store.record_status(GW, status("offline"), "offline", clock.now())
        supervisor.wake(GW)
        release.set()
        wait_for(lambda: any(a["type"] == "gateway_offline" for a in list_alerts(store)),
                 timeout=5, message="gateway_offline raised right after the held run")
    finally:
        release.set()
        supervisor.stop()


def test_heartbeats_central_cannot_hear_are_not_missed(store: Store) -> None:
    """While central's own link to the broker is down no gateway's heartbeat can arrive:
    nobody is marked offline for it (no alert storm from central's outage). Once central is
    back, each gateway has three heartbeats from then; one that stays silent is offline."""
    clock = ManualClock(START)
    store.record_status(GW, status(), "online", START)  # heartbeat 10 s: due at START + 30 s
    link: dict[str, datetime | None] = {"since": START}
    supervisor = Supervisor(store, clock, policy=NEVER_ESCALATE, hearing=lambda: link["since"])

    def offline_alerts() -> int:
        return sum(a["type"] == "gateway_offline" for a in list_alerts(store))

    clock.advance(10)
    link["since"] = None  # central loses the broker
    clock.advance(50)  # long past the gateway's own deadline
    supervisor.run_once()
    assert offline_alerts() == 0
    link["since"] = clock.now()  # back at START + 60 s
    clock.advance(20)
    supervisor.run_once()
    assert offline_alerts() == 0  # three heartbeats from the reconnect are not over yet
    clock.advance(11)
    supervisor.run_once()
    assert offline_alerts() == 1  # silent since central came back: offline
    [row] = store.supervision_rows()
    assert row.offline_since == "2026-03-02T07:01:30Z"  # counted from the reconnect


def _online(gateway_id: str) -> str:
    return json.dumps({"v": 1, "gateway_id": gateway_id, "state": "online", "clock_ok": True,
                       "backlog": 0, "heartbeat_s": 10})


def test_a_regional_outage_is_marked_and_alerted_in_one_run_saying_why(store: Store) -> None:
    """Forty gateways fall silent together (a regional link) and one leaves its last will:
    one run marks every silent one offline and raises one ``gateway_offline`` each, saying
    whether the gateway went silent or said goodbye; the next run raises nothing more."""
    silent = [f"gw-region-{n:02d}" for n in range(40)]
    for gateway_id in silent:
        store.record_status(gateway_id, _online(gateway_id), "online", START)
    store.record_status("gw-will", _online("gw-will"), "online", START)
    store.record_status("gw-will", json.dumps({"v": 1, "gateway_id": "gw-will",
                                               "state": "offline"}), "offline",
                        START + timedelta(seconds=5))
    clock = ManualClock(START + timedelta(seconds=31))
    supervisor = Supervisor(store, clock, policy=NEVER_ESCALATE)
    supervisor.run_once()
    alerts = [a for a in list_alerts(store) if a["type"] == "gateway_offline"]
    reasons = {a["gateway"]: a["data"]["reason"] for a in alerts}
    assert reasons == {**{g: "missed_heartbeats" for g in silent}, "gw-will": "last_will"}
    assert {a["raised_at"] for a in alerts if a["gateway"] in silent} == {
        "2026-03-02T07:00:30Z"}  # three heartbeats after the last status
    assert {row.id for row in store.supervision_rows() if row.state == "offline"} == {
        *silent, "gw-will"}
    supervisor.run_once()
    assert len([a for a in list_alerts(store) if a["type"] == "gateway_offline"]) == 41


def test_a_gateway_heard_while_the_run_decided_stays_online(store: Store) -> None:
    """Marking offline is one statement for many gateways; a gateway whose status arrived
    after supervision read its row (its ``last_seen`` moved) is not marked."""
    store.record_status("gw-a", _online("gw-a"), "online", START)
    store.record_status("gw-b", _online("gw-b"), "online", START)
    read = {row.id: row.last_seen for row in store.supervision_rows()}
    store.record_status("gw-b", _online("gw-b"), "online", START + timedelta(seconds=29))
    store.mark_offline_many([("gw-a", START + timedelta(seconds=30)),
                             ("gw-b", START + timedelta(seconds=30))], last_seen=read)
    states = {row.id: row.state for row in store.supervision_rows()}
    assert states == {"gw-a": "offline", "gw-b": "online"}


def test_raises_in_batches_keep_the_one_alert_per_visit_rule(store: Store) -> None:
    from central.ingest.alerts import Raise

    raises = [Raise(side="central", gateway_id=f"gw-batch-{n}", type="visit_late",
                    severity="high", raised_at=START, visit_id=f"v-{n}")
              for n in range(5)]
    assert store.raise_many_by_central(raises, START, per_transaction=2) == ["created"] * 5
    assert store.raise_many_by_central(raises, START, per_transaction=2) == ["duplicate"] * 5
    assert sorted((a["gateway"], a["visit"]) for a in list_alerts(store)) == [
        (f"gw-batch-{n}", f"v-{n}") for n in range(5)]
