"""The walk-test as a pure step machine: given the steps, it is fed the devices'
observations and the time, and says which step is current and how each ended.

Each step waits for one observation (a tap of a given carer tag, a door or the key safe
opening or closing, the no-reply button, an NFC card, the reader unplugged and plugged
back). It passes with two figures: how long after the prompt the installer did it, and
the device latency (decoded by the driver → seen here). It fails when its time runs out,
or at once when the device it needs reports a fault, with what to check."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from homecall.observations import (
    ButtonPress,
    ContactChange,
    DeviceFault,
    DeviceRecovered,
    Observation,
    TagRead,
)

StepKind = Literal["tap", "door_open", "door_close", "keysafe_open", "keysafe_close",
                   "no_reply", "nfc", "reader_unplug", "reader_replug"]


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    prompt: str
    hint: str  # what to check when it fails
    tag: str | None = None  # for a tap: the carer tag expected (None: any)
    sensor: str | None = None  # for a door: which (None: any)


@dataclass
class StepResult:
    step: Step
    ok: bool
    detail: str
    after_s: float | None = None  # prompt -> done
    latency_ms: float | None = None  # driver decoded -> seen


@dataclass
class WalkTest:
    steps: list[Step]
    timeout_s: float = 60.0
    results: list[StepResult] = field(default_factory=list)
    started_at: datetime | None = None

    @property
    def current(self) -> Step | None:
        return self.steps[len(self.results)] if len(self.results) < len(self.steps) else None

    @property
    def done(self) -> bool:
        return self.current is None

    @property
    def passed(self) -> bool:
        return self.done and all(r.ok for r in self.results)

    def start(self, now: datetime) -> None:
        self.started_at = now

    def _finish(self, result: StepResult, now: datetime) -> StepResult:
        self.results.append(result)
        self.started_at = now
        return result

    def feed(self, item: Observation, now: datetime) -> StepResult | None:
        """One observation; the step it completed or failed, if any."""
        step = self.current
        if step is None or self.started_at is None:
            return None
        after = (now - self.started_at).total_seconds()
        latency = max((now - item.at).total_seconds() * 1000, 0.0) if hasattr(item, "at") \
            else None
        if _matches(step, item):
            return self._finish(StepResult(step, True, _describe(item), after, latency), now)
        if isinstance(item, DeviceFault) and step.kind != "reader_unplug" and \
                item.device == _device(step):
            return self._finish(StepResult(step, False, f"{item.device} fault: {item.reason}. "
                                           f"{step.hint}", after), now)
        if step.kind == "tap" and isinstance(item, TagRead) and item.source == "rfid" \
                and step.tag is not None:
            return self._finish(StepResult(step, False, "a different fob was read: use the "
                                           f"carer's own fob. {step.hint}", after), now)
        return None

    def tick(self, now: datetime) -> StepResult | None:
        """Fail the current step if its time is up."""
        step = self.current
        if step is None or self.started_at is None:
            return None
        waited = (now - self.started_at).total_seconds()
        if waited < self.timeout_s:
            return None
        return self._finish(StepResult(step, False, f"nothing within {self.timeout_s:g} s. "
                                       f"{step.hint}", waited), now)


def _device(step: Step) -> str:
    if step.kind in ("tap", "reader_unplug", "reader_replug"):
        return "rfid"
    if step.kind == "nfc":
        return "nfc"
    return "hub"


def _matches(step: Step, item: Observation) -> bool:
    if step.kind == "tap":
        return isinstance(item, TagRead) and item.source == "rfid" and (
            step.tag is None or item.tag == step.tag)
    if step.kind == "nfc":
        return isinstance(item, TagRead) and item.source == "nfc"
    if step.kind in ("door_open", "door_close", "keysafe_open", "keysafe_close"):
        kind, _, state = step.kind.partition("_")
        return (isinstance(item, ContactChange) and item.kind == kind
                and item.open == (state == "open")
                and (step.sensor is None or item.sensor == step.sensor))
    if step.kind == "no_reply":
        return isinstance(item, ButtonPress) and item.name == "no_reply"
    if step.kind == "reader_unplug":
        return isinstance(item, DeviceFault) and item.device == "rfid"
    if step.kind == "reader_replug":
        return isinstance(item, DeviceRecovered) and item.device == "rfid"
    return False


def _describe(item: Observation) -> str:
    if isinstance(item, TagRead):
        return f"{item.source} tag read"
    if isinstance(item, ContactChange):
        return f"{item.kind} {item.sensor} {'open' if item.open else 'closed'}"
    if isinstance(item, ButtonPress):
        return f"button {item.name}"
    if isinstance(item, DeviceFault):
        return f"{item.device} gone: {item.reason}"
    if isinstance(item, DeviceRecovered):
        return f"{item.device} back"
    return type(item).__name__


def standard_steps(tags: Iterable[tuple[str, str | None]], doors: Iterable[str], *,
                   keysafe: bool = True, no_reply: bool = True, nfc: bool = False,
                   reader_replug: bool = True) -> list[Step]:
    """The usual walk-test: ``tags`` are (carer id, tag) pairs (the tag is matched, the
    carer id is shown; a None tag accepts any fob), ``doors`` the door sensor names."""
    steps: list[Step] = []
    for carer, tag in tags:
        steps.append(Step(f"tap-{carer}", "tap", f"Tap carer {carer}'s fob on the reader",
                          "Is the reader powered (5 V) and its TX wired to the Pi's RX through "
                          "the divider? Is the serial console off? Hold the fob flat and still.",
                          tag=tag))
    for door in doors:
        steps.append(Step(f"door-{door}-open", "door_open", f"Open the {door} door",
                          "Check the door contact's wiring to the hub and the magnet's gap.",
                          sensor=door))
        steps.append(Step(f"door-{door}-close", "door_close", f"Close the {door} door",
                          "Check the door contact's wiring to the hub and the magnet's gap.",
                          sensor=door))
    if keysafe:
        steps.append(Step("keysafe-open", "keysafe_open", "Open the key safe",
                          "Check the key-safe contact and its cable to the hub."))
        steps.append(Step("keysafe-close", "keysafe_close", "Close the key safe",
                          "Check the key-safe contact and its cable to the hub."))
    if no_reply:
        steps.append(Step("no-reply", "no_reply", "Press the no-reply button",
                          "Check the button's cable to the hub."))
    if nfc:
        steps.append(Step("nfc", "nfc", "Present an NFC card or phone to the NFC reader",
                          "Is the PN532 on its USB adapter and set to HSU (UART) mode?"))
    if reader_replug:
        steps.append(Step("reader-unplug", "reader_unplug", "Unplug the 125 kHz reader",
                          "The gateway did not notice the reader go: check its serial path."))
        steps.append(Step("reader-replug", "reader_replug", "Plug the 125 kHz reader back in",
                          "The reader did not come back: check its cable, power and the "
                          "serial path (e.g. /dev/homecall-rfid)."))
    return steps
