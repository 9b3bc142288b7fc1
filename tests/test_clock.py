"""The scaled clock the demo and the process stack share: fast until ``real_after``, real
speed from then on, and the same timeline rebuilt from its spec in another process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from homecall.clock import ClockError, ScaledClock, clock_from_spec

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def test_fast_until_real_after_then_real_speed() -> None:
    # anchored 100 real seconds ago at 600x, slowing after one simulated hour (6 real s):
    # 3600 s fast, then 94 s at real speed
    clock = ScaledClock(START, 600, anchor=time.time() - 100,
                        real_after=START + timedelta(hours=1))
    expected = START + timedelta(seconds=3600 + 94)
    assert abs((clock.now() - expected).total_seconds()) < 2
    assert abs(clock.real_seconds_until(expected + timedelta(seconds=30)) - 30) < 2
    # before the switch it is still 600x
    fresh = ScaledClock(START, 600, anchor=time.time(), real_after=START + timedelta(hours=1))
    assert abs(fresh.real_seconds_until(START + timedelta(minutes=30)) - 3) < 0.5


def test_spec_round_trip_keeps_real_after() -> None:
    clock = ScaledClock(START, 600, anchor=time.time() - 100,
                        real_after=START + timedelta(hours=1))
    copy = clock_from_spec(clock.spec())
    assert isinstance(copy, ScaledClock) and copy.real_after == clock.real_after
    assert abs((copy.now() - clock.now()).total_seconds()) < 2
    plain = clock_from_spec(ScaledClock(START, 600, anchor=1.0).spec())
    assert isinstance(plain, ScaledClock) and plain.real_after is None


def test_an_unknown_clock_option_is_named() -> None:
    with pytest.raises(ClockError, match="unknown clock option 'later=1'"):
        clock_from_spec(ScaledClock(START, 600, anchor=1.0).spec() + "|later=1")
