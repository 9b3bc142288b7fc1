"""Central refuses, before signing, a plan the gateway could not run or the broker could not
carry: the gateway's own applicability check (``homecall.plan.check_plan_document``) and the
signed plan's size against ``MAX_PLAN_MESSAGE_BYTES``; each refusal is a 422 with the reason
and stores no new plan version."""

from __future__ import annotations

from typing import Any

import pytest

from homecall.plan import MAX_PLAN_VISITS, Policy
from homecall.wire import MAX_PLAN_MESSAGE_BYTES
from tests.central.conftest import World


def _plan(world: World, visits: list[dict[str, Any]] | None = None,
          **changes: Any) -> dict[str, Any]:
    a = world.a
    plan: dict[str, Any] = {
        "gateway": a.gateway, "service_users": [a.service_user], "carers": [{"id": a.carer}],
        "visits": visits if visits is not None else [
            {"id": "v-new", "service_user": a.service_user, "start": "2026-03-03T09:00",
             "duration_min": 30, "carers": [a.carer]}],
    }
    plan.update(changes)
    return plan


def _visits(world: World, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"v-{i:05d}", "service_user": world.a.service_user,
             "start": f"2026-03-{3 + i % 20:02d}T{8 + i % 10:02d}:00", "duration_min": 30,
             **extra} for i in range(count)]


def _upload(world: World, plan: dict[str, Any]) -> tuple[int, str]:
    response = world.client.post("/api/plans", headers=world.headers["coordinator"], json=plan)
    return response.status_code, str(response.json().get("detail", ""))


@pytest.mark.parametrize(("change", "reason"), [
    ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone 'Mars/Olympus_Mons'"),
    ({"policy": {"no_such_threshold": 5}}, "no_such_threshold"),
    ({"service_user_policy": {"su-a": {"debounce_s": 10**9}}},
     "policy for su-a: bad policy override"),
])
def test_a_plan_the_gateway_cannot_run_is_refused_with_the_reason(
    world: World, change: dict[str, Any], reason: str
) -> None:
    status, detail = _upload(world, _plan(world, **change))
    assert status == 422, detail
    assert reason in detail
    assert world.app.state.store.current_plan(world.a.gateway)[1].version == 1


def test_visits_beyond_the_horizon_or_too_many_are_refused(world: World) -> None:
    far = _visits(world, 1)
    far[0]["start"] = "9999-03-03T09:00"
    status, detail = _upload(world, _plan(world, far))
    assert status == 422 and "more than 400 days from now" in detail
    status, detail = _upload(world, _plan(world, _visits(world, MAX_PLAN_VISITS + 1)))
    assert status == 422
    assert f"{MAX_PLAN_VISITS + 1} visits; at most {MAX_PLAN_VISITS}" in detail
    assert world.app.state.store.current_plan(world.a.gateway)[1].version == 1
    # the same upload within the bounds is accepted
    assert _upload(world, _plan(world, _visits(world, 10)))[0] == 201


def test_a_plan_whose_signed_message_would_exceed_the_broker_limit_is_refused(
    world: World,
) -> None:
    # 2,000 visits (allowed), each overriding every threshold: well over 1 MiB signed.
    overrides = Policy().model_dump()
    status, detail = _upload(world, _plan(world, _visits(world, MAX_PLAN_VISITS,
                                                         policy=overrides)))
    assert status == 422, detail
    assert f"at most {MAX_PLAN_MESSAGE_BYTES} fit the broker's message limit" in detail
    assert world.app.state.store.current_plan(world.a.gateway)[1].version == 1
