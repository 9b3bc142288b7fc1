"""Arrival, departure, late and missed for single-carer visits; state round trip."""

from __future__ import annotations

from gateway.rules import HouseholdState, step
from tests.rules.helpers import Household, make_plan, visit, z


def seed_plan():  # type: ignore[no-untyped-def]
    return make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"))])


def test_seed_000_example_late_call_beyond_tolerance() -> None:
    """Derbyshire: tolerance 07:00-11:00, nobody until 12:01 → incident record."""
    h = Household(seed_plan())
    h.tap("12:01")
    h.tap("12:31")
    assert h.alerts() == [
        ("visit_late", "v-1", "11:00:00"),
        ("visit_missed", "v-1", "12:00:00"),
        ("call_outside_tolerance", "v-1", "12:01:00"),
    ]
    arrival = h.of_type("arrival")[0]
    assert arrival.data["punctuality"] == "late"
    assert arrival.data["minutes_outside_window"] == 61
    assert arrival.data["window_start"] == "2026-03-02T07:00:00Z"
    assert arrival.data["window_end"] == "2026-03-02T11:00:00Z"
    assert arrival.feedback == "accepted"
    cot = h.of_type("call_outside_tolerance")[0]
    assert cot.data["supersedes"] == "visit_missed"
    assert cot.severity == "high"
    departure = h.of_type("departure")[0]
    assert departure.data["actual_min"] == 30 and departure.data["planned_min"] == 30
    assert h.status() == "completed"


def test_on_time_visit_raises_nothing() -> None:
    h = Household(seed_plan())
    h.tap("08:02")
    h.tap("08:35")
    h.until("23:59")
    assert h.alerts() == []
    assert h.types() == ["arrival", "departure"]
    assert h.of_type("arrival")[0].data["punctuality"] == "on_time"
    assert h.status() == "completed"


def test_deadlines_fired_late_carry_their_own_time() -> None:
    h = Household(seed_plan())
    h.feed(None, z("2026-03-02T06:00:00"))
    assert h.deadline == z("2026-03-02T11:00:00")
    out = h.feed(None, z("2026-03-02T15:17:00"))  # the tick ran very late
    assert [(o.type.value, o.time) for o in out] == [
        ("visit_late", z("2026-03-02T11:00:00")),
        ("visit_missed", z("2026-03-02T12:00:00")),
    ]
    assert h.status() == "missed"
    assert h.deadline is None


def test_state_survives_json_round_trip_mid_visit() -> None:
    h = Household(seed_plan())
    h.keysafe("07:58", True)
    h.tap("08:00")
    text = h.state.to_json()
    restored = HouseholdState.from_json(text)
    assert restored == h.state
    assert restored.to_json() == text
    a = step(h.state, None, z("2026-03-02T12:00:00"))
    b = step(restored, None, z("2026-03-02T12:00:00"))
    assert a[1] == b[1] and a[2] == b[2]


def test_engine_imports_no_gateway_io() -> None:
    """Central imports the engine as a backup detector: no serial, MQTT, database, asyncio."""
    import subprocess
    import sys

    code = (
        "import sys, gateway.rules, orchestration.benchmarks.rules\n"
        "bad = [m for m in ('serial', 'paho', 'sqlite3', 'sqlite_utils', 'asyncio',"
        " 'apscheduler', 'nfc') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""


def test_visit_removed_and_restored_by_plan_updates_keeps_its_alerts() -> None:
    """A no-reply press raises no_access once; a plan update that drops the visit and a later
    one that restores it must not let the same visit raise no_access again."""
    plan = seed_plan()
    h = Household(plan)
    h.button("08:05")
    h.update("08:10", make_plan([visit("v-2", "09:00", 30, window=("08:30", "10:00"))]))
    h.update("08:20", plan)
    h.button("08:25")
    for_visit = [o for o in h.of_type("no_access") if o.visit_id == "v-1"]
    assert [o.time for o in for_visit] == [z("2026-03-02T08:05:00")]
