"""The RFID driver reads the simulated RDM6300 over a real pty: one tap per presentation
however long the tag is held, garbage survived, and recovery after unplug/replug."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware_sim.em4100 import SimulatedRfidReader
from gateway.drivers.rfid_reader import RfidReaderDriver
from homecall.clock import ManualClock
from homecall.observations import DeviceFault, DeviceRecovered, Observation, TagRead
from tests.conftest import wait_for

TAG = "em4100:0F00A1B2C3"


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.reader = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
        self.reader.start()
        self.seen: queue.SimpleQueue[Observation] = queue.SimpleQueue()
        self.clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        self.driver = RfidReaderDriver(self.reader.link_path, self.clock, self.seen.put)
        self.driver.start()

    def next(self, timeout: float = 5.0) -> Observation:
        return self.seen.get(timeout=timeout)

    def drain(self) -> list[Observation]:
        out = []
        while not self.seen.empty():
            out.append(self.seen.get_nowait())
        return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    wait_for(lambda: r.driver.status().state == "ok", message="driver to open the pty")
    yield r
    r.driver.stop()
    r.reader.stop()


def test_tap_gives_one_tag_read_stamped_by_the_clock(rig: Rig) -> None:
    rig.reader.tap(TAG)
    event = rig.next()
    assert isinstance(event, TagRead)
    assert event.tag == TAG
    assert event.source == "rfid"
    assert event.at == rig.clock.now()


def test_held_tag_repeating_frames_is_one_tap(rig: Rig) -> None:
    frames = rig.reader.tap(TAG, hold_real_s=0.5)
    assert frames > 10  # the simulated reader really repeated the frame
    rig.reader.tap("em4100:1A2B3C4D5E")  # a different tag marks the end of the hold
    first, second = rig.next(), rig.next()
    assert isinstance(first, TagRead) and first.tag == TAG
    assert isinstance(second, TagRead) and second.tag == "em4100:1A2B3C4D5E"
    assert rig.drain() == []


def test_two_separate_taps_of_the_same_tag_are_two_reads(rig: Rig) -> None:
    rig.reader.tap(TAG)
    assert isinstance(rig.next(), TagRead)
    import time

    time.sleep(rig.driver.hold_gap_s + 0.1)  # the tag is taken away, then presented again
    rig.reader.tap(TAG)
    assert isinstance(rig.next(), TagRead)


def test_garbage_and_bad_checksum_do_not_lose_the_next_tap(rig: Rig) -> None:
    from firmware_sim.em4100 import encode_frame

    rig.reader.send_raw(b"\xff\xfe\x02123")  # noise and a truncated frame
    rig.reader.send_raw(encode_frame("0F00A1B2C3", corrupt_checksum=True))
    rig.reader.tap("em4100:1A2B3C4D5E")
    event = rig.next()
    assert isinstance(event, TagRead) and event.tag == "em4100:1A2B3C4D5E"
    assert rig.driver.parser.frames_rejected >= 2


def test_unplug_gives_fault_and_replug_recovers_and_reads_next_tap(rig: Rig) -> None:
    rig.reader.unplug()
    fault = rig.next()
    assert isinstance(fault, DeviceFault) and fault.device == "rfid"
    assert rig.driver.status().state == "fault"
    rig.reader.start()
    recovered = rig.next()
    assert isinstance(recovered, DeviceRecovered) and recovered.device == "rfid"
    rig.reader.tap(TAG)
    event = rig.next()
    assert isinstance(event, TagRead) and event.tag == TAG
    assert [e for e in rig.drain() if isinstance(e, DeviceFault)] == []
