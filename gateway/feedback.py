"""What the carer sees and hears at the door: one light + sound pattern per outcome.

This module owns the outcome → pattern table (the only place it is written down; the carer
card in ``docs/carer-card.md`` describes the same table in words) and the choice of outcome
for a tap from the rules engine's outputs. The sensor hub's LED and buzzer play the pattern
(:meth:`gateway.drivers.sensor_hub.SensorHubDriver.feedback`). Every outcome differs from
every other in its light or its sound, and the ones a carer could confuse (arrival and
departure; unknown tag and fault) differ in both.

| outcome | light | sound |
| --- | --- | --- |
| arrival | green, steady, 1.5 s | one short beep |
| departure | green, blinking, 1.5 s | two short beeps |
| repeat (same fob again within the debounce) | green, steady, 0.5 s | none |
| unplanned (recorded, no visit planned now) | amber, steady, 2 s | none |
| no-reply recorded (button) | amber, blinking, 2 s | three short beeps |
| unknown tag | red, steady, 2 s | one long buzz |
| fault (not recorded, or a reader is broken) | red, blinking, 3 s | three long buzzes |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from gateway.protocols.hub import Buzz, HubCommand, Led
from gateway.rules.outputs import RuleOutput
from homecall.wire import EventType

Outcome = Literal["arrival", "departure", "repeat", "unplanned", "no_reply", "unknown", "fault"]

OUTCOMES: tuple[Outcome, ...] = (
    "arrival", "departure", "repeat", "unplanned", "no_reply", "unknown", "fault",
)

_SHORT_BEEP_MS = 100
_LONG_BUZZ_MS = 800
_FAULT_BUZZ_MS = 400

#: The pattern for each outcome, as hub commands (sent in this order).
PATTERNS: dict[Outcome, tuple[HubCommand, ...]] = {
    "arrival": (Led("GREEN", "SOLID", 1500), Buzz(_SHORT_BEEP_MS, 1)),
    "departure": (Led("GREEN", "BLINK", 1500), Buzz(_SHORT_BEEP_MS, 2)),
    "repeat": (Led("GREEN", "SOLID", 500),),
    "unplanned": (Led("AMBER", "SOLID", 2000),),
    "no_reply": (Led("AMBER", "BLINK", 2000), Buzz(_SHORT_BEEP_MS, 3)),
    "unknown": (Led("RED", "SOLID", 2000), Buzz(_LONG_BUZZ_MS, 1)),
    "fault": (Led("RED", "BLINK", 3000), Buzz(_FAULT_BUZZ_MS, 3)),
}

#: Older outcome names (the rules engine's ``feedback`` values) still accepted.
ALIASES: dict[str, Outcome] = {"accepted": "arrival", "rejected": "unknown"}

#: Devices whose fault the carer at the door must be told about (the readers they tap).
READER_DEVICES = frozenset({"rfid", "nfc"})


def pattern(outcome: str) -> tuple[HubCommand, ...]:
    """The hub commands for ``outcome`` (an :data:`Outcome` or an alias); ValueError if
    unknown."""
    name = ALIASES.get(outcome, outcome)
    try:
        return PATTERNS[name]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"unknown feedback outcome {outcome!r}; known: "
                         f"{', '.join(OUTCOMES)}") from None


def tap_outcome(outputs: Iterable[RuleOutput]) -> Outcome:
    """The outcome to show for one tap, from what the rules engine decided about it.

    A tap the engine answers with nothing is a repeat within the debounce (the same fob
    again, or still held): it is already recorded, and the carer is told so.
    """
    answered = [o for o in outputs if o.feedback]
    kinds = {o.feedback for o in answered}
    if "rejected" in kinds:
        return "unknown"
    if any(o.type is EventType.DEPARTURE for o in answered):
        return "departure"
    if any(o.type is EventType.ARRIVAL for o in answered):
        return "arrival"
    if "unplanned" in kinds:
        return "unplanned"
    if "accepted" in kinds:
        return "arrival"
    return "repeat"
