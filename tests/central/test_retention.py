"""Retention and erasure on a fixed clock: a person's call-monitoring data is kept for two
years after their care ended and then purged by the supervisor's daily job, exactly theirs
(another person in the same home, and the home's own events, stay); what was removed is
counted and audited; delivery figures stay true; a manager's erasure request is refused, with
the date, while the law still requires the records."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from central.db.tables import alerts, attendances, audit, events
from central.people.models import ServiceUserIn
from central.people.repository import People
from central.store import Store
from central.supervision.runner import Supervisor
from central.views import list_gateways, report
from homecall.plan import PlanDocument
from homecall.wire import EventType
from tests.central.conftest import T0, World
from tests.central.test_store import Chain, pairs
from tests.support.auth import bearer


def _seed_two_people(world: World) -> Store:
    """Org A's home gets a second person with her own visit; the gateway has sent, in turn:
    the arrival and departure of A's visit, a door event of the home, the arrival of the
    second person's visit, and a late alert for A's visit."""
    a, store = world.a, world.app.state.store
    People(world.app.state.db, world.clock).create_service_user(ServiceUserIn(
        id="su-a2", household_id=a.household, name="Second Person", date_of_birth="1940-02-02"),
        None, "test")
    store.save_plan(PlanDocument.model_validate({
        "gateway": a.gateway, "service_users": [a.service_user, "su-a2"],
        "carers": [{"id": a.carer, "tags": [a.tag]}],
        "visits": [{"id": "v-a", "service_user": a.service_user, "start": "2026-03-02T10:00",
                    "duration_min": 30, "carers": [a.carer]},
                   {"id": "v-a2", "service_user": "su-a2", "start": "2026-03-02T12:00",
                    "duration_min": 30, "carers": [a.carer]}]}), T0, "test")
    chain = Chain(a.gateway)
    mine = {"visit_id": "v-a", "service_user_id": a.service_user, "carer_id": a.carer}
    store.store_events(pairs(
        chain.next(EventType.ARRIVAL, **mine), chain.next(EventType.DEPARTURE, **mine),
        chain.next(EventType.DOOR, data={"door": "front", "open": True}),
        chain.next(EventType.ARRIVAL, visit_id="v-a2", service_user_id="su-a2",
                   carer_id=a.carer),
        chain.next(EventType.VISIT_LATE, visit_id="v-a", service_user_id=a.service_user),
    ), T0)
    store.audit(T0, "monitor-a", "alert.acknowledged", f"alert:{a.alert}",
                {"note": "spoke to her son about her fall"})
    return store


def test_data_is_purged_two_years_after_care_ended_and_only_that_persons(world: World) -> None:
    a, client = world.a, world.client
    manager = world.headers["manager"]
    store = _seed_two_people(world)
    ended = client.patch(f"/api/service-users/{a.service_user}",
                         json={"care_ended_on": "2026-03-10"}, headers=manager)
    assert ended.status_code == 200 and ended.json()["care_ended_on"] == "2026-03-10"

    # A day before the period ends: nothing purged, and erasure is refused with the date.
    world.clock.advance((T0.replace(year=2028, month=3, day=9) - T0).total_seconds())
    supervisor = Supervisor(store, world.clock)
    supervisor.run_once()
    manager = bearer(client, "manager-a")  # two years on: a fresh login
    refused = client.post(f"/api/reports/erasure/{a.service_user}",
                          json={"reason": "her daughter asked"}, headers=manager)
    assert refused.status_code == 409
    assert "must be kept until 2028-03-10" in refused.json()["detail"]
    with store.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 5

    # The day it ends: the daily job removes A's data and details, nothing else.
    world.clock.advance(timedelta(days=1).total_seconds())
    supervisor.run_once()
    with store.db.read() as conn:
        left = conn.execute(sa.select(events.c.seq, events.c.visit_id)
                            .order_by(events.c.seq)).all()
        assert [tuple(r) for r in left] == [(3, None), (4, "v-a2")]
        assert conn.execute(sa.select(attendances.c.visit_id)).scalars().all() == ["v-a2"]
        assert conn.execute(sa.select(alerts.c.id).where(
            alerts.c.gateway_id == a.gateway, sa.or_(
                alerts.c.visit_id == "v-a", alerts.c.service_user_id == a.service_user))
        ).scalars().all() == []
        [erased] = conn.execute(sa.select(audit.c.who, audit.c.detail).where(
            audit.c.action == "service_user.erased")).all()
        trail = conn.execute(sa.select(audit.c.who, audit.c.detail).where(
            audit.c.target == f"alert:{a.alert}")).all()
    detail = json.loads(erased.detail)
    assert erased.who == "retention"
    assert (detail["removed"]["events"], detail["removed"]["alerts"],
            detail["removed"]["attendances"]) == (3, 2, 1)
    # who acknowledged stays on record; what they wrote about her does not
    assert "monitor-a" in [t.who for t in trail]
    assert not any("son" in t.detail for t in trail)
    person = client.get(f"/api/service-users/{a.service_user}", headers=manager).json()
    assert (person["name"], person["next_of_kin"], person["erased_at"] is not None) == (
        "(erased)", [], True)
    second = client.get("/api/service-users/su-a2", headers=manager).json()
    assert second["name"] == "Second Person"
    # Delivery figures stay true: the removed seqs are purged, not lost.
    assert list_gateways(store, gateways=[a.gateway])[0]["events_purged"] == 3
    assert report(store, gateways=[a.gateway])["events_lost"] == 0

    again = client.post(f"/api/reports/erasure/{a.service_user}",
                        json={"reason": "again"}, headers=manager)
    assert again.status_code == 409 and "already erased" in again.json()["detail"]


def test_erasure_on_request_needs_a_manager_an_ended_care_and_the_period_over(
        world: World) -> None:
    a, b, client = world.a, world.b, world.client
    manager = world.headers["manager"]
    still_in_care = client.post(f"/api/reports/erasure/{a.service_user}",
                                json={"reason": "asked"}, headers=manager)
    assert still_in_care.status_code == 409 and "still in care" in still_in_care.json()["detail"]
    assert client.post(f"/api/reports/erasure/{a.service_user}", json={"reason": "x"},
                       headers=world.headers["coordinator"]).status_code == 403
    assert client.post(f"/api/reports/erasure/{b.service_user}", json={"reason": "x"},
                       headers=manager).status_code == 404
    client.patch(f"/api/service-users/{a.service_user}", json={"care_ended_on": "2023-01-31"},
                 headers=manager)
    done = client.post(f"/api/reports/erasure/{a.service_user}",
                       json={"reason": "erasure request of 2 March 2026"}, headers=manager)
    assert done.status_code == 200, done.text
    assert done.json()["removed"]["alerts"] == 1  # the world's missed-visit alert
    with world.app.state.db.read() as conn:
        [entry] = conn.execute(sa.select(audit.c.who, audit.c.detail).where(
            audit.c.action == "service_user.erased")).all()
    assert entry.who == "manager-a"
    assert json.loads(entry.detail)["reason"] == "erasure request of 2 March 2026"
