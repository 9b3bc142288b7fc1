"""Carer feedback at the door, end to end: a real gateway process reading the simulated
RDM6300 and driving the simulated hub's LED and buzzer over ptys. Each outcome a carer can
meet (arrival, departure, the same fob again within the debounce, unplanned, unknown fob,
no-reply button, a broken reader) gives its own light and sound, as the hub recorded them.
The expected patterns are written out here, not read from the gateway's table."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware_sim.em4100 import SimulatedRfidReader
from firmware_sim.hub import SimulatedHub
from homecall.clock import ScaledClock
from homecall.plan import DocumentCarer, PlanDocument, Visit
from orchestration.stack import Stack
from tests.conftest import wait_for

GW = "gw-feedback-1"
FOB = "em4100:0F00A1B2C3"
STRANGER = "em4100:00DEADBEEF"
DEBOUNCE_S = 2

# (kind, colour, pattern, duration ms, count) of each command the hub obeyed.
ARRIVAL = [("led", "GREEN", "SOLID", 1500, 1), ("buzz", None, None, 100, 1)]
DEPARTURE = [("led", "GREEN", "BLINK", 1500, 1), ("buzz", None, None, 100, 2)]
REPEAT = [("led", "GREEN", "SOLID", 500, 1)]
UNPLANNED = [("led", "AMBER", "SOLID", 2000, 1)]
NO_REPLY = [("led", "AMBER", "BLINK", 2000, 1), ("buzz", None, None, 100, 3)]
UNKNOWN = [("led", "RED", "SOLID", 2000, 1), ("buzz", None, None, 800, 1)]
FAULT = [("led", "RED", "BLINK", 3000, 1), ("buzz", None, None, 400, 3)]


@dataclass
class Home:
    stack: Stack
    rfid: SimulatedRfidReader
    hub: SimulatedHub

    def told(self, action: Callable[[], object], count: int) -> list[tuple[object, ...]]:
        """Do ``action``; the next ``count`` commands the hub obeyed."""
        before = len(self.hub.feedback_log)
        action()
        wait_for(lambda: len(self.hub.feedback_log) >= before + count, timeout=20,
                 message=f"{count} feedback command(s) at the hub")
        entries = self.hub.feedback_log[before : before + count]
        return [(e.kind, e.colour, e.pattern, e.duration_ms, e.count) for e in entries]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    now = datetime.now(UTC)
    local_now = now.astimezone(ZoneInfo("Europe/London")).replace(tzinfo=None, microsecond=0)
    document = PlanDocument(
        gateway=GW, service_users=("su-1",), carers=(DocumentCarer(id="c-1", tags=(FOB,)),),
        policy={"debounce_s": DEBOUNCE_S},
        visits=(Visit(id="v-1", service_user="su-1", start=local_now, duration_min=30,
                      carers=("c-1",)),),
    )
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(document.model_dump_json())
    rfid = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    rfid.start()
    hub = SimulatedHub(tmp_path / "dev" / "hub", heartbeat_s=0.5)
    hub.start()
    with Stack(tmp_path / "stack", ScaledClock(now, 1.0).spec(), heartbeat_s=0.5) as stack:
        stack.start_broker()
        stack.add_gateway(GW, {"rfid": Path(rfid.link_path), "hub": hub.link_path},
                          extra_args=["--plan", str(plan_file)])
        stack.start_gateway(GW)
        wait_for(lambda: "STATE" in hub.commands_seen, timeout=30,
                 message="the gateway to connect to the hub")
        yield Home(stack, rfid, hub)
    hub.stop()
    rfid.stop()


def test_each_outcome_has_its_own_light_and_sound(home: Home) -> None:
    assert home.told(lambda: home.rfid.tap(FOB), 2) == ARRIVAL
    time.sleep(0.4)  # the carer takes the fob away and taps again (a new tap, not a hold)...
    assert home.told(lambda: home.rfid.tap(FOB), 1) == REPEAT  # ...within the debounce
    time.sleep(DEBOUNCE_S + 0.5)  # the carer's visit goes on: past the debounce
    assert home.told(lambda: home.rfid.tap(FOB), 2) == DEPARTURE
    time.sleep(DEBOUNCE_S + 0.5)
    assert home.told(lambda: home.rfid.tap(FOB), 1) == UNPLANNED  # the visit is over
    assert home.told(lambda: home.rfid.tap(STRANGER), 2) == UNKNOWN
    assert home.told(lambda: home.hub.button("no_reply"), 2) == NO_REPLY
    assert home.told(home.rfid.unplug, 2) == FAULT  # the reader the carer taps is gone


def test_patterns_are_all_different() -> None:
    patterns = [ARRIVAL, DEPARTURE, REPEAT, UNPLANNED, NO_REPLY, UNKNOWN, FAULT]
    assert len({tuple(p) for p in patterns}) == len(patterns)
    lights = {p[0][1:3] for p in (ARRIVAL, DEPARTURE)} | {p[0][1:3] for p in (UNKNOWN, FAULT)}
    assert len(lights) == 4  # arrival/departure and unknown/fault differ in the light...
    sounds = {tuple(p[1:]) for p in (ARRIVAL, DEPARTURE, UNKNOWN, FAULT)}
    assert len(sounds) == 4  # ...and in the sound


def test_gateway_without_a_hub_says_so_at_start(tmp_path: Path) -> None:
    rfid = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    rfid.start()
    try:
        with Stack(tmp_path / "stack", ScaledClock(datetime.now(UTC), 1.0).spec()) as stack:
            stack.start_broker()
            stack.add_gateway(GW, {"rfid": Path(rfid.link_path)})
            stack.start_gateway(GW)
            log = stack.workdir / "logs" / f"gateway-{GW}.log"
            wait_for(lambda: log.exists() and "no feedback device configured"
                     in log.read_text(), timeout=30, message="the warning in the gateway log")
    finally:
        rfid.stop()
