"""The gateway daemon: wires drivers → rules engine → journal → outbox, on one core thread.

Drivers, paho-mqtt and APScheduler all run threads of their own; none of them touches
state. Each only posts a message to the core queue. The core thread takes messages in
batches and gives each kind its own path: device observations, deadline wake-ups and plans
become :class:`~gateway.engine_host.CoreInput` units that the engine host steps and commits
as one unit (or holds, when the journal fails); what central sends (acks, its position,
plans, commands) goes through :mod:`gateway.central_link`; heartbeats publish the status.
A failure on one path is logged and cannot take another's work with it. After each batch
the outbox publishes and the reader's LED/buzzer says what happened. APScheduler's only job
is to wake the core at the engine's ``next_deadline`` (and for the heartbeat); the engine
decides everything about time. Settings and the command line: :mod:`gateway.settings`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.central_link import CentralLink
from gateway.delivery.journal import Journal, JournalError, NewEvent
from gateway.delivery.outbox import (
    BrokerSettings,
    Connected,
    Outbox,
    OutboxMessage,
)
from gateway.engine_host import CoreInput, EngineHost
from gateway.feedback import READER_DEVICES
from gateway.plan_intake import PlanIntake
from gateway.rules.inputs import ClockStatus
from gateway.system_clock import detect_clock_ok, read_boot_id, release_free_memory
from gateway.systemd import notify
from gateway.telemetry import telemetry_events
from homecall.clock import Clock
from homecall.observations import ButtonPress, ContactChange, DeviceFault, Observation, TagRead
from homecall.wire import (
    DeviceStatus,
    EventType,
    StatusMessage,
    validate_gateway_id,
)

log = logging.getLogger(__name__)

_BATCH_MAX = 512


@dataclass
class GatewayConfig:
    gateway_id: str
    journal_path: Path
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    rfid_path: str | None = None
    rfid_confirm_frames: int = 2
    hub_path: str | None = None
    nfc_path: str | None = None
    plan_file: Path | None = None
    clock_ok: str = "auto"  # auto | yes | no
    heartbeat_s: float = 10.0
    journal_sync: str = "FULL"
    device_state_file: Path | None = None
    token_public_key: bytes | None = None
    plan_public_key: bytes | None = None  # central's key; plans from central must verify
    journal_budget_bytes: int | None = None  # shed low-value telemetry above this
    journal_max_bytes: int | None = None  # hard cap (SQLite max_page_count): "disk full"


@dataclass(frozen=True, slots=True)
class Tick:
    """Wake the engine: a deadline may be due."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Publish the status."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Journal what has arrived, then leave."""


class GatewayDaemon:
    """One home's gateway."""

    def __init__(self, config: GatewayConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.gateway_id = validate_gateway_id(config.gateway_id)
        self.boot_id = read_boot_id(clock)
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.journal = Journal(
            config.journal_path, self.gateway_id, self.boot_id, synchronous=config.journal_sync,
            budget_bytes=config.journal_budget_bytes, max_bytes=config.journal_max_bytes,
            clock=clock,
        )
        self.host = EngineHost(self.journal, clock, arm=self._arm,
                               clock_ok=detect_clock_ok(clock, config.clock_ok))
        self._clock_checked = time.monotonic()
        # what the device-state file last showed, and when (monotonic) it was written
        self._devices_written: tuple[tuple[str, str, str | None, str | None], ...] = ()
        self._devices_written_at = float("-inf")
        self._journal_read_failing = False
        self.outbox = Outbox(self.gateway_id, self.journal, config.broker, self.post)
        self.link = CentralLink(self.outbox, self.journal, self.host,
                                PlanIntake(self.gateway_id, config.plan_public_key), clock,
                                lambda: self.hub)
        self.drivers: list[Any] = []
        self.hub: Any = None
        self._scheduler: Any = None
        self.ready = threading.Event()

    @property
    def plan_version(self) -> int | None:
        """The version of the plan actually in force (committed), not the last one offered."""
        return self.host.plan.version if self.host.plan else None

    def post(self, item: Any) -> None:
        """Thread-safe hand-off from drivers, paho and the scheduler to the core thread."""
        self.inbox.put(item)

    def _make_drivers(self) -> None:
        cfg = self.config
        if cfg.rfid_path:
            from gateway.drivers.rfid_reader import RfidReaderDriver

            self.drivers.append(RfidReaderDriver(cfg.rfid_path, self.clock, self.post,
                                                 confirm_frames=cfg.rfid_confirm_frames))
        if cfg.hub_path:
            from gateway.drivers.sensor_hub import SensorHubDriver

            self.hub = SensorHubDriver(cfg.hub_path, self.clock, self.post)
            self.drivers.append(self.hub)
        if cfg.nfc_path:
            from gateway.drivers.nfc_reader import NfcReaderDriver

            self.drivers.append(NfcReaderDriver(cfg.nfc_path, self.clock, self.post,
                                                token_public_key=cfg.token_public_key))

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        # Hand the GIL over sooner (default 5 ms): a tap waiting on the driver or paho thread
        # should not queue behind a burst of core work.
        sys.setswitchinterval(0.0005)
        self._make_drivers()
        if self.hub is None:
            log.warning("no feedback device configured (no sensor hub): carers get no light "
                        "or sound at the door")
        # Jobs only post to the core queue: one worker thread is enough (default: up to 10).
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=1)})
        self._scheduler.add_job(self.post, "interval", args=[Heartbeat()],
                                seconds=self.config.heartbeat_s, id="heartbeat")
        self._scheduler.start()
        self._commit(self._startup_inputs())
        self._pump()
        for driver in self.drivers:
            driver.start()
        self.outbox.start()
        self.ready.set()
        notify("READY=1")
        log.info("gateway %s running (journal %s)", self.gateway_id, self.config.journal_path)
        try:
            self._core_loop()
        finally:
            notify("STOPPING=1")
            self._shutdown()

    def _startup_inputs(self) -> list[CoreInput]:
        now, mono = self.clock.now(), self.clock.monotonic()
        started = [NewEvent(EventType.GATEWAY_STARTED, now, mono,
                            data={"boot_id": self.boot_id, "clock_ok": self.host.clock_ok})]
        damage = self.journal.damage
        if damage is not None:
            started.append(NewEvent(
                EventType.JOURNAL_DAMAGED, now, mono,
                data={"reason": damage.reason, "kept_as": damage.kept_as,
                      "salvaged_last_seq": damage.salvaged_last_seq,
                      "recovered": damage.recovered}))
        inputs = [CoreInput(now, tuple(started))]
        if self.config.plan_file is not None and self.host.plan is None:
            inputs += self._plan_file(self.config.plan_file)
        # Tell the engine the clock's state, fire anything that fell due while we were down
        # (journalled like any other outputs), then arm the next deadline.
        inputs += [CoreInput(now, engine=True, item=ClockStatus(self.host.clock_ok)),
                   CoreInput(now, engine=True)]
        return inputs

    def _plan_file(self, path: Path) -> list[CoreInput]:
        """The ``--plan`` file's plan; an unreadable or bad file is reported in one line
        (and a ``plan_rejected`` event) and the gateway starts without it."""
        try:
            payload = path.read_bytes()
        except OSError as err:
            log.error("plan file %s not used: %s", path, err.strerror or err)
            return []
        return self.link.plan_payload(payload, "file")

    def stop(self) -> None:
        self.post(Stop())

    def _shutdown(self) -> None:
        for driver in self.drivers:
            try:
                driver.stop()
            except Exception as err:  # one stuck driver must not keep the journal open
                log.error("stopping driver %s: %s", getattr(driver, "name", "?"), err)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self.host.faulted:
            self.host.retry()
        if self.host.faulted:
            log.critical("stopping with %d input(s) the journal never took", self.host.held)
        self.host.snapshot_wanted = True
        self.host.snapshot_if_due()
        self.outbox.stop(StatusMessage(gateway_id=self.gateway_id, state="offline",
                                       time=self.clock.now(), boot_id=self.boot_id))
        self.journal.close()

    # -- the core thread -------------------------------------------------------------------
    def _core_loop(self) -> None:
        while True:
            wait = self.host.seconds_to_retry()
            try:
                item = self.inbox.get(timeout=1.0 if wait is None else min(1.0, wait))
            except queue.Empty:
                if self.host.retry_due():
                    self.host.retry()
                self._pump()
                continue
            batch = [item]
            while len(batch) < _BATCH_MAX:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            stop = any(isinstance(i, Stop) for i in batch)
            self._process([i for i in batch if not isinstance(i, Stop)])
            if stop:
                return

    def _process(self, batch: list[Any]) -> None:
        units: list[CoreInput] = []
        taps: list[int] = []  # indices into units of taps awaiting feedback
        signals: list[tuple[int, str]] = []  # (unit index, outcome) shown once journalled
        for item in batch:
            try:
                if isinstance(item, Observation):
                    if isinstance(item, TagRead):
                        taps.append(len(units))
                    elif isinstance(item, ButtonPress) and item.name == "no_reply":
                        signals.append((len(units), "no_reply"))
                    elif isinstance(item, DeviceFault) and item.device in READER_DEVICES:
                        signals.append((len(units), "fault"))  # the reader carers tap broke
                    units.append(self._observation(item))
                elif isinstance(item, Tick):
                    units.append(CoreInput(self.clock.now(), engine=True))
                elif isinstance(item, Heartbeat):
                    units += self._heartbeat()
                elif isinstance(item, OutboxMessage.__args__):
                    reported = self.link.last_command
                    units += self.link.handle(item)
                    if isinstance(item, Connected) or self.link.last_command is not reported:
                        # central answers where it stands / sees the command's result now
                        units += self._heartbeat()
                else:
                    log.error("core: ignored unknown message %r", item)
            except Exception:  # one bad message must not take the rest of the batch
                log.exception("core: %s failed", type(item).__name__)
        outcomes = self._commit(units)
        self.host.snapshot_if_due()
        self._pump()
        if self.hub is not None:
            shown = [(index, "fault" if outcomes is None else outcomes[index]) for index in taps]
            shown += [(index, "fault" if outcomes is None else outcome)
                      for index, outcome in signals]
            for _, outcome in sorted(shown):
                if outcome:
                    # A tap that could not be journalled must not look recorded to the carer.
                    self.hub.feedback(outcome)

    def _commit(self, units: list[CoreInput]) -> list[str] | None:
        try:
            return self.host.commit(units)
        except Exception:
            log.exception("core: committing %d input(s) failed", len(units))
            return None

    def _pump(self) -> None:
        try:
            self.outbox.pump(self.host.take_fresh())
            self._journal_read_failing = False
        except JournalError as err:
            if not self._journal_read_failing:
                log.error("outbox cannot read the journal (retrying): %s", err)
            self._journal_read_failing = True

    def _observation(self, item: Observation) -> CoreInput:
        events = tuple(telemetry_events(item, self.clock.monotonic()))
        if isinstance(item, (TagRead, ContactChange, ButtonPress)):
            return CoreInput(item.at, events, engine=True, item=item)
        return CoreInput(item.at, events)

    def _heartbeat(self) -> list[CoreInput]:
        """Publish the status; re-check the clock (its change is an engine input)."""
        notify("WATCHDOG=1")  # the core loop is alive: systemd's watchdog is fed from here
        units: list[CoreInput] = []
        if self.config.clock_ok == "auto" and time.monotonic() - self._clock_checked > 60:
            self._clock_checked = time.monotonic()
            synced = detect_clock_ok(self.clock, "auto")
            if synced != self.host.clock_ok:
                log.warning("wall clock %s", "synchronised" if synced else "no longer in sync")
                self.host.clock_ok = synced
                units.append(CoreInput(self.clock.now(), engine=True, item=ClockStatus(synced)))
        self.host.snapshot_wanted = True
        if self.inbox.empty():
            release_free_memory()  # a quiet moment after a burst: keep the footprint small
        devices: list[DeviceStatus] = [d.status() for d in self.drivers]
        self.outbox.publish_status(StatusMessage(
            gateway_id=self.gateway_id, state="online", time=self.clock.now(),
            boot_id=self.boot_id, clock_ok=self.host.clock_ok, backlog=self.journal.backlog,
            last_seq=self.journal.last_seq, plan_version=self.plan_version,
            heartbeat_s=self.config.heartbeat_s, devices=devices,
            last_command=self.link.last_command))
        if self.config.device_state_file is not None:
            self._write_device_states(devices)
        return units

    def _write_device_states(self, devices: list[DeviceStatus]) -> None:
        """The device-state file for ``homecall gateway devices``: written when a device's
        state changes, otherwise at most every :data:`DEVICE_STATE_REFRESH_S` (it lives on
        the SD card: a rewrite every heartbeat was most of what an idle gateway wrote)."""
        from gateway.devices_cli import DEVICE_STATE_REFRESH_S, write_device_states

        assert self.config.device_state_file is not None
        shown = tuple((d.name, d.state, d.detail, d.firmware) for d in devices)
        now = time.monotonic()
        if shown == self._devices_written and now - self._devices_written_at \
                < DEVICE_STATE_REFRESH_S:
            return
        try:
            write_device_states(self.config.device_state_file, self.drivers)
        except OSError as err:
            log.warning("cannot write device state file: %s", err)
            return
        self._devices_written, self._devices_written_at = shown, now

    def _arm(self, deadline: datetime | None) -> None:
        if self._scheduler is None:
            return
        if deadline is None:
            with contextlib.suppress(Exception):
                self._scheduler.remove_job("rules-deadline")
            return
        wait = max(0.0, self.clock.real_seconds_until(deadline))
        self._scheduler.add_job(self.post, "date", args=[Tick()],
                                run_date=datetime.fromtimestamp(time.time() + wait, UTC),
                                id="rules-deadline", replace_existing=True,
                                misfire_grace_time=None)
