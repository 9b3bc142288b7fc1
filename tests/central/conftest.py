"""Central's API on a real database (each engine) with two organisations in it: A and B,
each with a household (and gateway), a service user, a carer with a tag, a plan and an open
alert; staff of every role in organisation A and an all-organisation admin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from central.app import create_app
from central.db.tables import alerts as alerts_table
from central.people.models import CarerIn, HouseholdIn, OrganisationIn, ServiceUserIn
from central.people.repository import People
from central.settings import CentralSettings
from central.store import Store
from homecall.clock import ManualClock, format_utc
from homecall.plan import PlanDocument
from tests.support.auth import bearer, create_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROLES = ("monitor", "coordinator", "manager", "installer")


@pytest.fixture(autouse=True)
def light_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for tests (production keeps the library's defaults: ~0.5 s a
    hash on this machine, which would make each test seconds slower)."""
    monkeypatch.setattr("central.auth.service._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Org:
    id: str
    household: str
    gateway: str
    service_user: str
    carer: str
    tag: str
    alert: int


@dataclass
class World:
    app: FastAPI
    client: TestClient
    clock: ManualClock
    a: Org
    b: Org
    #: role name ("monitor", … of org A; "admin" of all) -> auth headers
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    spare_user: str = ""


def _seed_org(app: FastAPI, people: People, name: str, gateway: str, tag: str) -> Org:
    key = name[-1].lower()
    org = people.create_organisation(OrganisationIn(name=name), "test", org_id=f"org-{key}")
    household = people.create_household(
        HouseholdIn(gateway_id=gateway, address=f"1 {name} Road", key_safe_notes="code 1234"),
        org.id, "test")
    su = people.create_service_user(ServiceUserIn(
        id=f"su-{key}", household_id=household.id, name=f"Person {key.upper()}",
        date_of_birth="1938-05-01", lives_alone=True,
        next_of_kin=[{"name": "Kin", "relationship": "son", "phones": ["+44 7700 900001"]}],
    ), None, "test")
    carer = people.create_carer(CarerIn(id=f"c-{key}", name=f"Carer {key.upper()}",
                                        phone="+44 7700 900002", tags=[tag]), org.id, "test")
    store: Store = app.state.store
    store.save_plan(PlanDocument.model_validate({
        "gateway": gateway, "service_users": [su.id], "carers": [{"id": carer.id,
                                                                  "tags": [tag]}],
        "visits": [{"id": f"v-{key}", "service_user": su.id, "start": "2026-03-02T10:00",
                    "duration_min": 30, "carers": [carer.id]}],
    }), T0, "test")
    with store.db.write() as conn:
        alert_id = int(conn.execute(
            sa.insert(alerts_table).values(
                gateway_id=gateway, event_seq=1, type="visit_missed", severity="critical",
                visit_id=f"v-{key}", raised_at=format_utc(T0))
            .returning(alerts_table.c.id)).scalar_one())
    return Org(id=org.id, household=household.id, gateway=gateway, service_user=su.id,
               carer=carer.id, tag=carer.tags[0], alert=alert_id)


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(T0)
    settings = CentralSettings(database=database_url, db_path=tmp_path / "store.db")
    app = create_app(settings, clock=clock, with_ingest=False)
    with TestClient(app) as client:
        people = People(app.state.db, clock)
        a = _seed_org(app, people, "Care Org A", "gw-a-1", "em4100:0A00000001")
        b = _seed_org(app, people, "Care Org B", "gw-b-1", "em4100:0B00000001")
        world = World(app=app, client=client, clock=clock, a=a, b=b)
        for role in ROLES:
            create_user(app, f"{role}-a", role, a.id)
            world.headers[role] = bearer(client, f"{role}-a")
        create_user(app, "root", "admin", None)
        world.headers["admin"] = bearer(client, "root")
        world.spare_user = create_user(app, "spare-a", "monitor", a.id).id
        yield world
