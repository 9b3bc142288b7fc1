"""The alert desk through the API alone, on each engine: the list most severe then oldest
first with filters and cursor paging, an alert's detail (audit trail, visit timeline),
acknowledge / resolve / reopen with 409 and the reason for an illegal move, and a missed
visit worked to an outcome with its incident record signed off by a manager. Staff log in
(the audit names the logged-in user) and see their own organisation's alerts only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.people.models import HouseholdIn, OrganisationIn
from central.people.repository import People
from central.settings import CentralSettings
from central.store import Store
from central.views import stream_start
from homecall.clock import ManualClock
from homecall.plan import PlanDocument
from homecall.wire import EventType, Severity
from tests.central.test_store import GW, T0, Chain, pairs
from tests.support.auth import bearer, create_user

#: Login headers by username, filled by the ``desk`` fixture: mona (monitor) and mary
#: (manager) of the organisation whose household has gateway GW; otto, a monitor elsewhere.
STAFF: dict[str, dict[str, str]] = {}
OTHER_GW = "gw-elsewhere"


@pytest.fixture
def desk(database_url: str) -> Iterator[tuple[TestClient, Store, ManualClock]]:
    clock = ManualClock(T0 + timedelta(hours=2))
    app = create_app(CentralSettings(database=database_url), clock=clock, with_ingest=False)
    with TestClient(app) as client:
        people = People(app.state.db, clock)
        for org_name, gateway, users in (("Care Org", GW, (("mona", "monitor"),
                                                            ("mary", "manager"))),
                                          ("Other Org", OTHER_GW, (("otto", "monitor"),))):
            org = people.create_organisation(OrganisationIn(name=org_name), "test")
            people.create_household(HouseholdIn(gateway_id=gateway, address="1 Road"),
                                    org.id, "test")
            for username, role in users:
                create_user(app, username, role, org.id)
                STAFF[username] = bearer(client, username)
        client.headers.update(STAFF["mona"])
        yield client, app.state.store, clock


def mona() -> dict[str, str]:
    return STAFF["mona"]


def seed(store: Store) -> Chain:
    document = PlanDocument.parse({
        "gateway": GW, "service_users": ["su-1"],
        "visits": [{"id": "v1", "service_user": "su-1", "start": "2026-03-02T08:00",
                    "duration_min": 30, "window": ["2026-03-02T07:30", "2026-03-02T08:05"]}],
    })
    store.save_plan(document, T0, "coordinator")
    chain = Chain()
    store.store_events(pairs(
        chain.next(EventType.UNKNOWN_TAG),                                      # medium, 08:01
        chain.next(EventType.KEYSAFE, data={"sensor": "k", "state": "open"}),   # 08:02
        chain.next(EventType.VISIT_MISSED, visit_id="v1", service_user_id="su-1",
                   severity=Severity.CRITICAL),                                 # 08:03
        chain.next(EventType.UNKNOWN_TAG),                                      # medium, 08:04
        chain.next(EventType.DOOR_LEFT_OPEN, severity=Severity.HIGH),           # high, 08:05
    ), T0)
    return chain


def test_the_list_is_most_severe_then_oldest_first_filtered_and_paged(desk: Any) -> None:
    client, store, _ = desk
    seed(store)
    listed = client.get("/api/alerts").json()
    assert [(a["type"], a["raised_at"][11:16]) for a in listed] == [
        ("visit_missed", "08:03"), ("door_left_open", "08:05"),
        ("unknown_tag", "08:01"), ("unknown_tag", "08:04")]
    first = client.get("/api/alerts", params={"limit": 3})
    cursor = first.headers["x-next-cursor"]
    rest = client.get("/api/alerts", params={"limit": 3, "cursor": cursor})
    assert "x-next-cursor" not in rest.headers
    assert [a["id"] for a in first.json() + rest.json()] == [a["id"] for a in listed]
    assert [a["type"] for a in client.get("/api/alerts", params={"severity": "medium"}).json()
            ] == ["unknown_tag", "unknown_tag"]
    assert client.get("/api/alerts", params={"type": "door_left_open"}).json()[0]["severity"] \
        == "high"
    assert client.get("/api/alerts", params={"gateway": "gw-none"}).json() == []
    bad = client.get("/api/alerts", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


def test_moves_are_checked_and_audited_and_illegal_ones_are_409_with_the_reason(
    desk: Any,
) -> None:
    client, store, _ = desk
    seed(store)
    tag = client.get("/api/alerts", params={"type": "unknown_tag"}).json()[0]["id"]
    early = client.post(f"/api/alerts/{tag}/resolve", headers=mona(),
                        json={"outcome": "false_alarm", "note": "visitor"})
    assert early.status_code == 409
    assert "acknowledge the alert before resolving" in early.json()["detail"]
    taken = client.post(f"/api/alerts/{tag}/acknowledge", headers=mona()).json()
    assert (taken["status"], taken["acknowledged_by"]) == ("acknowledged", "mona")
    unknown_code = client.post(f"/api/alerts/{tag}/resolve", headers=mona(),
                               json={"outcome": "nope", "note": "x"})
    assert unknown_code.status_code == 422 and "unknown outcome" in unknown_code.json()["detail"]
    done = client.post(f"/api/alerts/{tag}/resolve", headers=mona(),
                       json={"outcome": "false_alarm", "note": "visitor's fob"}).json()
    assert (done["status"], done["outcome"], done["resolved_by"]) == (
        "resolved", "false_alarm", "mona")
    assert [e["action"] for e in done["audit"]] == ["alert.acknowledged", "alert.resolved"]
    again = client.post(f"/api/alerts/{tag}/acknowledge", headers=mona())
    assert again.status_code == 409 and "already resolved" in again.json()["detail"]
    reopen = client.post(f"/api/alerts/{tag}/reopen", headers=mona(), json={"reason": "no"})
    assert reopen.status_code == 403 and "manager" in reopen.json()["detail"]
    assert client.post("/api/alerts/999999/acknowledge").status_code == 404


def test_the_old_status_update_still_works_through_the_lifecycle(desk: Any) -> None:
    client, store, _ = desk
    seed(store)
    tag = client.get("/api/alerts", params={"type": "unknown_tag"}).json()[0]["id"]
    reply = client.post(f"/api/alerts/{tag}", json={"status": "resolved", "outcome": "ok"})
    assert reply.json() == {"id": tag, "status": "resolved"}
    detail = client.get(f"/api/alerts/{tag}").json()
    assert (detail["status"], detail["outcome"], detail["outcome_note"]) == (
        "resolved", "other", "ok")


def test_a_missed_visit_is_worked_to_an_outcome_with_a_signed_incident_record(
    desk: Any,
) -> None:
    client, store, clock = desk
    chain = seed(store)
    store.store_events(pairs(chain.next(EventType.DOOR, data={"sensor": "d",
                                                              "state": "open"})), T0)
    missed = client.get("/api/alerts", params={"type": "visit_missed"}).json()[0]["id"]
    detail = client.get(f"/api/alerts/{missed}").json()
    assert detail["visit_detail"]["window_utc"] == ["2026-03-02T07:30:00Z",
                                                    "2026-03-02T08:05:00Z"]
    assert [e["type"] for e in detail["visit_detail"]["timeline"]] == [
        "keysafe", "visit_missed", "door"]
    assert client.post(f"/api/alerts/{missed}/acknowledge", headers=mona()).status_code == 200
    needs = client.post(f"/api/alerts/{missed}/resolve", headers=mona(),
                        json={"outcome": "missed_no_care_delivered", "note": "no carer"})
    assert needs.status_code == 409 and "incident record" in needs.json()["detail"]
    record = client.put(f"/api/alerts/{missed}/incident", headers=mona(), json={
        "what_happened": "carer off sick, not covered", "family_informed": True,
        "family_contact": "daughter", "police_contacted": False,
        "police_reason_not": "person safe", "safeguarding_referral_made": False,
        "safeguarding_rationale": "one-off, person safe",
    }).json()
    assert record["started_by"] == "mona"
    clock.advance(300)
    record = client.post(f"/api/alerts/{missed}/incident/actions", headers=mona(),
                         json={"what": "phoned the person: safe, lunch brought"}).json()
    assert record["actions"][0]["by"] == "mona"
    refused = client.post(f"/api/alerts/{missed}/incident/sign", headers=mona(), json={})
    assert refused.status_code == 403 and "manager" in refused.json()["detail"]

    client.post(f"/api/alerts/{missed}/incident/regulator", headers=STAFF["mary"],
                json={"required": False, "rationale": "no harm"}).raise_for_status()
    client.post(f"/api/alerts/{missed}/incident/sign", headers=STAFF["mary"],
                json={}).raise_for_status()

    done = client.post(f"/api/alerts/{missed}/resolve", headers=mona(),
                       json={"outcome": "missed_no_care_delivered", "note": "no carer"})
    assert done.status_code == 200, done.text
    detail = done.json()
    assert detail["status"] == "resolved"
    assert detail["incident"]["sign_off"]["by"] == "mary"


def test_no_access_checklist_ticks_record_time_and_user(desk: Any) -> None:
    client, store, _ = desk
    chain = Chain()
    store.store_events(pairs(chain.next(EventType.NO_ACCESS, visit_id="v1",
                                        severity=Severity.CRITICAL)), T0)
    alert_id = client.get("/api/alerts").json()[0]["id"]
    steps = client.get(f"/api/alerts/{alert_id}/incident/checklist").json()["steps"]
    first = steps[0]["id"]
    record = client.post(f"/api/alerts/{alert_id}/incident/checklist/{first}", headers=mona(),
                         json={"note": "looked round the back"}).json()
    [tick] = record["checklist"]["ticks"]
    assert (tick["step_id"], tick["by"], tick["at"]) == (first, "mona", "2026-03-02T10:00:00Z")
    twice = client.post(f"/api/alerts/{alert_id}/incident/checklist/{first}", headers=mona(),
                        json={})
    assert twice.status_code == 409 and "already ticked by mona" in twice.json()["detail"]


def test_health_is_not_ready_without_the_broker(desk: Any) -> None:
    client, _, _ = desk
    reply = client.get("/api/health")
    assert reply.status_code == 503
    assert (reply.json()["ok"], reply.json()["database_ok"], reply.json()["broker_connected"]
            ) == (False, True, False)


def test_the_live_stream_reports_new_and_acknowledged_alerts(desk: Any) -> None:
    client, store, _ = desk
    chain = Chain()
    store.store_events(pairs(chain.next(EventType.UNKNOWN_TAG)), T0)  # before: not reported
    lines: list[str] = []
    alert_pos, audit_pos = stream_start(store)  # what a dashboard last saw

    def listen() -> None:
        with client.stream("GET", "/api/alerts/stream", params={
                "max_events": 2, "since": f"{alert_pos}:{audit_pos}"}) as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            lines.extend(line for line in reply.iter_lines() if line)

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        store.store_events(pairs(chain.next(EventType.DOOR_LEFT_OPEN,
                                            severity=Severity.HIGH)), T0)
        door = client.get("/api/alerts", params={"type": "door_left_open"}).json()[0]["id"]
        client.post(f"/api/alerts/{door}/acknowledge", headers=mona()).raise_for_status()
    finally:
        listener.join(timeout=30)
    assert not listener.is_alive()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events == ["new", "acknowledged"]
    data = [json.loads(line.removeprefix("data: ")) for line in lines
            if line.startswith("data: ")]
    assert [d["alert"]["id"] for d in data] == [door, door]
    assert data[1]["by"] == "mona"


def test_staff_must_log_in_and_see_only_their_own_organisations_alerts(desk: Any) -> None:
    client, store, _ = desk
    seed(store)
    missed = client.get("/api/alerts", params={"type": "visit_missed"}).json()[0]["id"]
    anonymous = {"authorization": ""}
    assert client.get("/api/alerts", headers=anonymous).status_code == 401
    assert client.post(f"/api/alerts/{missed}/acknowledge",
                       headers=anonymous).status_code == 401
    otto = STAFF["otto"]
    assert client.get("/api/alerts", headers=otto).json() == []
    assert client.get(f"/api/alerts/{missed}", headers=otto).status_code == 404
    assert client.post(f"/api/alerts/{missed}/acknowledge", headers=otto).status_code == 404
    assert client.get(f"/api/alerts/{missed}/incident", headers=otto).status_code == 404
    assert client.put(f"/api/alerts/{missed}/incident", headers=otto,
                      json={"what_happened": "x"}).status_code == 404
    assert client.get(f"/api/alerts/{missed}").json()["status"] == "open"  # untouched
    # otto's live stream carries nothing of GW's
    alert_pos, audit_pos = stream_start(store)
    lines: list[str] = []

    def listen() -> None:
        with client.stream("GET", "/api/alerts/stream", headers=otto, params={
                "max_events": 1, "since": f"{alert_pos}:{audit_pos}"}) as reply:
            lines.extend(line for line in reply.iter_lines() if line.startswith("data: "))

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        client.post(f"/api/alerts/{missed}/acknowledge").raise_for_status()  # mona, GW
        chain = Chain(OTHER_GW)
        store.store_events(pairs(chain.next(EventType.UNKNOWN_TAG)), T0)  # otto's
    finally:
        listener.join(timeout=30)
    assert not listener.is_alive()
    assert [json.loads(line[6:])["alert"]["gateway"] for line in lines] == [OTHER_GW]
