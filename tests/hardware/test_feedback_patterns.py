"""Every carer-feedback outcome reaches the simulated hub's LED and buzzer over a real pty as
its own pattern (expected values written out here, not read from the gateway's table)."""

from __future__ import annotations

import pytest

from firmware_sim.hub import SimulatedHub
from gateway.drivers.sensor_hub import SensorHubDriver
from gateway.feedback import OUTCOMES
from tests.hardware.conftest import wait_for

EXPECTED = {
    "arrival": [("led", "GREEN", "SOLID", 1500, 1), ("buzz", None, None, 100, 1)],
    "departure": [("led", "GREEN", "BLINK", 1500, 1), ("buzz", None, None, 100, 2)],
    "repeat": [("led", "GREEN", "SOLID", 500, 1)],
    "unplanned": [("led", "AMBER", "SOLID", 2000, 1)],
    "no_reply": [("led", "AMBER", "BLINK", 2000, 1), ("buzz", None, None, 100, 3)],
    "unknown": [("led", "RED", "SOLID", 2000, 1), ("buzz", None, None, 800, 1)],
    "fault": [("led", "RED", "BLINK", 3000, 1), ("buzz", None, None, 400, 3)],
}


def test_every_outcome_is_covered_and_distinct() -> None:
    assert set(OUTCOMES) == set(EXPECTED)
    assert len({tuple(p) for p in EXPECTED.values()}) == len(EXPECTED)


@pytest.mark.parametrize("outcome", sorted(EXPECTED))
def test_pattern_reaches_the_hub(
    hub_sim: SimulatedHub, hub_driver: SensorHubDriver, outcome: str
) -> None:
    expected = EXPECTED[outcome]
    hub_driver.feedback(outcome)
    wait_for(lambda: len(hub_sim.feedback_log) >= len(expected), what="feedback at the hub")
    got = [(e.kind, e.colour, e.pattern, e.duration_ms, e.count) for e in hub_sim.feedback_log]
    assert got == expected


def test_unknown_outcome_is_refused(hub_driver: SensorHubDriver) -> None:
    with pytest.raises(ValueError, match="unknown feedback outcome 'bravo'"):
        hub_driver.feedback("bravo")
