"""The RFID driver reads the simulated RDM6300 over a real pty: one tap per presentation
however long the tag is held, a tag only on two agreeing frames (line noise that turns one
fob's frame into another valid fob's frame is not a tap), garbage survived, and recovery
after unplug/replug. A second set drives the same driver over pyserial's ``loop://`` with an
injected monotonic clock, so hold gaps are exact and nothing sleeps."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

import pytest

from firmware_sim import SimulatorError
from firmware_sim.em4100 import SimulatedRfidReader, encode_frame, flip_bits
from gateway.drivers.rfid_reader import RfidReaderDriver
from homecall.clock import ManualClock
from homecall.observations import DeviceFault, DeviceRecovered, Observation, TagRead
from tests.conftest import wait_for

TAG = "em4100:0F00A1B2C3"
OTHER = "em4100:1A2B3C4D5E"


def noisy_twin(tag_hex: str) -> tuple[bytes, str]:
    """A 2-bit corruption of ``tag_hex``'s frame that is another fob's valid frame."""
    frame = encode_frame(tag_hex)
    for a, b in combinations(range(8, 13 * 8), 2):  # bits of the hex digits and checksum
        noisy = flip_bits(frame, [a, b])
        try:
            other = noisy[1:11].decode("ascii")
            if noisy == encode_frame(other) and other.upper() != tag_hex.upper():
                return noisy, "em4100:" + other.upper()
        except (UnicodeDecodeError, SimulatorError):  # not hex: the simulator refuses it
            continue
    raise AssertionError("no 2-bit twin found")


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
    frames = rig.reader.tap(TAG)
    assert frames >= 2  # even the briefest tap repeats the frame
    event = rig.next()
    assert isinstance(event, TagRead)
    assert event.tag == TAG
    assert event.source == "rfid"
    assert event.at == rig.clock.now()


def test_held_tag_repeating_frames_is_one_tap(rig: Rig) -> None:
    frames = rig.reader.tap(TAG, hold_real_s=0.5)
    assert frames > 10  # the simulated reader really repeated the frame
    rig.reader.tap(OTHER)  # a different tag marks the end of the hold
    first, second = rig.next(), rig.next()
    assert isinstance(first, TagRead) and first.tag == TAG
    assert isinstance(second, TagRead) and second.tag == OTHER
    assert rig.drain() == []


def test_noise_that_decodes_as_another_valid_tag_is_not_a_tap(rig: Rig) -> None:
    good = encode_frame(TAG.split(":")[1])
    twin, twin_tag = noisy_twin(TAG.split(":")[1])
    assert twin_tag != TAG
    # Noise on every other frame of a held fob: the twin never comes twice in a row.
    rig.reader.tap(TAG, frames=[twin, good, twin, good, good, twin])
    rig.reader.tap(OTHER)  # a different tag marks the end of the hold
    reads = [rig.next(), rig.next()]
    assert [r.tag for r in reads if isinstance(r, TagRead)] == [TAG, OTHER]
    assert rig.drain() == []
    assert rig.driver.confirmer.unconfirmed >= 1  # the lone twin frames were dropped


def test_one_stray_valid_frame_alone_is_not_a_tap(rig: Rig) -> None:
    twin, _ = noisy_twin(TAG.split(":")[1])
    rig.reader.send_raw(twin)  # one frame only: a burst of noise, not a fob
    rig.reader.tap(OTHER)
    event = rig.next()
    assert isinstance(event, TagRead) and event.tag == OTHER
    assert rig.drain() == []


def test_garbage_and_bad_checksum_do_not_lose_the_next_tap(rig: Rig) -> None:
    rig.reader.send_raw(b"\xff\xfe\x02123")  # noise and a truncated frame
    rig.reader.send_raw(encode_frame("0F00A1B2C3", corrupt_checksum=True))
    rig.reader.tap(OTHER)
    event = rig.next()
    assert isinstance(event, TagRead) and event.tag == OTHER
    assert rig.driver.parser.frames_rejected >= 2


def test_unplug_gives_fault_and_replug_recovers_and_reads_next_tap(rig: Rig) -> None:
    rig.reader.unplug()
    fault = rig.next()
    assert isinstance(fault, DeviceFault) and (fault.device, fault.reason) == ("rfid", "unplugged")
    assert rig.driver.status().state == "absent"
    rig.reader.start()
    recovered = rig.next()
    assert isinstance(recovered, DeviceRecovered) and recovered.device == "rfid"
    rig.reader.tap(TAG)
    event = rig.next()
    assert isinstance(event, TagRead) and event.tag == TAG
    assert [e for e in rig.drain() if isinstance(e, DeviceFault)] == []


def test_stop_waits_for_the_thread(rig: Rig) -> None:
    thread = rig.driver._thread
    assert thread is not None and thread.is_alive()
    rig.driver.stop()
    assert not thread.is_alive() and not rig.driver.running


# -- loop:// with an injected monotonic clock ------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class LoopRig:
    """The driver on ``loop://``: what the test writes to the driver's port comes back to it."""

    def __init__(self) -> None:
        self.mono = FakeMonotonic()
        self.seen: list[Observation] = []
        self.clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        self.driver = RfidReaderDriver("loop://", self.clock, self.seen.append,
                                       monotonic=self.mono)
        self.driver.start()
        wait_for(lambda: self.driver._port is not None, message="loop:// open")

    def send(self, *frames: bytes) -> None:
        """Write frames one at a time, each only after the driver has decoded the one before."""
        port = self.driver._port
        assert port is not None
        for frame in frames:
            before = self.driver.parser.frames_ok + self.driver.parser.frames_rejected
            port.write(frame)
            wait_for(lambda b=before: self.driver.parser.frames_ok
                     + self.driver.parser.frames_rejected > b, message="frame decoded")

    def tags(self) -> list[str]:
        return [o.tag for o in self.seen if isinstance(o, TagRead)]


