"""Device observations as the events they are recorded as (door, key safe, button, tamper,
battery, device fault and recovery). The rules engine decides what a tap, a contact change
or a button press *means*; this module only says what happened.
"""

from __future__ import annotations

from gateway.delivery.journal import NewEvent
from homecall.observations import (
    BatteryReading,
    ButtonPress,
    ContactChange,
    DeviceFault,
    DeviceRecovered,
    Observation,
    TamperChange,
)
from homecall.wire import ALERT_SEVERITY, EventType


def telemetry_events(item: Observation, mono: float) -> list[NewEvent]:
    """The telemetry event for ``item`` (none for a tag read: the engine records taps)."""
    if isinstance(item, ContactChange):
        kind = EventType.DOOR if item.kind == "door" else EventType.KEYSAFE
        state = "open" if item.open else "closed"
        return [NewEvent(kind, item.at, mono, data={"sensor": item.sensor, "state": state})]
    if isinstance(item, ButtonPress):
        return [NewEvent(EventType.BUTTON, item.at, mono, data={"name": item.name})]
    if isinstance(item, TamperChange):
        return [NewEvent(EventType.TAMPER, item.at, mono, data={"active": item.active})]
    if isinstance(item, BatteryReading):
        return [NewEvent(EventType.BATTERY, item.at, mono, data={"mv": item.millivolts})]
    if isinstance(item, DeviceFault):
        return [NewEvent(EventType.DEVICE_FAULT, item.at, mono,
                         severity=ALERT_SEVERITY[EventType.DEVICE_FAULT],
                         data={"device": item.device, "reason": item.reason})]
    if isinstance(item, DeviceRecovered):
        return [NewEvent(EventType.DEVICE_RECOVERED, item.at, mono,
                         data={"device": item.device})]
    return []
