"""Driver for the 125 kHz RFID reader (RDM6300 class) on a UART: I/O, reconnect, hold collapse.

The driver owns the serial port (any pyserial URL or device path, e.g. ``/dev/ttyAMA0`` on a
Pi or a simulator's pty link), feeds bytes to the sans-IO :class:`Em4100Parser`, and hands
one :class:`TagRead` per tap to ``sink``. A held tag makes the reader repeat its frame; those
repeats (identical frames closer together than ``hold_gap_s`` of real time) are one tap.
Unplugging gives a ``DeviceFault`` and reopening with back-off; the first good open after a
fault gives ``DeviceRecovered``. Link timing uses real monotonic time because it is about the
wire, not the care timeline; what a tap *means* is decided by the rules engine on the clock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import serial

from gateway import GatewayError
from gateway.protocols.em4100 import Em4100Parser, FrameRejected, TagFrame
from homecall.clock import Clock
from homecall.observations import DeviceFault, DeviceRecovered, Observation, TagRead
from homecall.tags import redact
from homecall.wire import DeviceStatus

log = logging.getLogger(__name__)


class RfidReaderError(GatewayError):
    """The RFID reader cannot be used."""


class RfidReaderDriver:
    """Reads EM4100 taps from a serial port in its own thread."""

    def __init__(
        self,
        path: str,
        clock: Clock,
        sink: Callable[[Observation], None],
        *,
        baudrate: int = 9600,
        hold_gap_s: float = 0.25,
        name: str = "rfid",
    ) -> None:
        self.path = path
        self.clock = clock
        self.sink = sink
        self.baudrate = baudrate
        self.hold_gap_s = hold_gap_s
        self.name = name
        self.parser = Em4100Parser()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: serial.SerialBase | None = None
        self._faulted: str | None = None
        self._opened = threading.Event()
        self._last_tag: str | None = None
        self._last_tag_mono = 0.0
        self.last_frame: datetime | None = None
        self.taps = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RfidReaderError("reader already started")
        self._thread = threading.Thread(target=self._run, name=f"driver-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._close()

    def status(self) -> DeviceStatus:
        return DeviceStatus(
            name=self.name,
            kind="rfid-em4100",
            state="fault" if self._faulted else ("ok" if self._opened.is_set() else "absent"),
            detail=self._faulted
            or f"{self.path} @ {self.baudrate} baud; {self.parser.frames_ok} frames ok, "
            f"{self.parser.frames_rejected} rejected",
            last_frame=self.last_frame,
        )

    # -- I/O loop --------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                self._open()
            except (serial.SerialException, OSError) as err:
                self._fault(f"cannot open {self.path}: {err.__class__.__name__}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self._opened.set()
            if self._faulted is not None:
                self._faulted = None
                self.sink(DeviceRecovered(device="rfid", at=self.clock.now()))
                log.info("%s reader back on %s", self.name, self.path)
            try:
                self._read_until_error()
            except (serial.SerialException, OSError) as err:
                self._fault(f"read failed ({err.__class__.__name__}): unplugged?")
            finally:
                self._close()

    def _open(self) -> None:
        self._port = serial.serial_for_url(self.path, baudrate=self.baudrate, timeout=0.2)
        self.parser.reset()

    def _close(self) -> None:
        self._opened.clear()
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _read_until_error(self) -> None:
        port = self._port
        assert port is not None
        while not self._stop.is_set():
            waiting = port.in_waiting
            chunk = port.read(waiting if waiting > 0 else 1)
            if not chunk:
                continue
            for event in self.parser.feed(chunk):
                if isinstance(event, TagFrame):
                    self._on_tag(event.tag)
                elif isinstance(event, FrameRejected):
                    log.warning(
                        "%s: rejected %d bytes: %s", self.name, len(event.raw), event.reason
                    )

    def _on_tag(self, tag: str) -> None:
        now_mono = time.monotonic()
        self.last_frame = self.clock.now()
        held = tag == self._last_tag and now_mono - self._last_tag_mono < self.hold_gap_s
        self._last_tag, self._last_tag_mono = tag, now_mono
        if held:
            return
        self.taps += 1
        log.debug("%s: tap %s", self.name, redact(tag))
        self.sink(TagRead(tag=tag, at=self.last_frame, source="rfid"))

    def _fault(self, reason: str) -> None:
        if self._faulted is None:
            self._faulted = reason
            log.warning("%s reader fault: %s", self.name, reason)
            self.sink(DeviceFault(device="rfid", reason=reason, at=self.clock.now()))
