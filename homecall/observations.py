"""What the home's devices observed, as small frozen values.

Drivers (``gateway.drivers``) produce these from bytes; the rules engine (``gateway.rules``)
consumes the ones that matter to visits; the daemon journals the rest as telemetry. They
live here, outside both, so central can feed the same engine without importing any driver.
``at`` is the clock's UTC time when the frame was received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

DeviceName = Literal["rfid", "hub", "nfc"]


@dataclass(frozen=True, slots=True)
class TagRead:
    """A carer tag presented to a reader (one per tap; held-tag repeats already collapsed)."""

    tag: str  # canonical, e.g. "em4100:0F00A1B2C3" or "nfc:04A224B1C2D380"
    at: datetime
    source: DeviceName = "rfid"
    carer_token: str | None = None  # carer id proven by a verified signed NDEF token


@dataclass(frozen=True, slots=True)
class ContactChange:
    """A door contact or the key-safe reed switch changed state."""

    kind: Literal["door", "keysafe"]
    sensor: str
    open: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A button on the reader/hub, e.g. ``no_reply`` (carer cannot get in)."""

    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TamperChange:
    active: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class BatteryReading:
    millivolts: int
    at: datetime


@dataclass(frozen=True, slots=True)
class DeviceFault:
    """A device is unplugged, silent past its heartbeat, tampered or low on battery."""

    device: DeviceName
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeviceRecovered:
    device: DeviceName
    at: datetime


Observation = (
    TagRead
    | ContactChange
    | ButtonPress
    | TamperChange
    | BatteryReading
    | DeviceFault
    | DeviceRecovered
)
