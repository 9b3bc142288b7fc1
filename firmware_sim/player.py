"""The scenario player: performs a scenario's timeline at its times on a (scaled) clock.

:class:`SimulatedHome` owns the home's simulated devices (RFID reader, sensor hub, NFC
reader), each on its own pty link in one directory. :class:`ScenarioPlayer` waits on the
clock for each step and hands it to a handler: device actions go to the simulated home;
infrastructure actions (network, broker, gateway, plan_update) go to a handler the demo
supplies. An action nobody handles is a clear error naming the action.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from firmware_sim import SimulatorError
from firmware_sim.em4100 import SimulatedRfidReader
from homecall.clock import Clock, ScaledClock
from homecall.scenario import DEVICE_ACTIONS, Scenario, Step

log = logging.getLogger(__name__)

DEVICE_LINKS = {"rfid": "rfid", "hub": "hub", "nfc": "nfc"}


class SimulatedHome:
    """The devices in one home, on pty links under ``dev_dir``."""

    def __init__(self, dev_dir: str | Path, clock: Clock, devices: Iterable[str] = ("rfid",),
                 hub_id: str = "hub-sim-1") -> None:
        self.dev_dir = Path(dev_dir)
        self.clock = clock
        self.speed = clock.speed if isinstance(clock, ScaledClock) else 1.0
        self.rfid: SimulatedRfidReader | None = None
        self.hub: Any = None
        self.nfc: Any = None
        wanted = set(devices)
        unknown = wanted - set(DEVICE_LINKS)
        if unknown:
            raise SimulatorError(f"unknown device(s) {sorted(unknown)}; known: rfid, hub, nfc")
        if "rfid" in wanted:
            self.rfid = SimulatedRfidReader(str(self.link("rfid")))
        if "hub" in wanted:
            from firmware_sim.hub import SimulatedHub

            self.hub = SimulatedHub(str(self.link("hub")), hub_id=hub_id, clock=clock)
        if "nfc" in wanted:
            from firmware_sim.pn532 import SimulatedPn532

            self.nfc = SimulatedPn532(str(self.link("nfc")))

    def link(self, device: str) -> Path:
        return self.dev_dir / DEVICE_LINKS[device]

    def start(self) -> None:
        for device in (self.rfid, self.hub, self.nfc):
            if device is not None:
                device.start()

    def stop(self) -> None:
        for device in (self.rfid, self.hub, self.nfc):
            if device is not None:
                device.stop()

    def _need(self, device: str) -> Any:
        found = {"rfid": self.rfid, "hub": self.hub, "nfc": self.nfc}[device]
        if found is None:
            raise SimulatorError(f"this home has no simulated {device} device")
        return found

    def perform(self, step: Step) -> None:
        action = step.action
        do = action.do
        if do == "tap":
            assert action.tag is not None
            kind, _, uid = action.tag.partition(":")
            hold_real_s = (action.hold_s or 0.0) / self.speed
            if kind.lower() == "em4100":
                self._need("rfid").tap(action.tag, hold_real_s=hold_real_s)
            else:
                ndef = bytes.fromhex(action.ndef) if action.ndef else None
                self._need("nfc").present_card(bytes.fromhex(uid), ndef=ndef,
                                               hold_s=max(hold_real_s, 0.3))
        elif do == "door":
            self._need("hub").door(action.sensor or "front", action.state == "open")
        elif do == "keysafe":
            self._need("hub").keysafe(action.state == "open")
        elif do == "button":
            self._need("hub").button(action.name)
        elif do == "tamper":
            self._need("hub").tamper(action.state in (None, "on", "active"))
        elif do == "battery":
            self._need("hub").battery(action.mv)
        elif do == "unplug":
            self._need(action.device or "").unplug()
        elif do == "replug":
            self._need(action.device or "").replug()
        elif do == "garbage":
            device = self._need(action.device or "")
            data = bytes.fromhex(action.bytes or "")
            if hasattr(device, "garbage"):
                device.garbage(data)
            else:
                device.send_raw(data)
        else:
            raise SimulatorError(f"the simulated home cannot perform action {do!r}")


class ScenarioPlayer:
    """Plays the steps of a scenario whose action is in ``handlers``, on time."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        handlers: Mapping[str, Callable[[Step], None]],
        *,
        only: Iterable[str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.handlers = handlers
        wanted = set(only) if only is not None else None
        self.steps = [s for s in scenario.steps if wanted is None or s.action.do in wanted]
        missing = {s.action.do for s in self.steps} - set(handlers)
        if missing:
            raise SimulatorError(
                f"{scenario.source}: no handler for action(s) {', '.join(sorted(missing))}"
            )
        self.done: list[Step] = []
        self.errors: list[str] = []

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        for step in self.steps:
            while not stop.is_set():
                wait = self.clock.real_seconds_until(step.at)
                if wait <= 0:
                    break
                stop.wait(min(wait, 0.5))
            if stop.is_set():
                return
            log.info("step %d at %s: %s", step.index, step.at.isoformat(), step.action.do)
            try:
                self.handlers[step.action.do](step)
            except SimulatorError as err:
                self.errors.append(f"timeline[{step.index}] {step.action.do}: {err}")
                log.error("%s", self.errors[-1])
            self.done.append(step)


def device_handlers(home: SimulatedHome) -> dict[str, Callable[[Step], None]]:
    return {action: home.perform for action in DEVICE_ACTIONS}


def devices_needed(scenario: Scenario) -> set[str]:
    """Which simulated devices a scenario uses (the RFID reader is always present)."""
    needed = {"rfid"}
    for step in scenario.steps:
        action = step.action
        if action.do == "tap" and action.tag and action.tag.lower().startswith("nfc:"):
            needed.add("nfc")
        elif action.do in ("door", "keysafe", "button", "tamper", "battery"):
            needed.add("hub")
        elif action.device:
            needed.add(action.device)
    return needed