@pytest.fixture
def loop_rig() -> Iterator[LoopRig]:
    r = LoopRig()
    yield r
    r.driver.stop()


def test_loop_same_tag_after_the_hold_gap_is_a_second_tap(loop_rig: LoopRig) -> None:
    frame = encode_frame(TAG.split(":")[1])
    loop_rig.send(frame, frame, frame)
    assert loop_rig.tags() == [TAG]
    loop_rig.mono.advance(loop_rig.driver.hold_gap_s - 0.01)  # still held
    loop_rig.send(frame)
    assert loop_rig.tags() == [TAG]
    loop_rig.mono.advance(loop_rig.driver.hold_gap_s + 0.01)  # taken away, presented again
    loop_rig.send(frame)
    assert loop_rig.tags() == [TAG]  # one frame is not yet a tap
    loop_rig.send(frame)
    assert loop_rig.tags() == [TAG, TAG]


def test_loop_corrupt_frame_between_two_good_ones_breaks_the_pair(loop_rig: LoopRig) -> None:
    frame = encode_frame(TAG.split(":")[1])
    bad = encode_frame(TAG.split(":")[1], corrupt_checksum=True)
    loop_rig.send(frame, bad, frame)
    assert loop_rig.tags() == []
    loop_rig.send(frame)
    assert loop_rig.tags() == [TAG]
    loop_rig.send(bad, frame, frame)  # a corrupt frame inside a hold: still the same tap
    assert loop_rig.tags() == [TAG]


def test_loop_frames_further_apart_than_the_hold_gap_do_not_pair(loop_rig: LoopRig) -> None:
    frame = encode_frame(TAG.split(":")[1])
    loop_rig.send(frame)
    loop_rig.mono.advance(loop_rig.driver.hold_gap_s)
    loop_rig.send(frame)
    assert loop_rig.tags() == []
    assert loop_rig.driver.status().state == "ok"


def test_serial_path_that_does_not_exist_is_named_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "ttyAMA9"
    seen: queue.SimpleQueue[Observation] = queue.SimpleQueue()
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    driver = RfidReaderDriver(str(missing), clock, seen.put)
    with caplog.at_level("WARNING", logger="gateway.drivers.base"):
        driver.start()
        try:
            fault = seen.get(timeout=5)
        finally:
            driver.stop()
    assert isinstance(fault, DeviceFault) and fault.reason == "unplugged"
    assert f"serial device {missing} does not exist" in caplog.text
    assert driver.status().state == "absent"
