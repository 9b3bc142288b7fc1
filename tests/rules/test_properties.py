"""Hypothesis: random household plans and random days in the home.

Whatever happens, the engine must not crash; every visit ends in exactly one status that
agrees with its attendances; no alert is raised twice; the same inputs give the same
outputs; and a gateway restarting from its persisted state mid-day carries on exactly as
if it had never stopped."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rules import (
    VISIT_STATUSES,
    ClockStatus,
    EngineInput,
    HouseholdState,
    PlanUpdate,
    RuleOutput,
    initial_state,
    step,
)
from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.plan import GatewayPlan
from homecall.wire import ALERT_SEVERITY
from tests.rules.helpers import TAGS, UNKNOWN_TAG, make_plan

BASE = datetime(2026, 3, 2, 0, 0)  # local; the plan day (and the next) in Europe/London
CARERS = ("c-1", "c-2", "c-3")
PER_VISIT_ALERTS = {"visit_late", "visit_missed", "call_outside_tolerance", "no_access",
                    "double_up_incomplete"}
PER_CARER_ALERTS = {"short_visit", "departure_missing"}


@st.composite
def visits(draw: st.DrawFn, vid: str) -> dict[str, Any]:
    start = BASE + timedelta(minutes=draw(st.integers(0, 36 * 60)))
    required = draw(st.integers(1, 2))
    carers = draw(st.lists(st.sampled_from(CARERS), max_size=required, unique=True))
    body: dict[str, Any] = {
        "id": vid,
        "service_user": draw(st.sampled_from(["su-1", "su-2"])),
        "start": start.isoformat(),
        "duration_min": draw(st.integers(5, 120)),
        "carers_required": required,
        "carers": carers,
    }
    if draw(st.booleans()):
        before = draw(st.integers(0, 180))
        after = draw(st.integers(1, 240))
        body["window"] = [(start - timedelta(minutes=before)).isoformat(),
                          (start + timedelta(minutes=after)).isoformat()]
    if draw(st.integers(0, 9)) == 0:
        body["status"] = "cancelled"
    if draw(st.integers(0, 5)) == 0:
        shift = draw(st.integers(30, 300))
        body["agreed_window"] = [(start + timedelta(minutes=shift)).isoformat(),
                                 (start + timedelta(minutes=shift + 60)).isoformat()]
        body["agreed_at"] = (start + timedelta(minutes=draw(st.integers(-300, 60)))).isoformat()
    return body


@st.composite
def plans(draw: st.DrawFn, version: int = 1) -> GatewayPlan:
    n = draw(st.integers(0, 5))
    body = [draw(visits(f"v-{i}")) for i in range(n)]
    policy = draw(st.sampled_from([
        {}, {"incident_threshold_min": 15, "debounce_s": 5},
        {"double_up_wait_min": 0, "door_left_open_min": 0, "keysafe_left_open_min": 0},
    ]))
    return make_plan(body, policy=policy, version=version,
                     service_user_policy=draw(st.sampled_from(
                         [{}, {"su-2": {"system_tolerance_after_min": 5}}])))


@st.composite
def days(draw: st.DrawFn) -> tuple[GatewayPlan, bool, list[tuple[datetime, EngineInput | None]]]:
    plan = draw(plans())
    other = draw(plans(version=2))
    clock_ok = draw(st.integers(0, 4)) > 0
    offsets = sorted(draw(st.lists(st.integers(0, 2 * 24 * 3600), max_size=40)))
    events: list[tuple[datetime, EngineInput | None]] = []
    for offset in offsets:
        now = (BASE + timedelta(seconds=offset)).replace(tzinfo=UTC)
        kind = draw(st.sampled_from(
            ["tap", "tap", "tap", "door", "keysafe", "button", "tick", "clock", "plan"]))
        item: EngineInput | None
        if kind == "tap":
            tag = draw(st.sampled_from([*TAGS.values(), UNKNOWN_TAG]))
            token = draw(st.sampled_from([None, None, None, "c-2", "c-9"]))
            item = TagRead(tag=tag, at=now, carer_token=token)
        elif kind in ("door", "keysafe"):
            item = ContactChange(kind, draw(st.sampled_from(["a", "b"])), draw(st.booleans()),
                                 now)
        elif kind == "button":
            item = ButtonPress(draw(st.sampled_from(["no_reply", "other"])), now)
        elif kind == "clock":
            item = ClockStatus(draw(st.booleans()))
        elif kind == "plan":
            item = PlanUpdate(draw(st.sampled_from([plan, other])))
        else:
            item = None
        events.append((now, item))
    return plan, clock_ok, events


END = (BASE + timedelta(days=5)).replace(tzinfo=UTC)


def run(plan: GatewayPlan, clock_ok: bool, events: list[tuple[datetime, EngineInput | None]],
        restart_at: int | None = None) -> tuple[HouseholdState, list[RuleOutput]]:
    state = initial_state(plan, clock_ok=clock_ok)
    outputs: list[RuleOutput] = []
    tail: list[tuple[datetime, EngineInput | None]] = [
        *events, (END, ClockStatus(True)), (END, None)]
    for i, (now, item) in enumerate(tail):
        if i == restart_at:
            state = HouseholdState.from_json(state.to_json())
        state, out, deadline = step(state, item, now)
        assert deadline is None or deadline > now
        assert all(o.time <= now for o in out)
        outputs.extend(out)
    return state, outputs


# RULES_EXAMPLES=2000 for a longer hunt; the default keeps `make test` quick.
SETTINGS = settings(max_examples=int(os.environ.get("RULES_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(days())
def test_never_crashes_and_each_visit_ends_in_one_consistent_status(
    day: tuple[GatewayPlan, bool, list[tuple[datetime, EngineInput | None]]],
) -> None:
    plan, clock_ok, events = day
    state, outputs = run(plan, clock_ok, events)
    final_plan = state.plan
    assert final_plan is not None
    live = {v.id: v for v in final_plan.visits}
    for vid, vs in state.visits.items():
        assert vs.status in VISIT_STATUSES
        open_ = [a for a in vs.attendances if a.departed_at is None]
        if vs.status == "in_progress":
            assert open_, vid
        if vs.status == "completed":
            assert vs.attendances and not open_, vid
        if vs.status == "missed":
            assert not vs.attendances and "visit_missed" in vs.alerts
        if vs.status == "cancelled":
            assert vid in live and live[vid].status == "cancelled"
        if vs.status == "planned" and vid in live and live[vid].status != "cancelled":
            # still planned only if it appeared (by plan update) after its deadlines passed
            assert not vs.attendances and vs.known_since is not None, vid
    replanned = any(isinstance(item, PlanUpdate) for _, item in events)
    for o in outputs:
        assert o.severity == ALERT_SEVERITY.get(o.type)
        assert "0FDEADBEEF" not in repr(o)
        if o.type.value == "arrival" and not replanned:
            # a visit never takes more carers than it asked for
            assert o.data["carers_arrived"] <= o.data["carers_required"]


@SETTINGS
@given(days())
def test_no_alert_is_raised_twice(
    day: tuple[GatewayPlan, bool, list[tuple[datetime, EngineInput | None]]],
) -> None:
    _, outputs = run(*day)
    keys: list[tuple[str, str | None, str | None]] = []
    for o in outputs:
        if o.type.value in PER_VISIT_ALERTS and o.visit_id is not None:
            keys.append((o.type.value, o.visit_id, None))
        elif o.type.value in PER_CARER_ALERTS:
            keys.append((o.type.value, o.visit_id, o.carer_id))
    assert len(keys) == len(set(keys))
    arrivals = [(o.visit_id, o.carer_id) for o in outputs if o.type.value == "arrival"]
    assert len(arrivals) == len(set(arrivals))


@SETTINGS
@given(days())
def test_replay_gives_identical_outputs(
    day: tuple[GatewayPlan, bool, list[tuple[datetime, EngineInput | None]]],
) -> None:
    first = run(*day)
    second = run(*day)
    assert first[1] == second[1]
    assert first[0].to_json() == second[0].to_json()


@SETTINGS
@given(days(), st.integers(0, 45))
def test_restart_from_persisted_state_gives_identical_outputs(
    day: tuple[GatewayPlan, bool, list[tuple[datetime, EngineInput | None]]], cut: int,
) -> None:
    plan, clock_ok, events = day
    straight = run(plan, clock_ok, events)
    restarted = run(plan, clock_ok, events, restart_at=min(cut, len(events) + 1))
    assert straight[1] == restarted[1]
    assert straight[0] == restarted[0]


@SETTINGS
@given(days())
def test_every_intermediate_state_round_trips_through_json(
    day: tuple[GatewayPlan, bool, list[tuple[datetime, EngineInput | None]]],
) -> None:
    plan, clock_ok, events = day
    state = initial_state(plan, clock_ok=clock_ok)
    for now, item in events:
        state, _, _ = step(state, item, now)
        text = state.to_json()
        again = HouseholdState.from_json(text)
        assert again == state and again.to_json() == text
        # The gateway's form: the plan stored beside the state, not inside it.
        compact = state.to_json(include_plan=False)
        assert HouseholdState.from_json(compact, state.plan) == state
