"""The heartbeat: what the gateway says about itself every ``heartbeat_s`` seconds.

Each beat publishes the retained ``status`` (clock state, backlog, last seq, plan version,
each device's state, the last command's result), feeds systemd's watchdog (the core thread
is alive), re-checks a real wall clock's synchronisation at most once a minute (a change is
an engine input, returned to the core), asks for an engine snapshot, gives freed memory back
to the OS when the core is quiet, and keeps the device-state file that ``homecall gateway
devices`` reads. That file lives on the SD card, so it is rewritten only when a device's
state changes and otherwise every :data:`~gateway.devices_cli.DEVICE_STATE_REFRESH_S`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.central_link import CentralLink
from gateway.delivery.journal import Journal
from gateway.delivery.outbox import Outbox
from gateway.engine_host import CoreInput, EngineHost
from gateway.rules.inputs import ClockStatus
from gateway.system_clock import detect_clock_ok, release_free_memory
from gateway.systemd import notify
from homecall.clock import Clock
from homecall.wire import DeviceStatus, StatusMessage

log = logging.getLogger(__name__)

#: How often (monotonic seconds) a real wall clock's synchronisation is checked again.
CLOCK_RECHECK_S = 60.0


class StatusReporter:
    """Builds and publishes the status; run on the core thread at each heartbeat."""

    def __init__(self, gateway_id: str, boot_id: str, heartbeat_s: float, clock_mode: str,
                 device_state_file: Path | None, *, host: EngineHost, journal: Journal,
                 outbox: Outbox, link: CentralLink, drivers: Sequence[Any], clock: Clock,
                 quiet: Callable[[], bool]) -> None:
        self.gateway_id = gateway_id
        self.boot_id = boot_id
        self.heartbeat_s = heartbeat_s
        self.clock_mode = clock_mode
        self.device_state_file = device_state_file
        self.host = host
        self.journal = journal
        self.outbox = outbox
        self.link = link
        self.drivers = drivers
        self.clock = clock
        self._quiet = quiet
        self._clock_checked = time.monotonic()
        # what the device-state file last showed, and when (monotonic) it was written
        self._devices_written: tuple[tuple[str, str, str | None, str | None], ...] = ()
        self._devices_written_at = float("-inf")

    def beat(self) -> list[CoreInput]:
        """Publish the status; re-check the clock (its change is an engine input)."""
        notify("WATCHDOG=1")  # the core loop is alive: systemd's watchdog is fed from here
        units: list[CoreInput] = []
        if self.clock_mode == "auto" and time.monotonic() - self._clock_checked > CLOCK_RECHECK_S:
            self._clock_checked = time.monotonic()
            synced = detect_clock_ok(self.clock, "auto")
            if synced != self.host.clock_ok:
                log.warning("wall clock %s", "synchronised" if synced else "no longer in sync")
                self.host.clock_ok = synced
                units.append(CoreInput(self.clock.now(), engine=True, item=ClockStatus(synced)))
        self.host.snapshot_wanted = True
        if self._quiet():
            release_free_memory()  # a quiet moment after a burst: keep the footprint small
        devices: list[DeviceStatus] = [d.status() for d in self.drivers]
        plan = self.host.plan
        self.outbox.publish_status(StatusMessage(
            gateway_id=self.gateway_id, state="online", time=self.clock.now(),
            boot_id=self.boot_id, clock_ok=self.host.clock_ok, backlog=self.journal.backlog,
            last_seq=self.journal.last_seq, plan_version=plan.version if plan else None,
            heartbeat_s=self.heartbeat_s, devices=devices,
            last_command=self.link.last_command))
        if self.device_state_file is not None:
            self._write_device_states(self.device_state_file, devices)
        return units

    def offline(self) -> StatusMessage:
        """The status a clean stop leaves retained."""
        return StatusMessage(gateway_id=self.gateway_id, state="offline",
                             time=self.clock.now(), boot_id=self.boot_id)

    def _write_device_states(self, path: Path, devices: list[DeviceStatus]) -> None:
        from gateway.devices_cli import DEVICE_STATE_REFRESH_S, write_device_states

        shown = tuple((d.name, d.state, d.detail, d.firmware) for d in devices)
        now = time.monotonic()
        if shown == self._devices_written and now - self._devices_written_at \
                < DEVICE_STATE_REFRESH_S:
            return
        try:
            write_device_states(path, self.drivers)
        except OSError as err:
            log.warning("cannot write device state file: %s", err)
            return
        self._devices_written, self._devices_written_at = shown, now
