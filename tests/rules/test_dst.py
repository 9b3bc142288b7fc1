"""Plans are in local wall time: the two Europe/London change days of 2026.

Decisions under test: a local time that does not exist (01:30 on 29 March) is shifted
forward by the gap (read as 02:30 BST = 01:30Z); a local time that exists twice (01:30 on
25 October) is its first occurrence (01:30 BST = 00:30Z). Durations are real minutes."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.rules import local_to_utc
from homecall.observations import TagRead
from tests.rules.helpers import TAGS, Household, make_plan, visit, z

SPRING = "2026-03-29"
AUTUMN = "2026-10-25"


def test_local_to_utc_on_change_days() -> None:
    cases = [
        ((2026, 3, 29, 0, 59), (2026, 3, 29, 0, 59)),  # GMT, before the change
        ((2026, 3, 29, 1, 30), (2026, 3, 29, 1, 30)),  # does not exist: read as 02:30 BST
        ((2026, 3, 29, 2, 0), (2026, 3, 29, 1, 0)),  # BST
        ((2026, 10, 25, 1, 30), (2026, 10, 25, 0, 30)),  # twice: the first (BST)
        ((2026, 10, 25, 2, 0), (2026, 10, 25, 2, 0)),  # GMT again
    ]
    for local, expected in cases:
        assert local_to_utc(datetime(*local), "Europe/London") == datetime(*expected, tzinfo=UTC)


def test_spring_day_visit_late_at_the_bst_window_end() -> None:
    h = Household(make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"), day=SPRING)]),
                  day=SPRING)
    h.feed(None, z("2026-03-29T00:00:00"))
    assert h.deadline == z("2026-03-29T10:00:00")  # 11:00 BST
    out = h.feed(None, z("2026-03-29T12:00:00"))
    assert [(o.type.value, o.time) for o in out] == [
        ("visit_late", z("2026-03-29T10:00:00")), ("visit_missed", z("2026-03-29T11:00:00"))]


def test_spring_visit_at_a_time_that_does_not_exist() -> None:
    """01:30 does not exist on 29 March: the visit is at 02:30 BST, window 02:00-03:00 BST."""
    h = Household(make_plan([visit("v-1", "01:30", 30, day=SPRING)]), day=SPRING)
    arrival = h.feed(TagRead(TAGS["c-1"], z("2026-03-29T01:45:00")), z("2026-03-29T01:45:00"))
    assert arrival[0].data["planned_start"] == "2026-03-29T01:30:00Z"
    assert arrival[0].data["window_start"] == "2026-03-29T01:00:00Z"
    assert arrival[0].data["window_end"] == "2026-03-29T02:00:00Z"
    assert arrival[0].data["punctuality"] == "on_time"


def test_spring_window_across_the_gap_is_shorter_in_real_time() -> None:
    """00:30-02:30 local on 29 March is 1 h of real time: 00:30Z-01:30Z."""
    h = Household(make_plan([visit("v-1", "00:45", 30, window=("00:30", "02:30"), day=SPRING)]),
                  day=SPRING)
    h.feed(None, z("2026-03-29T00:00:00"))
    assert h.deadline == z("2026-03-29T01:30:00")
    out = h.feed(TagRead(TAGS["c-1"], z("2026-03-29T01:40:00")), z("2026-03-29T01:40:00"))
    assert [o.type.value for o in out] == ["visit_late", "arrival"]
    assert out[1].data["minutes_outside_window"] == 10


def test_autumn_visit_at_a_time_that_exists_twice_is_the_first() -> None:
    h = Household(make_plan([visit("v-1", "01:30", 30, day=AUTUMN)]), day=AUTUMN)
    h.feed(None, z("2026-10-24T23:00:00"))
    assert h.deadline == z("2026-10-25T01:00:00")  # window 01:00-02:00 BST → late at 01:00Z
    # the second 01:30 (GMT) is 01:30Z: 30 real minutes after the window closed
    out = h.feed(TagRead(TAGS["c-1"], z("2026-10-25T01:30:00")), z("2026-10-25T01:30:00"))
    assert [o.type.value for o in out] == ["visit_late", "arrival"]
    assert (out[1].data["punctuality"], out[1].data["minutes_outside_window"]) == ("late", 30)


def test_autumn_window_across_the_repeat_is_longer_in_real_time() -> None:
    """01:00-02:00 local on 25 October is 2 h of real time: 00:00Z-02:00Z."""
    h = Household(make_plan([visit("v-1", "01:15", 30, window=("01:00", "02:00"), day=AUTUMN)]),
                  day=AUTUMN)
    out = h.feed(TagRead(TAGS["c-1"], z("2026-10-25T01:45:00")), z("2026-10-25T01:45:00"))
    assert out[0].data["punctuality"] == "on_time"
    assert out[0].data["window_start"] == "2026-10-25T00:00:00Z"
    assert out[0].data["window_end"] == "2026-10-25T02:00:00Z"


def test_autumn_day_visit_late_at_the_gmt_window_end() -> None:
    h = Household(make_plan([visit("v-1", "08:00", 30, window=("07:00", "11:00"), day=AUTUMN)]),
                  day=AUTUMN)
    h.feed(None, z("2026-10-25T00:00:00"))
    assert h.deadline == z("2026-10-25T11:00:00")


def test_departure_missing_across_the_autumn_change_uses_real_minutes() -> None:
    """A 60-min visit at 00:30 BST: planned end 01:30 BST (00:30Z), chased 60 min later."""
    h = Household(make_plan([visit("v-1", "00:30", 60, day=AUTUMN)]), day=AUTUMN)
    h.feed(TagRead(TAGS["c-1"], z("2026-10-24T23:30:00")), z("2026-10-24T23:30:00"))
    assert h.deadline == z("2026-10-25T01:30:00")
