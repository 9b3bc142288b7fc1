"""The sensor hub driver over pyserial's ``loop://`` with an injected monotonic clock: the
contact debounce and the heartbeat-silence fault are driven by moving that clock, not by
waiting. (What the driver writes comes back to it on ``loop://`` and is rejected as an
unknown frame; the frames the test writes are the simulator's own encoding.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from firmware_sim.hub import encode_frame
from gateway.drivers.sensor_hub import SensorHubDriver
from homecall.clock import ManualClock
from homecall.observations import ContactChange, DeviceFault, DeviceRecovered, Observation
from tests.conftest import wait_for


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 500.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Rig:
    def __init__(self) -> None:
        self.mono = FakeMonotonic()
        self.seen: list[Observation] = []
        self.clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        self.driver = SensorHubDriver("loop://", self.clock, self.seen.append,
                                      heartbeat_timeout_s=15.0, monotonic=self.mono)
        self.seq = 0
        self.driver.start()
        wait_for(lambda: self.driver._serial is not None, message="loop:// open")

    def send(self, *fields: str) -> None:
        """One hub frame, written only once the driver has parsed the one before."""
        frames = self.driver.protocol.stats.frames
        self.driver._serial.write(encode_frame(self.seq, *fields))
        self.seq += 1
        wait_for(lambda: self.driver.protocol.stats.frames > frames, message="frame parsed")

    def of(self, kind: type) -> list[Observation]:
        return [o for o in self.seen if isinstance(o, kind)]


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.driver.stop()


def test_contact_is_reported_once_it_has_settled_on_the_monotonic_clock(rig: Rig) -> None:
    rig.send("HELLO", "hub-loop", "1.3.0", "1")
    rig.send("DOOR", "front", "OPEN")
    rig.send("DOOR", "front", "CLOSED")  # bounce
    rig.send("DOOR", "front", "OPEN")
    assert rig.of(ContactChange) == []  # not settled: the monotonic clock has not moved
    rig.mono.advance(rig.driver.debouncer.settle_s + 0.001)
    changes = wait_for(lambda: rig.of(ContactChange), message="settled contact")
    assert [(c.sensor, c.open, c.at) for c in changes] == [("front", True, rig.clock.now())]
    assert rig.driver.sensor_state()["doors"] == {"front": "open"}


def test_silent_hub_is_a_fault_after_the_heartbeat_timeout(rig: Rig) -> None:
    rig.send("HELLO", "hub-loop", "1.3.0", "1")
    rig.mono.advance(14.0)
    rig.send("HB", "14")  # heard within the timeout: no fault
    rig.mono.advance(14.0)
    assert rig.of(DeviceFault) == []
    rig.mono.advance(2.0)  # 16 s since the last frame
    [fault] = wait_for(lambda: rig.of(DeviceFault), message="silence fault")
    assert (fault.device, fault.reason) == ("hub", "silent")
    assert rig.driver.status().state == "fault"
    rig.send("HB", "30")
    wait_for(lambda: rig.of(DeviceRecovered), message="recovered")
    assert rig.driver.status().state == "ok"
