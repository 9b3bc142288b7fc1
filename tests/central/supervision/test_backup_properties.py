"""Hypothesis: for random plans and random days in the home, central's backup (fed only the
gateway's arrivals, departures and non-time-based alerts, as central receives them) raises
exactly the time-based alerts the gateway's engine raises, at the same times — and the same
again when those facts reach central in any order."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.supervision.backup import (
    BACKUP_TYPES,
    BackupHousehold,
    GatewayCondition,
    ObservedEvent,
    PlanChange,
)
from gateway.rules import EngineInput, PlanUpdate, RuleOutput, initial_state, step
from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.plan import GatewayPlan
from tests.rules.helpers import TAGS
from tests.rules.test_properties import BASE, plans

END = (BASE + timedelta(days=4)).replace(tzinfo=UTC)
FOLDED = {"arrival", "departure", "call_outside_tolerance", "no_access", "short_visit"}


@st.composite
def days(draw: st.DrawFn) -> tuple[GatewayPlan, list[tuple[datetime, EngineInput]]]:
    plan = draw(plans())
    other = draw(plans(version=2))
    offsets = sorted(draw(st.lists(st.integers(0, 2 * 24 * 3600), max_size=30)))
    events: list[tuple[datetime, EngineInput]] = []
    for offset in offsets:
        now = (BASE + timedelta(seconds=offset)).replace(tzinfo=UTC)
        kind = draw(st.sampled_from(["tap", "tap", "tap", "tap", "door", "button", "plan"]))
        item: EngineInput
        if kind == "tap":
            item = TagRead(tag=draw(st.sampled_from(list(TAGS.values()))), at=now)
        elif kind == "door":
            item = ContactChange("door", "front", draw(st.booleans()), now)
        elif kind == "button":
            item = ButtonPress("no_reply", now)
        else:
            item = PlanUpdate(draw(st.sampled_from([plan, other])))
        events.append((now, item))
    return plan, events


def gateway_day(plan: GatewayPlan, events: list[tuple[datetime, EngineInput]]
                ) -> list[RuleOutput]:
    state = initial_state(plan)
    outputs: list[RuleOutput] = []
    for now, item in [*events, (END, None)]:
        state, out, _ = step(state, item, now)
        outputs += out
    return outputs


def central_facts(events: list[tuple[datetime, EngineInput]], outputs: list[RuleOutput]
                  ) -> list[ObservedEvent | PlanChange]:
    facts: list[ObservedEvent | PlanChange] = [
        PlanChange(item.plan, now) for now, item in events if isinstance(item, PlanUpdate)]
    facts += [
        ObservedEvent(type=o.type.value, time=o.time, received_at=o.time, visit_id=o.visit_id,
                      service_user_id=o.service_user_id, carer_id=o.carer_id, data=o.data)
        for o in outputs if o.type.value in FOLDED
    ]
    return facts


def backup_day(plan: GatewayPlan, facts: list[ObservedEvent | PlanChange]
               ) -> list[tuple[str, str, str | None, datetime]]:
    backup = BackupHousehold("gw-test-1", plan)
    backup.observe(GatewayCondition(at=BASE.replace(tzinfo=UTC), needs_backup=True))
    for fact in facts:
        backup.observe(fact)
    raised = []
    while (deadline := backup.next_deadline()) is not None and deadline <= END:
        raised += backup.due(deadline)
    raised += backup.due(END)
    return sorted((r.type, r.visit_id, r.carer_id if r.type == "departure_missing" else None,
                   r.time) for r in raised)


SETTINGS = settings(max_examples=int(os.environ.get("RULES_EXAMPLES", "100")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(days(), st.randoms(use_true_random=False))
def test_backup_raises_what_the_gateway_engine_raises(
    day: tuple[GatewayPlan, list[tuple[datetime, EngineInput]]], rnd: random.Random,
) -> None:
    plan, events = day
    outputs = gateway_day(plan, events)
    expected = sorted(
        (o.type.value, str(o.visit_id), o.carer_id if o.type.value == "departure_missing"
         else None, o.time)
        for o in outputs if o.type.value in BACKUP_TYPES)
    facts = central_facts(events, outputs)
    in_time_order = sorted(facts, key=lambda f: f.time if isinstance(f, ObservedEvent)
                           else f.at)
    assert backup_day(plan, in_time_order) == expected
    shuffled = facts[:]
    rnd.shuffle(shuffled)
    assert backup_day(plan, shuffled) == expected
