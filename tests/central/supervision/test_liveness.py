"""Gateway liveness: offline after three missed heartbeats or on the last-will, back only on
an online status, and the severity of gateway_offline from the household's visit windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.supervision import SupervisionError
from central.supervision.liveness import (
    GatewayLiveness,
    check,
    next_window_start,
    offline_deadline,
    offline_severity,
    on_event,
    on_status,
    windows_open,
)
from homecall.wire import StatusMessage
from tests.rules.helpers import make_plan, utc, visit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def status(state: str = "online", *, clock_ok: bool = True, backlog: int = 0,
           heartbeat_s: float = 10.0, gw: str = "gw-test-1") -> StatusMessage:
    return StatusMessage(gateway_id=gw, state=state, clock_ok=clock_ok, backlog=backlog,  # type: ignore[arg-type]
                         heartbeat_s=heartbeat_s, boot_id="boot-1")


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_offline_after_three_missed_heartbeats() -> None:
    live, changes = on_status(GatewayLiveness("gw-test-1"), status(), s(0))
    assert live.state == "online" and [c.kind for c in changes] == ["online"]
    live, _ = on_status(live, status(), s(10))
    assert offline_deadline(live) == s(40)
    assert check(live, s(39.9)) == (live, [])
    live, changes = check(live, s(45))
    assert live.state == "offline" and live.offline_since == s(40)
    assert [(c.kind, c.at, c.reason) for c in changes] == [("offline", s(40), "missed_heartbeats")]
    assert offline_deadline(live) is None
    assert check(live, s(100)) == (live, [])  # raised once


def test_last_will_is_offline_at_once_and_an_online_status_brings_it_back() -> None:
    live, _ = on_status(GatewayLiveness("gw-test-1"), status(), s(0))
    live, changes = on_status(live, status("offline"), s(5))
    assert [(c.kind, c.reason) for c in changes] == [("offline", "last_will")]
    assert on_status(live, status("offline"), s(6)) == (live, [])
    # a late event from before it died does not bring it back
    assert on_event(live, s(7)) == live
    live, changes = on_status(live, status(), s(65))
    assert [(c.kind, c.offline_for) for c in changes] == [("online", timedelta(seconds=60))]
    assert live.state == "online" and live.offline_reason is None


def test_events_from_an_online_gateway_are_signs_of_life() -> None:
    live, _ = on_status(GatewayLiveness("gw-test-1"), status(), s(0))
    live = on_event(live, s(25))
    assert offline_deadline(live) == s(55)


def test_the_heartbeat_interval_comes_from_the_status() -> None:
    live, _ = on_status(GatewayLiveness("gw-test-1"), status(heartbeat_s=60), s(0))
    assert offline_deadline(live) == s(180)


def test_backup_is_needed_when_offline_unknown_or_clock_bad() -> None:
    live = GatewayLiveness("gw-test-1")
    assert live.needs_backup  # never heard from
    live, _ = on_status(live, status(), s(0))
    assert not live.needs_backup
    bad, _ = on_status(live, status(clock_ok=False), s(10))
    assert bad.needs_backup
    assert bad.caught_up_at == s(0)  # a bad-clock heartbeat proves nothing was held back
    queued, _ = on_status(live, status(backlog=5), s(10))
    assert queued.caught_up_at == s(0) and queued.delivered_until == s(-10)


def test_status_for_another_gateway_is_refused() -> None:
    with pytest.raises(SupervisionError, match="gw-other"):
        on_status(GatewayLiveness("gw-test-1"), status(gw="gw-other"), s(0))


def test_offline_severity_is_critical_while_a_window_is_open() -> None:
    plan = make_plan([
        visit("v-1", "08:00", 30, window=("07:00", "11:00")),
        visit("v-2", "18:00", 30),  # system tolerance: 17:30-18:30
        visit("v-3", "13:00", 30, status="cancelled"),
    ])
    assert offline_severity(plan, utc("10:59")) == "critical"
    assert windows_open(plan, utc("11:00")) == ["v-1"]  # the window end is inside
    assert offline_severity(plan, utc("12:00")) == "high"
    assert offline_severity(plan, utc("13:00")) == "high"  # cancelled visits do not count
    assert next_window_start(plan, utc("12:00")) == utc("17:30")
    assert offline_severity(None, utc("12:00")) == "high"


def test_window_times_are_local_on_the_spring_change_day() -> None:
    plan = make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"), day="2026-03-29")])
    # 11:00 BST is 10:00Z
    assert offline_severity(plan, datetime(2026, 3, 29, 10, 0, tzinfo=UTC)) == "critical"
    assert offline_severity(plan, datetime(2026, 3, 29, 10, 1, tzinfo=UTC)) == "high"
