"""A flood of distinct tags (a faulty reader, someone waving a bag of fobs) must not make the
engine slower with every tap, nor stop it debouncing the carers who are really there."""

from __future__ import annotations

from gateway.rules.transitions import DEBOUNCE_MAX_TAGS
from tests.rules.helpers import Household, make_plan, visit


def test_flood_of_distinct_tags_keeps_debounce_memory_bounded() -> None:
    h = Household(make_plan([visit("v-1", "08:00")]))
    for i in range(DEBOUNCE_MAX_TAGS * 5):
        h.tap("07:55:00", tag=f"em4100:{i + 1:010X}")
    assert len(h.state.tag_seen) <= DEBOUNCE_MAX_TAGS
    assert len(h.of_type("unknown_tag")) == DEBOUNCE_MAX_TAGS * 5  # every distinct tag reported


def test_carer_still_debounced_among_a_few_strangers() -> None:
    h = Household(make_plan([visit("v-1", "08:00")]))
    h.tap("07:55:00")  # the carer arrives
    for i in range(DEBOUNCE_MAX_TAGS // 2):
        h.tap("07:55:05", tag=f"em4100:{i + 1:010X}")
    h.tap("07:55:10")  # the carer's fob read again within 30 s: the same tap
    assert h.types().count("arrival") == 1
    assert "departure" not in h.types()
