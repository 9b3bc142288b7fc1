"""Driver for the sensor hub: owns its serial port, turns frames into observations.

One thread per hub owns the pyserial port (a device path, a ``/dev/serial/by-id`` link, a
simulator's pty link or any pyserial URL). It reconnects with exponential back-off after
an unplug, asks the hub for its full state after every (re)connect and after any lost or
corrupted frame (so a door that opened while the cable was out is still reported),
collapses contact bounce, logs and counts sequence gaps, notices a silent hub, and sends
the LED/buzzer patterns of carer feedback. Everything it learns goes to ``sink`` as
:mod:`homecall.observations` values, stamped with the injected clock.

Link liveness (heartbeat silence, reconnect back-off, debounce settle time, PING cadence)
is measured in *real* monotonic seconds, not on the injected clock: it is a property of the
wire, and a 600x demo clock must neither turn a 50 ms scheduling hiccup into a 30 s
"silence" nor make the hub send 600 heartbeats a second. Observation times (``at``) are
always the injected clock's ``now()``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import termios
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from gateway.protocols.hub import (
    FEEDBACK,
    Battery,
    Button,
    Contact,
    ContactDebouncer,
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
    DeviceFault,
    DeviceRecovered,
    Observation,
    TamperChange,
)
from homecall.wire import DeviceStatus

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "unplanned", "rejected", "fault"]


class SensorHubDriver:
    """The gateway's view of one sensor hub (see module docstring)."""

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
    ) -> None:
        self.path = path
        self.clock = clock
        self.sink = sink
        self.baudrate = baudrate
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.name = name
        self.battery_low_mv = battery_low_mv
        self.battery_ok_mv = battery_ok_mv
        self.reconnect_max_s = reconnect_max_s
        self.protocol = HubProtocol()
        self.debouncer = ContactDebouncer(settle_s)
        self.hub_id: str | None = None
        self.firmware: str | None = None
        self.last_frame: datetime | None = None
        self.connects = 0
        self.state_requests = 0
        self.faults: set[str] = set()
        self._tamper = False
        self._battery: int | None = None
        self._tx: queue.SimpleQueue[HubCommand] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: Any = None
        self._lock = threading.Lock()
        self._connected = False

    # -- public API -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"hub-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def feedback(self, outcome: Outcome) -> None:
        """Queue the LED/buzzer pattern for ``outcome``; returns at once (any thread)."""
        commands = FEEDBACK.get(outcome)
        if commands is None:
            raise ValueError(f"unknown feedback outcome {outcome!r}")
        for command in commands:
            self._tx.put(command)
        self._wake()

    def send(self, command: HubCommand) -> None:
        """Queue any hub command (installer tools, tests)."""
        self._tx.put(command)
        self._wake()

    def status(self) -> DeviceStatus:
        with self._lock:
            faults = sorted(self.faults)
            if not self._connected or "unplugged" in faults:
                state: Literal["ok", "fault", "absent", "disabled"] = "absent"
            elif faults:
                state = "fault"
            else:
                state = "ok"
            detail = (
                ", ".join(faults) if faults else (f"hub id {self.hub_id}" if self.hub_id else None)
            )
            return DeviceStatus(
                name=self.name,
                kind="hub",
                state=state,
                detail=detail,
                firmware=self.firmware,
                last_frame=self.last_frame,
            )

    # -- faults ---------------------------------------------------------------------------
    def _fault(self, reason: str) -> None:
        with self._lock:
            if reason in self.faults:
                return
            self.faults.add(reason)
        log.warning("%s: fault %s (%s)", self.name, reason, self.path)
        self.sink(DeviceFault("hub", reason, self.clock.now()))

    def _clear(self, reason: str) -> None:
        with self._lock:
            if reason not in self.faults:
                return
            self.faults.discard(reason)
            recovered = not self.faults
        log.info("%s: %s cleared", self.name, reason)
        if recovered:
            self.sink(DeviceRecovered("hub", self.clock.now()))

    # -- the thread -----------------------------------------------------------------------
    def _wake(self) -> None:
        serial_port = self._serial
        if serial_port is not None and hasattr(serial_port, "cancel_read"):
            with contextlib.suppress(Exception):
                serial_port.cancel_read()

    def _open(self) -> Any:
        import serial

        return serial.serial_for_url(self.path, baudrate=self.baudrate, timeout=0.05)

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                port = self._open()
            except (OSError, ValueError) as err:  # SerialException is an OSError
                log.debug("%s: cannot open %s: %s", self.name, self.path, err)
                self._fault("unplugged")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
                continue
            backoff = 0.05
            self._serial = port
            self.connects += 1
            try:
                self._session(port)
            except (OSError, termios.error) as err:
                log.warning("%s: link lost on %s: %s", self.name, self.path, err)
                self._fault("unplugged")
            finally:
                self._serial = None
                with self._lock:
                    self._connected = False
                with contextlib.suppress(Exception):
                    port.close()

    def _session(self, port: Any) -> None:
        self.protocol.reset()
        with self._lock:
            self._connected = True
        last_rx = time.monotonic()
        last_ping = last_rx
        resync_due = False
        self._write(port, RequestState())
        self.state_requests += 1
        last_state_request = time.monotonic()
        while not self._stop.is_set():
            while True:
                try:
                    command = self._tx.get_nowait()
                except queue.Empty:
                    break
                self._write(port, command)
            data = port.read(port.in_waiting or 1)
            now = time.monotonic()
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
            log.debug("%s: full state received (%d frames)", self.name, event.count)
