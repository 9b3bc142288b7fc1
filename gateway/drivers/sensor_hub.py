"""Driver for the sensor hub: owns its serial port, turns frames into observations.

One thread per hub owns the pyserial port (a device path, a ``/dev/serial/by-id`` link, a
simulator's pty link or any pyserial URL); reconnecting with back-off and the fault model
come from :class:`~gateway.drivers.base.ReconnectingDriver`. The driver asks the hub for
its full state after every (re)connect and after any lost or corrupted frame (so a door
that opened while the cable was out is still reported), collapses contact bounce, logs and
counts sequence gaps, notices a silent hub, and sends the LED/buzzer patterns of carer
feedback. Everything it learns goes to ``sink`` as
:mod:`homecall.observations` values, stamped with the injected clock.

Link liveness (heartbeat silence, reconnect back-off, debounce settle time, PING cadence)
is measured in monotonic seconds from the injected ``monotonic`` (real time by default), not
on the domain clock: it is a property of the
wire, and a 600x demo clock must neither turn a 50 ms scheduling hiccup into a 30 s
"silence" nor make the hub send 600 heartbeats a second. Observation times (``at``) are
always the injected clock's ``now()``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import termios
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.drivers.base import ReconnectingDriver
from gateway.feedback import pattern
from gateway.protocols.contact_debounce import ContactDebouncer
from gateway.protocols.hub import (
    Battery,
    Button,
    Contact,
    FrameError,
    Hello,
    HubCommand,
    HubProtocol,
    Nak,
    Ping,
    RequestState,
    SequenceGap,
    Sync,
    Tamper,
)
from homecall.clock import Clock
from homecall.observations import (
    BatteryReading,
    ButtonPress,
    ContactChange,
    Observation,
    TamperChange,
)

log = logging.getLogger(__name__)


class SensorHubDriver(ReconnectingDriver[Any]):
    """The gateway's view of one sensor hub (see module docstring)."""

    device = "hub"
    kind = "hub"
    open_error_types = (OSError, ValueError)  # SerialException is an OSError
    link_error_types = (OSError, termios.error)
    clear_unplugged_on_open = False  # cleared by the hub's first valid frame

    #: After a lost or corrupted frame the full state is requested, at most this often
    #: (a garbage storm must not turn into a STATE storm).
    RESYNC_MIN_INTERVAL_S = 0.2

    def __init__(
        self,
        path: str,
        clock: Clock,
        sink: Callable[[Observation], None],
        *,
        baudrate: int = 115200,
        heartbeat_timeout_s: float = 15.0,
        name: str = "hub",
        settle_s: float = 0.04,
        battery_low_mv: int = 3300,
        battery_ok_mv: int = 3400,
        reconnect_max_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(path, clock, sink, name=name, reconnect_max_s=reconnect_max_s,
                         monotonic=monotonic, rng=rng)
        self.baudrate = baudrate
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.battery_low_mv = battery_low_mv
        self.battery_ok_mv = battery_ok_mv
        self.protocol = HubProtocol()
        self.debouncer = ContactDebouncer(settle_s)
        self.hub_id: str | None = None
        self.state_requests = 0
        self.syncs = 0  # full-state reports received (HELLO ... SYNC)
        self._tamper = False
        self._battery: int | None = None
        self._tx: queue.SimpleQueue[HubCommand] = queue.SimpleQueue()
        self._serial: Any = None

    # -- public API -----------------------------------------------------------------------
    def feedback(self, outcome: str) -> None:
        """Queue the LED/buzzer pattern for ``outcome`` (a :mod:`gateway.feedback` outcome,
        or one of the older names); returns at once (any thread). ValueError if unknown."""
        for command in pattern(outcome):
            self._tx.put(command)
        self._wake()

    def send(self, command: HubCommand) -> None:
        """Queue any hub command (installer tools, tests)."""
        self._tx.put(command)
        self._wake()

    def _detail(self) -> str | None:
        return f"hub id {self.hub_id}" if self.hub_id else None

    def sensor_state(self) -> dict[str, Any]:
        """What the hub last reported (settled): each door and the key safe ``open`` or
        ``closed``, tamper ``on``/``off``, battery millivolts (None until reported)."""
        stable = dict(self.debouncer.stable)
        return {
            "doors": {s: "open" if o else "closed" for (k, s), o in sorted(stable.items())
                      if k == "door"},
            "keysafe": {s: "open" if o else "closed" for (k, s), o in sorted(stable.items())
                        if k == "keysafe"},
            "tamper": "on" if self._tamper else "off",
            "battery_mv": self._battery,
        }

    # -- the link -------------------------------------------------------------------------
    def _wake(self) -> None:
        serial_port = self._serial
        if serial_port is not None and hasattr(serial_port, "cancel_read"):
            with contextlib.suppress(Exception):
                serial_port.cancel_read()

    def _connect(self) -> Any:
        import serial

        port = serial.serial_for_url(self.path, baudrate=self.baudrate, timeout=0.05)
        self._serial = port
        return port

    def _disconnect(self, link: Any) -> None:
        self._serial = None
        with contextlib.suppress(Exception):
            link.close()

    def _session(self, port: Any) -> None:
        self.protocol.reset()
        last_rx = self.monotonic()
        last_ping = last_rx
        resync_due = False
        self._write(port, RequestState())
        self.state_requests += 1
        last_state_request = self.monotonic()
        while not self._stop.is_set():
            while True:
                try:
                    command = self._tx.get_nowait()
                except queue.Empty:
                    break
                self._write(port, command)
            data = port.read(port.in_waiting or 1)
            now = self.monotonic()
            resync = False
            if data:
                at = self.clock.now()
                for event in self.protocol.feed(data):
                    if isinstance(event, FrameError | SequenceGap):
                        resync = True
                        if isinstance(event, SequenceGap):
                            log.warning(
                                "%s: sequence gap, expected %04X got %04X (%d lost, %d gaps)",
                                self.name,
                                event.expected,
                                event.got,
                                event.lost,
                                self.protocol.stats.seq_gaps,
                            )
                        else:
                            log.info(
                                "%s: bad frame (%s, %d bytes)",
                                self.name,
                                event.reason,
                                event.length,
                            )
                        continue
                    last_rx = now
                    self._handle(event, at, now)
            resync_due = resync_due or resync
            if resync_due and now - last_state_request > self.RESYNC_MIN_INTERVAL_S:
                self._write(port, RequestState())
                self.state_requests += 1
                last_state_request = now
                resync_due = False
            for settled in self.debouncer.settle(now):
                self.sink(ContactChange(settled.kind, settled.sensor, settled.open, settled.at))
            silent_for = now - last_rx
            if silent_for > self.heartbeat_timeout_s:
                self._fault("silent")
            if (
                silent_for > self.heartbeat_timeout_s / 3
                and now - last_ping > self.heartbeat_timeout_s / 3
            ):
                self._write(port, Ping())
                last_ping = now

    def _write(self, port: Any, command: HubCommand) -> None:
        port.write(self.protocol.encode(command))

    def _handle(self, event: Any, at: datetime, now: float) -> None:
        self.last_frame = at
        self._clear("unplugged")
        self._clear("silent")
        if isinstance(event, Hello):
            if event.hub_id != self.hub_id or event.firmware != self.firmware:
                log.info(
                    "%s: hub %s firmware %s protocol %d",
                    self.name,
                    event.hub_id,
                    event.firmware,
                    event.protocol,
                )
            self.hub_id, self.firmware = event.hub_id, event.firmware
        elif isinstance(event, Contact):
            self.debouncer.edge(event.kind, event.sensor, event.open, at, now)
        elif isinstance(event, Button):
            self.sink(ButtonPress(event.name, at))
        elif isinstance(event, Tamper):
            if event.active != self._tamper:
                self._tamper = event.active
                self.sink(TamperChange(event.active, at))
                if event.active:
                    self._fault("tamper")
                else:
                    self._clear("tamper")
        elif isinstance(event, Battery):
            if event.millivolts != self._battery:
                self._battery = event.millivolts
                self.sink(BatteryReading(event.millivolts, at))
            if event.millivolts < self.battery_low_mv:
                self._fault("battery_low")
            elif event.millivolts >= self.battery_ok_mv:
                self._clear("battery_low")
        elif isinstance(event, Nak):
            log.warning("%s: hub refused command %04X: %s", self.name, event.ref, event.reason)
        elif isinstance(event, Sync):
            self.syncs += 1
            log.debug("%s: full state received (%d frames)", self.name, event.count)
