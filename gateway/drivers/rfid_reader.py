"""Driver for the 125 kHz RFID reader (RDM6300 class) on a UART: I/O and tap confirmation.

The driver owns the serial port (any pyserial URL or device path, e.g. ``/dev/ttyAMA0`` on a
Pi or a simulator's pty link), feeds bytes to the sans-IO :class:`Em4100Parser`, and hands
one :class:`TagRead` per tap to ``sink``. The reader repeats its frame for as long as a fob is
in its field; because the frame's checksum is weak, a tag counts only once two consecutive
frames agree (:class:`TapConfirmer`), and the rest of that hold (identical frames closer
together than ``hold_gap_s``) is the same tap. Reopening, back-off and the fault model come
from :class:`~gateway.drivers.base.ReconnectingDriver`. Link timing uses the injected
monotonic function (real time by default) because it is about the wire, not the care
timeline; what a tap *means* is decided by the rules engine on the clock.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable

import serial

from gateway.drivers.base import DriverError, ReconnectingDriver
from gateway.protocols.em4100 import Em4100Parser, TagFrame, TapConfirmer
from homecall.clock import Clock
from homecall.observations import Observation, TagRead
from homecall.tags import redact

log = logging.getLogger(__name__)

class RfidReaderError(DriverError):
    """The RFID reader cannot be used."""


class RfidReaderDriver(ReconnectingDriver[serial.SerialBase]):
    """Reads EM4100 taps from a serial port in its own thread."""

    device = "rfid"
    kind = "rfid-em4100"

    def __init__(
        self,
        path: str,
        clock: Clock,
        sink: Callable[[Observation], None],
        *,
        baudrate: int = 9600,
        hold_gap_s: float = 0.25,
        confirm_frames: int = 2,
        name: str = "rfid",
        reconnect_max_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(path, clock, sink, name=name, reconnect_max_s=reconnect_max_s,
                         monotonic=monotonic, rng=rng)
        self.baudrate = baudrate
        self.hold_gap_s = hold_gap_s
        self.parser = Em4100Parser()
        self.confirmer = TapConfirmer(hold_gap_s, confirm_frames)
        self.taps = 0
        self._port: serial.SerialBase | None = None

    def _detail(self) -> str:
        taps = f"{self.taps} tap" + ("" if self.taps == 1 else "s")
        return (f"{self.path} @ {self.baudrate} baud; {taps}; {self.parser.frames_ok} frames "
                f"ok, {self.parser.frames_rejected} rejected, {self.confirmer.unconfirmed} "
                "unconfirmed")

    # -- link -----------------------------------------------------------------------------
    def _connect(self) -> serial.SerialBase:
        port = serial.serial_for_url(self.path, baudrate=self.baudrate, timeout=0.2)
        self.parser.reset()
        self.confirmer.reset()
        self._port = port
        return port

    def _disconnect(self, link: serial.SerialBase) -> None:
        self._port = None
        with contextlib.suppress(serial.SerialException, OSError):
            link.close()

    def _wake(self) -> None:
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            with contextlib.suppress(Exception):
                port.cancel_read()

    def _session(self, link: serial.SerialBase) -> None:
        while not self._stop.is_set():
            waiting = link.in_waiting
            chunk = link.read(waiting if waiting > 0 else 1)
            if chunk:
                self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        """Bytes from the reader: decode, confirm and report taps (the session calls this)."""
        now = self.monotonic()
        for event in self.parser.feed(chunk):
            if isinstance(event, TagFrame):
                self.last_frame = self.clock.now()
                tag = self.confirmer.frame(event.tag, now)
                if tag is not None:
                    self._tap(tag)
            else:
                self.confirmer.rejected(now)
                log.warning("%s: rejected %d bytes: %s", self.name, len(event.raw), event.reason)

    def _tap(self, tag: str) -> None:
        self.taps += 1
        log.debug("%s: tap %s", self.name, redact(tag))
        self.sink(TagRead(tag=tag, at=self.clock.now(), source="rfid"))
