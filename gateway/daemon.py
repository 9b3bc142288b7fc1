"""The gateway daemon: wires drivers → core loop (rules engine, journal) → outbox.

This module builds the parts and runs their lifecycle; each part lives in a module named for
what it does:

- :mod:`gateway.drivers` read the RFID reader, the sensor hub and the NFC reader, each on a
  thread of its own, and post observations;
- :mod:`gateway.core_loop` is the one thread where state changes: it batches what was
  posted and gives each kind its own path;
- :mod:`gateway.engine_host` steps the pure rules engine and commits each step to the
  journal (:mod:`gateway.delivery.journal`) as one unit, or holds it while the journal fails;
- :mod:`gateway.central_link` routes what central sends (acks, plans, commands);
- :mod:`gateway.delivery.outbox` publishes the journal's events over MQTT;
- :mod:`gateway.status_report` is the heartbeat; :mod:`gateway.wakeups` wakes the core at
  the engine's next deadline and for the heartbeat.

Settings and the command line: :mod:`gateway.settings`.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.central_link import CentralLink
from gateway.core_loop import CoreLoop, Stop
from gateway.delivery.journal import Journal, NewEvent
from gateway.delivery.outbox import BrokerSettings, Outbox
from gateway.engine_host import CoreInput, EngineHost
from gateway.plan_intake import PlanIntake
from gateway.rules.inputs import ClockStatus
from gateway.status_report import StatusReporter
from gateway.system_clock import detect_clock_ok, read_boot_id
from gateway.systemd import notify
from gateway.wakeups import Wakeups
from homecall.clock import Clock
from homecall.wire import EventType, validate_gateway_id

log = logging.getLogger(__name__)


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


class GatewayDaemon:
    """One home's gateway."""

    def __init__(self, config: GatewayConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.gateway_id = validate_gateway_id(config.gateway_id)
        self.boot_id = read_boot_id(clock)
        self.journal = Journal(
            config.journal_path, self.gateway_id, self.boot_id, synchronous=config.journal_sync,
            budget_bytes=config.journal_budget_bytes, max_bytes=config.journal_max_bytes,
            clock=clock,
        )
        self.drivers: list[Any] = []
        self.hub: Any = None
        self.wakeups = Wakeups(clock, self.post, config.heartbeat_s)
        self.host = EngineHost(self.journal, clock, arm=self.wakeups.arm,
                               clock_ok=detect_clock_ok(clock, config.clock_ok))
        self.outbox = Outbox(self.gateway_id, self.journal, config.broker, self.post)
        self.link = CentralLink(self.outbox, self.journal, self.host,
                                PlanIntake(self.gateway_id, config.plan_public_key), clock,
                                lambda: self.hub)
        self.core = CoreLoop(self.host, self.link, self.outbox, clock, lambda: self.hub)
        self.status = StatusReporter(
            self.gateway_id, self.boot_id, config.heartbeat_s, config.clock_ok,
            config.device_state_file, host=self.host, journal=self.journal,
            outbox=self.outbox, link=self.link, drivers=self.drivers, clock=clock,
            quiet=self.core.quiet)
        self.core.heartbeat = self.status.beat
        self.ready = threading.Event()

    @property
    def plan_version(self) -> int | None:
        """The version of the plan actually in force (committed), not the last one offered."""
        return self.host.plan.version if self.host.plan else None

    def post(self, item: Any) -> None:
        """Thread-safe hand-off from drivers, paho and the scheduler to the core thread."""
        self.core.post(item)

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
        """Start everything, serve the core until :meth:`stop`, then shut down cleanly."""
        # Hand the GIL over sooner (default 5 ms): a tap waiting on the driver or paho thread
        # should not queue behind a burst of core work.
        sys.setswitchinterval(0.0005)
        self._make_drivers()
        if self.hub is None:
            log.warning("no feedback device configured (no sensor hub): carers get no light "
                        "or sound at the door")
        self.wakeups.start()
        self.core.commit(self._startup_inputs())
        self.core.pump()
        for driver in self.drivers:
            driver.start()
        self.outbox.start()
        self.ready.set()
        notify("READY=1")
        log.info("gateway %s running (journal %s)", self.gateway_id, self.config.journal_path)
        try:
            self.core.run()
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
        self.wakeups.stop()
        if self.host.faulted:
            self.host.retry()
        if self.host.faulted:
            log.critical("stopping with %d input(s) the journal never took", self.host.held)
        self.host.snapshot_wanted = True
        self.host.snapshot_if_due()
        self.outbox.stop(self.status.offline())
        self.journal.close()
