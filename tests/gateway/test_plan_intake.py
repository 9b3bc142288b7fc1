"""Plans the gateway cannot run are refused before they reach the engine, with the reason in a
``plan_rejected`` event, and the gateway keeps reporting the version actually in force. The
check is the one central runs before signing (``homecall.plan.check_plan_applicable``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.core_loop import Heartbeat
from gateway.plan_intake import parse_plan
from homecall.plan import (
    MAX_PLAN_VISITS,
    PlanDocument,
    PlanError,
    Visit,
    check_plan_document,
)
from homecall.wire import Channel, StatusMessage, topic
from orchestration.broker import MosquittoBroker
from tests.conftest import wait_for
from tests.gateway.home import GW, START, Home, plan_document, running_home

NOW = START


def gateway_plan_bytes(document: PlanDocument, version: int = 5) -> bytes:
    return document.for_gateway(version=version, tag_salt="central-salt-1").to_bytes()


def bad_plans() -> dict[str, tuple[bytes, str]]:
    good = plan_document(NOW)
    far = Visit(id="v-far", service_user="su-1", start=datetime(9999, 1, 1, 8, 0),
                duration_min=30)
    many = tuple(Visit(id=f"v-{i}", service_user="su-1",
                       start=NOW.replace(tzinfo=None) + timedelta(minutes=i), duration_min=30)
                 for i in range(MAX_PLAN_VISITS + 1))
    body = json.loads(gateway_plan_bytes(good))
    body["service_user_policy"] = {"su-1": {"lateness_tolerance_minutes": 5}}
    huge = json.loads(gateway_plan_bytes(good))
    huge["carers"][0]["id"] = "c-1"
    huge["service_users"] = ["su-1", *(f"su-{i:07d}" for i in range(100_000))]
    return {
        "timezone": (gateway_plan_bytes(good.model_copy(update={"timezone": "Mars/Olympus_Mons"})),
                     "unknown timezone 'Mars/Olympus_Mons'"),
        "policy": (json.dumps(body).encode(), "unknown policy values: lateness_tolerance_minutes"),
        "horizon": (gateway_plan_bytes(good.model_copy(update={"visits": (far,)})),
                    "starts 9999-01-01, more than 400 days from now"),
        "visits": (gateway_plan_bytes(good.model_copy(update={"visits": many})),
                   f"at most {MAX_PLAN_VISITS} are accepted"),
        "bytes": (json.dumps(huge).encode(), "at most 1000000 are accepted"),
    }


@pytest.mark.parametrize("case", sorted(bad_plans()))
def test_a_plan_the_gateway_cannot_run_is_refused_with_the_reason(case: str) -> None:
    payload, reason = bad_plans()[case]
    with pytest.raises(PlanError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_plan(payload, GW, NOW)


def test_central_runs_the_same_check_on_the_document() -> None:
    document = plan_document(NOW).model_copy(update={"timezone": "Mars/Olympus_Mons"})
    with pytest.raises(PlanError, match="unknown timezone"):
        check_plan_document(document, NOW)
    check_plan_document(plan_document(NOW), NOW)  # a good one passes


@pytest.fixture
def home(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Home]:
    with running_home(tmp_path, broker) as running:
        yield running


def test_refused_plan_is_reported_and_the_version_in_force_is_what_the_heartbeat_says(
    home: Home,
) -> None:
    statuses: list[StatusMessage] = []
    home.central.on_message = lambda _c, _u, m: statuses.append(StatusMessage.from_bytes(m.payload))
    home.central.subscribe(topic(GW, Channel.STATUS), qos=1)
    payload, reason = bad_plans()["timezone"]
    home.plan_from_central(payload)
    wait_for(lambda: "plan_rejected" in home.types(), message="plan_rejected")
    rejected = next(e for e in home.events() if e["type"] == "plan_rejected")["data"]
    assert reason in rejected["reason"]
    assert (rejected["source"], rejected["in_force"]) == ("central", 1)
    home.daemon.post(Heartbeat())
    wait_for(lambda: any(s.state == "online" for s in statuses), message="a heartbeat")
    assert [s.plan_version for s in statuses if s.state == "online"][-1] == 1
    # The same retained plan again (a reconnect) is not reported twice.
    home.plan_from_central(payload)
    home.daemon.post(Heartbeat())
    wait_for(lambda: len([s for s in statuses if s.state == "online"]) >= 2, message="heartbeat")
    assert home.types().count("plan_rejected") == 1


@pytest.mark.parametrize("plan_text", ["{not json", ""])
def test_a_bad_plan_file_is_one_clear_line_and_the_gateway_starts_without_it(
    tmp_path: Path, broker: MosquittoBroker, plan_text: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    with running_home(tmp_path, broker, plan_text=plan_text) as home:
        wait_for(lambda: "gateway_started" in home.types(), message="the gateway started")
        assert home.daemon.plan_version is None
        rejected = next(e for e in home.events() if e["type"] == "plan_rejected")["data"]
        assert rejected["source"] == "file" and rejected["reason"].startswith("bad plan")
    errors = [r.getMessage() for r in caplog.records if "plan" in r.getMessage()]
    assert len(errors) == 1 and "\n" not in errors[0], errors


def test_a_missing_plan_file_is_one_clear_line(
    tmp_path: Path, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    with running_home(tmp_path, broker, write_plan=False) as home:
        wait_for(lambda: "gateway_started" in home.types(), message="the gateway started")
        assert home.daemon.plan_version is None
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and "not used: No such file or directory" in errors[0], errors
