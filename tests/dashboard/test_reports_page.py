"""The reports page in Debian's chromium: a manager picks a period and reads punctuality,
length of stay, continuity and alert response, each chart with its figures in words and in
a table, downloads a CSV with the same session, and axe-core finds no serious problem;
another organisation's staff see none of organisation A's figures."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect

from central.alerts.actors import Actor
from central.alerts.lifecycle import Acknowledge
from central.views import list_alerts
from homecall.wire import EventType, Severity
from tests.conftest import wait_for
from tests.dashboard.conftest import T0, Desk, axe_violations, log_in, screenshot

PERIOD = "from=2026-03-01&to=2026-03-08"


def test_a_manager_reads_the_periods_reports_and_downloads_one(desk: Desk, page: Page) -> None:
    desk.a.raise_alert(EventType.VISIT_MISSED, Severity.CRITICAL, "v-a", "su-a")
    [alert] = wait_for(lambda: list_alerts(desk.store, desk.a.gateway), message="A's alert")
    desk.store.move_alert(alert["id"], Acknowledge(), Actor("monitor-a", "monitor"),
                          T0 + timedelta(seconds=45))
    log_in(page, desk, "manager-a")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    page.get_by_label("From").fill("2026-03-01")
    page.get_by_label("To (not included)").fill("2026-03-08")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"from=2026-03-01&to=2026-03-08"))
    expect(page.get_by_text("1 planned visits")).to_be_visible()
    punctuality = page.get_by_role("img", name=re.compile("Visits by punctuality"))
    expect(punctuality).to_be_visible()
    expect(punctuality).to_have_accessible_name(re.compile("missed: 1"))
    response = page.get_by_role("img", name=re.compile("Alerts answered in time"))
    expect(response).to_have_accessible_name(re.compile(r"within 60 s: 100\.0 %"))
    expect(page.get_by_text("1 alerts; 1 to answer, 0 not yet answered")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("shift: day"))).to_contain_text("100.0 %")
    screenshot(page, "reports")
    assert axe_violations(page) == []
    link = page.get_by_role("link", name="Alert response as CSV")
    download = page.request.get(desk.url + str(link.get_attribute("href")))
    assert download.status == 200
    assert download.headers["content-type"].startswith("text/csv")
    first = download.text().splitlines()[1].split(",")
    assert first[:3] == ["all", "", "1"]


def test_another_organisation_sees_none_of_our_figures(desk: Desk, page: Page) -> None:
    desk.a.raise_alert(EventType.VISIT_MISSED, Severity.CRITICAL, "v-a", "su-a")
    wait_for(lambda: list_alerts(desk.store, desk.a.gateway), message="A's alert")
    log_in(page, desk, "monitor-b")
    page.goto(f"{desk.url}/reports?{PERIOD}")
    expect(page.get_by_text("1 planned visits")).to_be_visible()  # B's own visit only
    expect(page.get_by_text("0 alerts; 0 to answer")).to_be_visible()


def test_the_reports_fit_a_phone(desk: Desk, chromium: Browser) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        log_in(page, desk, "manager-a")
        expect(page.get_by_role("heading", name="Alert board")).to_be_visible()
        page.goto(f"{desk.url}/reports?{PERIOD}")
        expect(page.get_by_role("heading", name="Alert response")).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scrolling on a phone"
        screenshot(page, "reports-390px")
    finally:
        context.close()
