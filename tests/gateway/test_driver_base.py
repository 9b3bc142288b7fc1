"""The reconnecting driver base every device driver shares: one fault per outage however
many reopen attempts fail, a glitch that the next open cures is no fault, recovery only when
every fault reason has cleared, back-off that grows and resets, and a stop() that returns
only once the thread has ended. Driven over pyserial's ``loop://``."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import serial

from gateway.backoff import Backoff
from gateway.drivers.base import DriverError, ReconnectingDriver
from homecall.clock import ManualClock
from homecall.observations import DeviceFault, DeviceRecovered, Observation
from tests.conftest import wait_for


class LoopDriver(ReconnectingDriver[serial.SerialBase]):
    """A driver on ``loop://`` whose device can be unplugged and whose link can be broken."""

    device = "hub"
    kind = "test"

    def __init__(self, sink: list[Observation]) -> None:
        super().__init__("loop://", ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
                         sink.append, name="loop", reconnect_max_s=0.02,
                         rng=random.Random(1))
        self.plugged = threading.Event()
        self.break_link = threading.Event()
        self.ignore_stop = threading.Event()
        self.release = threading.Event()
        self.attempts = 0
        self.received = bytearray()
        self.port: serial.SerialBase | None = None

    def _connect(self) -> serial.SerialBase:
        self.attempts += 1
        if not self.plugged.is_set():
            raise serial.SerialException("no such device")
        self.port = serial.serial_for_url("loop://", timeout=0.02)
        return self.port

    def _session(self, link: serial.SerialBase) -> None:
        while not self._stop.is_set() or self.ignore_stop.is_set():
            if self.ignore_stop.is_set():
                self.release.wait()
                self.ignore_stop.clear()
            if self.break_link.is_set():
                self.break_link.clear()
                raise OSError("device reports readiness to read but returned no data")
            self.received += link.read(16)

    def _disconnect(self, link: serial.SerialBase) -> None:
        link.close()


@pytest.fixture
def sink() -> list[Observation]:
    return []


@pytest.fixture
def driver(sink: list[Observation]) -> Iterator[LoopDriver]:
    d = LoopDriver(sink)
    yield d
    d.release.set()
    d.stop()


def faults(sink: list[Observation]) -> list[DeviceFault]:
    return [o for o in sink if isinstance(o, DeviceFault)]


def recoveries(sink: list[Observation]) -> list[DeviceRecovered]:
    return [o for o in sink if isinstance(o, DeviceRecovered)]


def test_absent_device_is_one_fault_however_many_attempts(
    driver: LoopDriver, sink: list[Observation]
) -> None:
    driver.start()
    wait_for(lambda: driver.attempts >= 5, message="several failed opens")
    assert [(f.device, f.reason) for f in faults(sink)] == [("hub", "unplugged")]
    assert driver.status().state == "absent" and driver.status().detail == "unplugged"
    driver.plugged.set()
    wait_for(lambda: recoveries(sink), message="recovery")
    assert driver.status().state == "ok"
    assert len(faults(sink)) == 1 and len(recoveries(sink)) == 1
    assert driver.backoff.attempt == 0  # reset by the good open


def test_link_glitch_cured_by_the_next_open_is_no_fault(
    driver: LoopDriver, sink: list[Observation]
) -> None:
    driver.plugged.set()
    driver.start()
    wait_for(lambda: driver.connected, message="open")
    driver.break_link.set()
    wait_for(lambda: driver.connects == 2 and driver.connected, message="reopened")
    assert driver.link_failures == 1
    assert faults(sink) == []
    port = driver.port
    assert port is not None
    port.write(b"still reading")  # the new link works
    wait_for(lambda: bytes(driver.received) == b"still reading", message="data")


def test_pulled_cable_is_a_fault_at_once_and_replug_recovers(
    driver: LoopDriver, sink: list[Observation]
) -> None:
    driver.plugged.set()
    driver.start()
    wait_for(lambda: driver.connected, message="open")
    driver.plugged.clear()
    driver.break_link.set()
    wait_for(lambda: faults(sink), message="fault")
    driver.plugged.set()
    wait_for(lambda: recoveries(sink), message="recovery")
    assert len(faults(sink)) == 1


def test_recovered_only_when_every_reason_has_cleared(
    driver: LoopDriver, sink: list[Observation]
) -> None:
    driver._fault("tamper")
    driver._fault("battery_low")
    driver._fault("tamper")  # still standing: not reported again
    assert [f.reason for f in faults(sink)] == ["tamper", "battery_low"]
    driver._clear("tamper")
    assert recoveries(sink) == []
    driver._clear("battery_low")
    assert len(recoveries(sink)) == 1
    driver._clear("battery_low")  # nothing left to clear
    assert len(recoveries(sink)) == 1


def test_stop_returns_only_when_the_thread_has_ended(driver: LoopDriver) -> None:
    driver.plugged.set()
    driver.start()
    wait_for(lambda: driver.connected, message="open")
    thread = driver._thread
    assert thread is not None
    driver.stop()
    assert not thread.is_alive() and not driver.running
    assert driver.port is not None and not driver.port.is_open  # the link was closed
    driver.start()  # and it can run again
    wait_for(lambda: driver.connects == 2, message="second run")


def test_stop_says_so_when_the_thread_will_not_end(driver: LoopDriver) -> None:
    driver.plugged.set()
    driver.start()
    wait_for(lambda: driver.connected, message="open")
    driver.ignore_stop.set()  # the session now blocks until released, deaf to stop()
    with pytest.raises(DriverError, match="did not stop"):
        driver.stop(timeout_s=0.1)
    driver.release.set()
    driver.stop()
    assert not driver.running


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(base_s=0.05, cap_s=2.0, floor_s=0.01, rng=random.Random(7))
    ceilings = [min(2.0, 0.05 * 2**n) for n in range(10)]
    delays = [backoff.next_delay() for _ in ceilings]
    assert all(0.01 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[6:]) > 0.05 * 2  # it did grow beyond the first ceilings
    backoff.reset()
    assert backoff.next_delay() <= 0.05


def test_a_bug_in_a_session_reopens_instead_of_killing_the_thread(
    sink: list[Observation],
) -> None:
    class Buggy(LoopDriver):
        def _session(self, link: serial.SerialBase) -> None:
            if self.connects == 1:
                raise KeyError("bug")
            super()._session(link)

    driver = Buggy(sink)
    driver.plugged.set()
    driver.start()
    try:
        wait_for(lambda: driver.connects == 2 and driver.connected, message="reopened")
        assert driver.running and driver.link_failures == 1
    finally:
        driver.stop()
