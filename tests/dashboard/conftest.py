"""The desk in a real browser: central served over HTTP by uvicorn (in this process, so the
test can drive its clock), fed through a real Mosquitto by a gateway's own MQTT login, and
Debian's chromium driven by Playwright (``make test`` installs chromium with apt; no browser
is downloaded). Two organisations, A and B, each with a household, a person with next of
kin, a plan and staff; screenshots of every page go to ``artifacts/screenshots/``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from central.app import create_app
from central.people.models import HouseholdIn, OrganisationIn, ServiceUserIn
from central.people.repository import People
from central.settings import CentralSettings
from central.store import Store
from gateway.delivery.journal import Journal, NewEvent
from homecall.clock import ManualClock
from homecall.plan import PlanDocument
from homecall.wire import EventEnvelope, EventType, Severity
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.central.test_ingest import GatewayClient
from tests.conftest import wait_for
from tests.support.auth import PASSWORD, create_user
from tests.support.serve import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
AXE = Path(__file__).resolve().parents[1] / "support" / "vendor" / "axe.min.js"
#: 11:30 London on a March Monday: v-a's window (09:30-10:30) closed an hour ago.
T0 = datetime(2026, 3, 2, 11, 30, tzinfo=UTC)


@dataclass
class Home:
    gateway: str
    address: str
    person: str
    kin_phone: str
    journal: Journal
    client: GatewayClient | None = None
    mono: float = 0.0

    def raise_alert(self, alert_type: EventType, severity: Severity,
                    visit_id: str | None = None, service_user: str | None = None,
                    ) -> EventEnvelope:
        """The gateway journals an alert event and publishes it to central."""
        self.mono += 1.0
        [event] = self.journal.append([NewEvent(
            alert_type, T0, self.mono, severity=severity, visit_id=visit_id,
            service_user_id=service_user, data={})], clock_ok=True)
        assert self.client is not None
        self.client.publish(event.to_bytes(), self.gateway)
        return event


@dataclass
class Desk:
    url: str
    app: FastAPI
    clock: ManualClock
    a: Home
    b: Home
    users: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        store: Store = self.app.state.store
        return store


def _seed(app: FastAPI, people: People, key: str, tmp_path: Path) -> Home:
    gateway = f"gw-desk-{key}"
    org = people.create_organisation(OrganisationIn(name=f"Care Org {key.upper()}"), "test",
                                     org_id=f"org-{key}")
    household = people.create_household(HouseholdIn(
        gateway_id=gateway, address=f"{key.upper()}1 Elm Road, Derby",
        key_safe_notes="key safe by the back door", access_notes="dog in the kitchen"),
        org.id, "test")
    phone = f"+44 7700 90000{ord(key) % 10}"
    person = people.create_service_user(ServiceUserIn(
        id=f"su-{key}", household_id=household.id, name=f"Ada {key.upper()}ston",
        date_of_birth="1938-05-01", lives_alone=True,
        next_of_kin=[{"name": "Tom", "relationship": "son", "phones": [phone]}]), None, "test")
    store: Store = app.state.store
    store.save_plan(PlanDocument.model_validate({
        "gateway": gateway, "service_users": [person.id],
        "visits": [{"id": f"v-{key}", "service_user": person.id,
                    "start": "2026-03-02T10:00", "duration_min": 30}]}), T0, "test")
    journal = Journal(tmp_path / f"{gateway}.db", gateway, "boot-1", synchronous="NORMAL")
    for role in ("monitor", "manager"):
        create_user(app, f"{role}-{key}", role, org.id)
    return Home(gateway, household.address, person.name, phone, journal)


@pytest.fixture
def desk(broker: MosquittoBroker, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setattr("central.auth.service._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock = ManualClock(T0)
    settings = CentralSettings(
        database=f"sqlite:///{tmp_path / 'central.db'}", mqtt_port=broker.port,
        mqtt_user=CENTRAL_USER, mqtt_password=broker.passwords[CENTRAL_USER],
        mqtt_client_id="central-desk", supervise=False)
    app = create_app(settings, clock=clock)
    with serving(app) as url:
        ingest = app.state.ingest
        wait_for(lambda: ingest.connected.is_set(), timeout=30,
                 message="central on the broker")
        yield from _desk(app, url, clock, broker, tmp_path)


def _desk(app: FastAPI, url: str, clock: ManualClock, broker: MosquittoBroker,
          tmp_path: Path) -> Iterator[Desk]:
    people = People(app.state.db, clock)
    a, b = (_seed(app, people, key, tmp_path) for key in ("a", "b"))
    for home in (a, b):
        broker.add_user(home.gateway)
        home.client = GatewayClient(broker, home.gateway)
    try:
        yield Desk(url=url, app=app, clock=clock, a=a, b=b)
    finally:
        for home in (a, b):
            if home.client is not None:
                home.client.close()
            home.journal.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One browser per test module: Playwright's sync API runs an event loop in this thread
    while it is open, which later tests' own ``asyncio.run`` must not meet."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A desk-sized page (1280 x 900) in London time."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900},
                                   timezone_id="Europe/London")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical WCAG 2 A/AA violations on the page (the vendored
    script, so no network)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa']});
        return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '));
    }""")
    return list(result)


def log_in(page: Page, desk: Desk, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{desk.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
