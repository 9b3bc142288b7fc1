"""Every route of central's API by every kind of caller, against a declared policy.

The policy table below says who may use each route. The test walks the app's own route list
(what OpenAPI publishes), so a route added without an entry here fails, and a route whose
check is missing or wrong fails in the cell that shows it: an anonymous caller must get 401,
a role outside the policy 403, and a role inside it a 2xx answer to a valid request (each
DELETE cell deletes a record made for it; gateway commands answer 503 here, as the test app
has no broker connection).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from central.alerts.actors import Actor
from central.alerts.incidents import (
    NO_RESPONSE_CHECKLIST,
    ContactDecision,
    PoliceDecision,
    SafeguardingDecision,
)
from central.alerts.lifecycle import Acknowledge, Resolve
from central.db.tables import alerts, event_conflicts, events
from central.people.models import CarerIn, HouseholdIn, ServiceUserIn
from central.people.repository import People
from homecall.clock import format_utc
from tests.central.conftest import ROLES, World
from tests.support.auth import create_user

PUBLIC = "public"
ALL = frozenset({*ROLES, "admin"})
CARE = frozenset({"monitor", "coordinator", "manager", "admin"})
ALERTS = frozenset({"monitor", "manager", "admin"})
PEOPLE = frozenset({"coordinator", "manager", "admin"})
HOMES = frozenset({"installer", "manager", "admin"})
MANAGERS = frozenset({"manager", "admin"})
ADMIN = frozenset({"admin"})

POLICY: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/api/health"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/logout"): ALL,
    ("GET", "/api/auth/me"): ALL,
    ("GET", "/api/users"): MANAGERS,
    ("POST", "/api/users"): MANAGERS,
    ("DELETE", "/api/users/{user_id}"): MANAGERS,
    ("GET", "/api/organisations"): ALL,
    ("POST", "/api/organisations"): ADMIN,
    ("GET", "/api/organisations/{organisation_id}"): ALL,
    ("GET", "/api/households"): ALL,
    ("POST", "/api/households"): HOMES,
    ("GET", "/api/households/{household_id}"): ALL,
    ("PATCH", "/api/households/{household_id}"): HOMES,
    ("DELETE", "/api/households/{household_id}"): HOMES,
    ("GET", "/api/service-users"): CARE,
    ("POST", "/api/service-users"): PEOPLE,
    ("GET", "/api/service-users/{service_user_id}"): CARE,
    ("PATCH", "/api/service-users/{service_user_id}"): PEOPLE,
    ("DELETE", "/api/service-users/{service_user_id}"): PEOPLE,
    ("GET", "/api/carers"): CARE,
    ("POST", "/api/carers"): PEOPLE,
    ("GET", "/api/carers/{carer_id}"): CARE,
    ("PATCH", "/api/carers/{carer_id}"): PEOPLE,
    ("DELETE", "/api/carers/{carer_id}"): PEOPLE,
    ("POST", "/api/plans"): PEOPLE,
    ("POST", "/api/plans/import.csv"): PEOPLE,
    ("GET", "/api/plans/{gateway_id}"): CARE,
    ("GET", "/api/visits"): CARE,
    ("GET", "/api/alerts"): CARE,
    ("POST", "/api/alerts/{alert_id}"): ALERTS,
    ("GET", "/api/alerts/outcomes"): CARE,
    ("GET", "/api/alerts/stream"): CARE,
    ("GET", "/api/alerts/{alert_id}"): CARE,
    ("POST", "/api/alerts/{alert_id}/acknowledge"): ALERTS,
    ("POST", "/api/alerts/{alert_id}/resolve"): ALERTS,
    ("POST", "/api/alerts/{alert_id}/reopen"): MANAGERS,
    ("GET", "/api/alerts/{alert_id}/incident"): CARE,
    ("PUT", "/api/alerts/{alert_id}/incident"): ALERTS,
    ("POST", "/api/alerts/{alert_id}/incident/actions"): ALERTS,
    ("GET", "/api/alerts/{alert_id}/incident/checklist"): CARE,
    ("POST", "/api/alerts/{alert_id}/incident/checklist/{step}"): ALERTS,
    ("POST", "/api/alerts/{alert_id}/incident/regulator"): MANAGERS,
    ("POST", "/api/alerts/{alert_id}/incident/sign"): MANAGERS,
    ("POST", "/api/webhooks"): MANAGERS,
    ("GET", "/metrics"): MANAGERS,
    ("GET", "/api/reports/punctuality"): CARE,
    ("GET", "/api/reports/durations"): CARE,
    ("GET", "/api/reports/continuity"): CARE,
    ("GET", "/api/reports/alert-response"): CARE,
    ("GET", "/api/reports/billing.csv"): CARE,
    ("GET", "/api/reports/billing-summary"): CARE,
    ("GET", "/api/reports/adjustment-reasons"): CARE,
    ("GET", "/api/reports/subject-access/{service_user_id}"): MANAGERS,
    ("POST", "/api/reports/visits/{gateway_id}/{visit_id}/adjustments"): PEOPLE,
    ("GET", "/api/reports/visits/{gateway_id}/{visit_id}/adjustments"): CARE,
    ("POST", "/api/enrol"): PUBLIC,
    ("GET", "/api/ca/crl.pem"): PUBLIC,
    ("POST", "/api/gateways/{gateway_id}/commissioning"): HOMES,
    ("GET", "/api/households/{household_id}/commissioning"): ALL,
    ("POST", "/api/households/{household_id}/enrolment-codes"): HOMES,
    ("POST", "/api/gateways/{gateway_id}/revoke"): HOMES,
    ("GET", "/api/organisations/{organisation_id}/escalation-policy"): CARE,
    ("PUT", "/api/organisations/{organisation_id}/escalation-policy"): MANAGERS,
    ("GET", "/api/webhooks/deliveries"): MANAGERS,
    ("GET", "/api/gateways"): ALL,
    ("GET", "/api/gateways/{gateway_id}/conflicts"): ALL,
    ("POST", "/api/gateways/{gateway_id}/conflicts/{seq}/resolve"): MANAGERS,
    ("POST", "/api/gateways/{gateway_id}/commands"): HOMES,
    ("POST", "/api/reports/erasure/{service_user_id}"): MANAGERS,
    ("GET", "/api/report"): CARE,
    ("GET", "/api/events"): CARE,
}


def _routes(world: World) -> list[tuple[str, str]]:
    """Every (method, path) the app publishes in its OpenAPI document."""
    paths = world.client.get("/openapi.json").json()["paths"]
    found = [(method.upper(), path) for path, operations in paths.items()
             for method in operations]
    # deletes last (they remove the records the other cells use), logout at the very end
    return sorted(found, key=lambda r: (r[1] == "/api/auth/logout", r[0] == "DELETE", r))


def _fresh(world: World, kind: str, caller: str) -> str:
    """A record of organisation A made for one DELETE cell (so every allowed cell has
    something to delete)."""
    people = People(world.app.state.db, world.clock)
    if kind == "user_id":
        return create_user(world.app, f"doomed-{caller}", "monitor", world.a.id).id
    if kind == "household_id":
        return people.create_household(HouseholdIn(gateway_id=f"gw-doomed-{caller}",
                                                   address="x"), world.a.id, "test").id
    if kind == "service_user_id":
        return people.create_service_user(ServiceUserIn(
            household_id=world.a.household, name="Doomed", date_of_birth=date(1940, 1, 1)),
            None, "test").id
    assert kind == "carer_id"
    return people.create_carer(CarerIn(name="Doomed", phone="+44 7700 900009"),
                               world.a.id, "test").id


#: Alert routes that change an alert: each allowed cell gets an alert of organisation A of this
#: type, brought to this state first (the lifecycle refuses e.g. a second acknowledgement).
ALERT_SETUP: dict[tuple[str, str], tuple[str, str]] = {
    ("POST", "/api/alerts/{alert_id}"): ("unknown_tag", "open"),
    ("POST", "/api/alerts/{alert_id}/acknowledge"): ("unknown_tag", "open"),
    ("POST", "/api/alerts/{alert_id}/resolve"): ("unknown_tag", "acknowledged"),
    ("POST", "/api/alerts/{alert_id}/reopen"): ("unknown_tag", "resolved"),
    ("GET", "/api/alerts/{alert_id}/incident"): ("visit_missed", "incident started"),
    ("PUT", "/api/alerts/{alert_id}/incident"): ("visit_missed", "open"),
    ("POST", "/api/alerts/{alert_id}/incident/actions"): ("visit_missed", "open"),
    ("POST", "/api/alerts/{alert_id}/incident/checklist/{step}"): ("no_access", "open"),
    ("POST", "/api/alerts/{alert_id}/incident/regulator"): ("visit_missed", "open"),
    ("POST", "/api/alerts/{alert_id}/incident/sign"): ("visit_missed", "complete"),
}


def _fresh_alert(world: World, alert_type: str, state: str) -> str:
    store = world.app.state.store
    setup = Actor("setup", "manager")
    now = world.clock.now()
    with store.db.write() as conn:
        seq = 1000 + int(conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar())
        alert_id = int(conn.execute(sa.insert(alerts).values(
            gateway_id=world.a.gateway, event_seq=seq, type=alert_type, severity="high",
            raised_at=format_utc(now)).returning(alerts.c.id)).scalar_one())
    if state in ("acknowledged", "resolved"):
        store.move_alert(alert_id, Acknowledge(), setup, now)
    if state == "resolved":
        store.move_alert(alert_id, Resolve(outcome="false_alarm", note="x"), setup, now)
    if state == "incident started":
        store.change_incident(alert_id, lambda r: r, setup, now)
    if state == "complete":  # everything but the sign-off
        store.change_incident(alert_id, lambda r: r.model_copy(update={
            "what_happened": "x",
            "family_contact": ContactDecision(informed=False, by="setup", reason_not="x"),
            "police": PoliceDecision(contacted=False, by="setup", reason_not="x"),
            "safeguarding": SafeguardingDecision(considered_at=now, by="setup",
                                                 referral_made=False, rationale="x"),
        }).add_action(setup, now, "phoned").decide_regulator(
            setup, now, required=False, rationale="x"), setup, now)
    return str(alert_id)


STORED_HASH = "a" * 64


def _fresh_conflict(world: World) -> str:
    """An open conflict at a new seq of organisation A's gateway: a stored event and a
    second claim to its seq (keep the stored one: ``STORED_HASH``)."""
    store = world.app.state.store
    with store.db.write() as conn:
        seq = 5000 + int(conn.execute(
            sa.select(sa.func.count()).select_from(event_conflicts)).scalar())
        conn.execute(sa.insert(events).values(
            gateway_id=world.a.gateway, seq=seq, id=f"e-{seq}", type="door", time="x",
            clock_ok=1, data="{}", hash=STORED_HASH, prev_hash="", payload="{}",
            received_at="x"))
        conn.execute(sa.insert(event_conflicts).values(
            gateway_id=world.a.gateway, seq=seq, hash="b" * 64, payload="{}",
            received_at="x"))
    return str(seq)


def _path(world: World, method: str, template: str, caller: str) -> str:
    values = {"household_id": world.a.household, "service_user_id": world.a.service_user,
              "carer_id": world.a.carer, "organisation_id": world.a.id,
              "gateway_id": world.a.gateway, "alert_id": str(world.a.alert),
              "user_id": world.spare_user, "step": NO_RESPONSE_CHECKLIST.steps[0].id,
              "visit_id": "v-a"}
    if (method, template) in ALERT_SETUP:
        values["alert_id"] = _fresh_alert(world, *ALERT_SETUP[(method, template)])
    if template.endswith("/conflicts/{seq}/resolve"):
        values["seq"] = _fresh_conflict(world)
    if template == "/api/reports/erasure/{service_user_id}":  # care ended long ago
        values["service_user_id"] = People(world.app.state.db, world.clock).create_service_user(
            ServiceUserIn(household_id=world.a.household, name="Former", date_of_birth=date(
                1930, 1, 1), care_ended_on=date(2020, 1, 1)), None, "test").id
    if template in ("/api/reports/punctuality", "/api/reports/durations",
                    "/api/reports/continuity", "/api/reports/alert-response"):
        return template + "?from=2026-03-01&to=2026-03-08"
    if template in ("/api/reports/billing.csv", "/api/reports/billing-summary"):
        return template + "?week=2026-W10"
    if template == "/api/alerts/stream":  # replay from the start, end after one event
        return template + "?since=0:0&max_events=1"
    if method == "DELETE":
        kind = template.rsplit("{", 1)[1].rstrip("}")
        values[kind] = _fresh(world, kind, caller)
    return template.format(**values)


def _request_body(world: World, method: str, template: str, caller: str) -> dict[str, Any]:
    """A valid request for an allowed caller (unique per caller where the data must be)."""
    a = world.a
    if template == "/api/plans/import.csv":
        csv = ("visit_id,service_user_id,date,start,duration_min\n"
               f"v-csv-{caller},{a.service_user},2026-03-04,08:00,30\n")
        return {"content": csv.encode(), "headers": {"content-type": "text/csv"}}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/users"): {"username": f"new-{caller}", "password": "long enough pw",
                                 "role": "monitor", "organisation_id": a.id},
        ("POST", "/api/organisations"): {"name": f"Org made by {caller}"},
        ("POST", "/api/households"): {"organisation_id": a.id,
                                      "gateway_id": f"gw-new-{caller}", "address": "x"},
        ("PATCH", "/api/households/{household_id}"): {"access_notes": f"by {caller}"},
        ("POST", "/api/service-users"): {"household_id": a.household, "name": "N",
                                         "date_of_birth": "1940-01-01"},
        ("PATCH", "/api/service-users/{service_user_id}"): {"risk_notes": f"by {caller}"},
        ("POST", "/api/carers"): {"organisation_id": a.id, "name": "N",
                                  "phone": "+44 7700 900000"},
        ("PATCH", "/api/carers/{carer_id}"): {"phone": "+44 7700 900001"},
        ("POST", "/api/plans"): {"gateway": a.gateway, "service_users": [a.service_user],
                                 "carers": [{"id": a.carer}]},
        ("POST", "/api/alerts/{alert_id}"): {"status": "acknowledged"},
        ("POST", "/api/alerts/{alert_id}/resolve"): {"outcome": "false_alarm", "note": "x"},
        ("POST", "/api/alerts/{alert_id}/reopen"): {"reason": "x"},
        ("PUT", "/api/alerts/{alert_id}/incident"): {"what_happened": "x"},
        ("POST", "/api/alerts/{alert_id}/incident/actions"): {"what": "x"},
        ("POST", "/api/alerts/{alert_id}/incident/regulator"): {"required": False,
                                                                "rationale": "x"},
        ("PUT", "/api/organisations/{organisation_id}/escalation-policy"): {
            "acknowledge_within_min": {"critical": 3, "high": 10, "medium": 60, "low": None}},
        ("POST", "/api/enrol"): {"code": "AAAA-AAAA", "csr": "x" * 100},
        ("POST", "/api/reports/visits/{gateway_id}/{visit_id}/adjustments"): {
            "carer_id": a.carer, "arrived_at": "2026-03-02T10:00:00Z",
            "departed_at": "2026-03-02T10:30:00Z", "reason_code": "missed_tap_out",
            "note": f"by {caller}"},
        ("POST", "/api/gateways/{gateway_id}/commissioning"): {
            "gateway_id": a.gateway, "installer": caller, "at": "2026-03-02T09:00:00Z",
            "gateway_version": "0.1.0", "passed": True, "devices": [],
            "steps": [{"id": "tap-c", "prompt": "Tap", "ok": True}]},
        ("POST", "/api/webhooks"): {"organisation_id": a.id, "url": "http://127.0.0.1:9/",
                                    "secret": "s" * 16},
        ("POST", "/api/gateways/{gateway_id}/commands"): {"command": "identify"},
        ("POST", "/api/reports/erasure/{service_user_id}"): {"reason": f"by {caller}"},
        ("POST", "/api/gateways/{gateway_id}/conflicts/{seq}/resolve"): {
            "keep_hash": STORED_HASH, "reason": f"by {caller}"},
    }
    return {"json": bodies.get((method, template), {})}


#: What an allowed caller gets besides 2xx: the test app runs without a broker connection.
NO_BROKER = {("POST", "/api/gateways/{gateway_id}/commands"): 503,
             ("GET", "/api/health"): 503,  # ready only with the broker connected
             # enrolment needs central's CA, which the test app has not got
             ("POST", "/api/enrol"): 503,
             ("GET", "/api/ca/crl.pem"): 503,
             ("POST", "/api/households/{household_id}/enrolment-codes"): 503,
             ("POST", "/api/gateways/{gateway_id}/revoke"): 503}


def test_every_route_has_a_declared_policy(world: World) -> None:
    undeclared = sorted(set(_routes(world)) - set(POLICY))
    assert undeclared == [], f"routes without an access policy: {undeclared}"
    stale = sorted(set(POLICY) - set(_routes(world)))
    assert stale == [], f"policy entries for routes that no longer exist: {stale}"


def test_role_by_route_matrix(world: World) -> None:
    failures = []
    callers = ["anonymous", *ROLES, "admin"]
    for method, template in _routes(world):
        policy = POLICY[(method, template)]
        for caller in callers:
            headers = world.headers.get(caller, {})
            if method == "POST" and template == "/api/auth/login":
                response = world.client.post(template, json={"username": f"nobody-{caller}",
                                                             "password": "wrong"})
                ok, expected = response.status_code == 401, "401 (wrong password)"
            else:
                allowed = policy == PUBLIC or caller in policy
                request = (_request_body(world, method, template, caller) if allowed
                           else {"json": {}})
                response = world.client.request(
                    method, _path(world, method, template, caller),
                    **{**request, "headers": {**headers, **request.get("headers", {})}})
                status = response.status_code
                if policy == PUBLIC:
                    ok = 200 <= status < 300 or NO_BROKER.get((method, template)) == status
                    expected = "2xx"
                elif caller == "anonymous":
                    ok, expected = status == 401, "401"
                elif caller in policy:
                    ok = 200 <= status < 300 or NO_BROKER.get((method, template)) == status
                    expected = "2xx"
                else:
                    ok, expected = status == 403, "403"
            if not ok:
                failures.append(f"{method} {template} as {caller}: {response.status_code}, "
                                f"expected {expected}: {response.text[:160]}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("role", ["monitor", "coordinator", "manager", "installer"])
def test_other_organisations_records_do_not_exist_for_staff(world: World, role: str) -> None:
    """Organisation A's staff get 404 for B's records (as for ids that never existed) and B's
    data is absent from every list."""
    h = world.headers[role]
    b = world.b
    client = world.client
    for path in (f"/api/households/{b.household}", f"/api/organisations/{b.id}"):
        assert client.get(path, headers=h).status_code == 404, path
    if role != "installer":
        for path in (f"/api/service-users/{b.service_user}", f"/api/carers/{b.carer}",
                     f"/api/plans/{b.gateway}"):
            response = client.get(path, headers=h)
            assert response.status_code == 404, path
            missing = client.get(path.rsplit("/", 1)[0] + "/never-existed", headers=h)
            assert response.json()["detail"].replace(path.rsplit("/", 1)[1], "X") == \
                missing.json()["detail"].replace("never-existed", "X")
        assert [v["gateway"] for v in client.get("/api/visits", headers=h).json()] == \
            [world.a.gateway]
        assert client.get("/api/visits", params={"gateway": b.gateway}, headers=h).json() == []
        assert {a["gateway"] for a in client.get("/api/alerts", headers=h).json()} == \
            {world.a.gateway}
        assert [v["id"] for v in client.get("/api/report", headers=h).json()["visits"]] == \
            ["v-a"]
        assert [s["id"] for s in client.get("/api/service-users", headers=h).json()] == \
            [world.a.service_user]
        assert [c["id"] for c in client.get("/api/carers", headers=h).json()] == [world.a.carer]
    assert [x["id"] for x in client.get("/api/households", headers=h).json()] == \
        [world.a.household]
    assert [o["id"] for o in client.get("/api/organisations", headers=h).json()] == [world.a.id]
    gateways = {g["id"] for g in client.get("/api/gateways", headers=h).json()}
    assert b.gateway not in gateways


def test_staff_cannot_change_another_organisations_records(world: World) -> None:
    client, b = world.client, world.b
    monitor, coordinator, installer, manager = (world.headers[r] for r in
                                                ("monitor", "coordinator", "installer",
                                                 "manager"))
    response = client.post(f"/api/alerts/{b.alert}", headers=monitor,
                           json={"status": "acknowledged"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"no alert {b.alert}"
    assert client.post("/api/alerts/999999", headers=monitor,
                       json={"status": "acknowledged"}).json()["detail"] == "no alert 999999"
    assert client.patch(f"/api/service-users/{b.service_user}", headers=coordinator,
                        json={"name": "X"}).status_code == 404
    assert client.delete(f"/api/carers/{b.carer}", headers=coordinator).status_code == 404
    assert client.patch(f"/api/households/{b.household}", headers=installer,
                        json={"address": "X"}).status_code == 404
    response = client.post("/api/service-users", headers=coordinator, json={
        "household_id": b.household, "name": "Y", "date_of_birth": "1940-01-01"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "household_id"]
    response = client.post(f"/api/gateways/{b.gateway}/commands", headers=installer,
                           json={"command": "identify", "args": {}})
    assert response.status_code == 404
    response = client.post("/api/plans", headers=manager, json={
        "gateway": b.gateway, "service_users": [b.service_user]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "gateway"]
    response = client.delete(f"/api/users/{world.spare_user}", headers=world.headers["admin"])
    assert response.status_code == 204
    # B's data is untouched; the admin sees it
    admin = world.headers["admin"]
    alert = [a for a in client.get("/api/alerts", headers=admin).json()
             if a["gateway"] == b.gateway]
    assert alert[0]["status"] == "open"
    assert client.get(f"/api/carers/{b.carer}", headers=admin).status_code == 200
