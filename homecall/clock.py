"""The clock every HomeCall component reads time through.

Nothing in the gateway, central or the simulator calls ``datetime.now`` or ``time.time``
directly for domain time: they are handed a :class:`Clock`. Three kinds exist:

* :class:`SystemClock` — real time, for production.
* :class:`ScaledClock` — a simulated timeline that starts at ``start`` when the wall clock
  reads ``anchor`` and runs ``speed`` times faster. Separate processes given the same
  ``(start, speed, anchor)`` share one accelerated timeline, which is how a scenario day is
  played in under a minute by real, separate processes.
* :class:`ManualClock` — moved only by the test that owns it, for deterministic tests.

A clock can be written as a one-line spec (``system`` or
``scaled:START_ISO:SPEED:ANCHOR_EPOCH``) so it can be passed on a command line or in the
``HOMECALL_CLOCK`` environment variable. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from homecall import HomeCallError


class ClockError(HomeCallError, ValueError):
    """A clock spec or value that cannot be understood."""


class Clock(Protocol):
    """Source of domain time."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic timeline (scaled like ``now``); never goes back."""
        ...

    def real_seconds_until(self, when: datetime) -> float:
        """Wall-clock seconds until this clock reads ``when`` (<= 0 if already past)."""
        ...

    def spec(self) -> str:
        """A spec string that recreates this timeline in another process."""
        ...


def parse_utc(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC. Returns aware UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise ClockError(f"not an ISO 8601 time: {value!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    if value.tzinfo is None:
        raise ClockError("refusing to format a naive datetime as UTC")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def real_seconds_until(self, when: datetime) -> float:
        return (when - self.now()).total_seconds()

    def spec(self) -> str:
        return "system"


class ScaledClock:
    """A simulated timeline: ``start`` at wall time ``anchor``, running ``speed`` x real time.

    With ``real_after``, the timeline runs at ``speed`` only until it reaches that instant and
    at real speed from then on (the demo: a scenario plays fast, then staff work its alerts
    in real time, so an acknowledgement a few minutes later is stamped minutes later)."""

    def __init__(self, start: datetime, speed: float, anchor: float | None = None,
                 real_after: datetime | None = None) -> None:
        if start.tzinfo is None:
            raise ClockError("ScaledClock start must be timezone-aware")
        if speed <= 0:
            raise ClockError(f"clock speed must be positive, got {speed}")
        self.start = start.astimezone(UTC)
        self.speed = float(speed)
        self.anchor = time.time() if anchor is None else float(anchor)
        self.real_after = real_after.astimezone(UTC) if real_after is not None else None
        #: Real seconds after the anchor at which the timeline slows to real speed.
        self._switch = (math.inf if self.real_after is None else
                        max((self.real_after - self.start).total_seconds(), 0.0) / self.speed)

    def _simulated(self, real: float) -> float:
        """Simulated seconds since ``start`` after ``real`` seconds since the anchor."""
        if real <= self._switch:
            return real * self.speed
        return self._switch * self.speed + (real - self._switch)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._simulated(time.time() - self.anchor))

    def monotonic(self) -> float:
        return self._simulated(time.time() - self.anchor)

    def real_seconds_until(self, when: datetime) -> float:
        target = (when - self.start).total_seconds()
        fast = self._switch * self.speed
        real_at = target / self.speed if target <= fast else self._switch + (target - fast)
        return real_at - (time.time() - self.anchor)

    def spec(self) -> str:
        spec = f"scaled:{format_utc(self.start)}:{self.speed:g}:{self.anchor:.6f}"
        if self.real_after is not None:
            spec += f"|real-after={format_utc(self.real_after)}"
        return spec


class ManualClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ClockError("ManualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ClockError("a clock cannot go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            delta = (when - self._now).total_seconds()
            if delta < 0:
                raise ClockError("a clock cannot go backwards")
            self._now = when.astimezone(UTC)
            self._mono += delta

    def real_seconds_until(self, when: datetime) -> float:
        # A manual clock does not move by itself: a deadline in the future is "forever",
        # so report it as a long wait; the owner advances the clock and ticks explicitly.
        remaining = (when - self.now()).total_seconds()
        return remaining if remaining <= 0 else 3600.0

    def spec(self) -> str:
        raise ClockError("a ManualClock cannot be shared with another process")


def clock_from_spec(spec: str | None) -> Clock:
    """Build a clock from ``system`` or ``scaled:START:SPEED[:ANCHOR][|real-after=WHEN]``."""
    if spec is None or spec in ("", "system"):
        return SystemClock()
    if spec.startswith("scaled:"):
        body, _, tail = spec[len("scaled:") :].partition("|")
        real_after = None
        if tail:
            key, _, value = tail.partition("=")
            if key != "real-after" or not value:
                raise ClockError(f"unknown clock option {tail!r} in {spec!r}")
            real_after = parse_utc(value)
        # START is ISO and contains ':' itself, so split from the right.
        parts = body.rsplit(":", 2)
        if len(parts) == 3 and _is_number(parts[1]) and _is_number(parts[2]):
            start_text, speed_text, anchor_text = parts
            anchor: float | None = float(anchor_text)
        else:
            start_text, speed_text = body.rsplit(":", 1)
            anchor = None
        if not _is_number(speed_text):
            raise ClockError(f"clock speed is not a number in {spec!r}")
        return ScaledClock(parse_utc(start_text), float(speed_text), anchor, real_after)
    raise ClockError(f"unknown clock spec {spec!r}: use 'system' or 'scaled:START:SPEED:ANCHOR'")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
