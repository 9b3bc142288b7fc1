"""The monitoring desk as staff use it, in Debian's chromium: log in (a wrong password is
refused), a missed visit appears on the open board without a reload with the audible cue,
acknowledge in one click, work a no-access alert's checklist and incident record, resolve,
and the audit names who did what; another organisation's staff see none of it; the board
fits a 390-px phone and 200 % zoom; axe-core finds no serious accessibility problem; forms
without their CSRF token are refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from central.views import list_alerts
from homecall.wire import EventType, Severity
from tests.conftest import wait_for
from tests.dashboard.conftest import Desk, axe_violations, log_in, screenshot


def test_wrong_password_is_refused_and_the_right_one_opens_the_board(
    desk: Desk, page: Page,
) -> None:
    page.goto(desk.url + "/")
    expect(page).to_have_url(desk.url + "/login")  # no session: the login page
    screenshot(page, "login")
    log_in(page, desk, "monitor-a", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    log_in(page, desk, "monitor-a")
    expect(page.get_by_role("heading", name="Alert board")).to_be_visible()
    expect(page.get_by_text("monitor-a (monitor)")).to_be_visible()


def test_a_missed_visit_arrives_live_and_is_worked_to_an_outcome(
    desk: Desk, page: Page,
) -> None:
    log_in(page, desk, "monitor-a")
    expect(page.get_by_text("No alerts to work")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "yes")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    desk.a.raise_alert(EventType.VISIT_MISSED, Severity.CRITICAL, "v-a", "su-a")
    row = page.locator("li.alert", has_text="visit missed")
    expect(row).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator("#new-critical")).to_contain_text("New critical alert: visit missed")
    expect(page.locator("body")).to_have_attribute("data-cues", "1")
    expect(row).to_contain_text("CRITICAL")
    expect(row).to_contain_text(desk.a.person)
    expect(row).to_contain_text(desk.a.kin_phone)
    expect(row).to_contain_text("key safe by the back door")
    expect(row).to_contain_text("window 09:30\u201310:30")
    expect(row.locator(".late")).to_contain_text("late by 1h 00m")
    screenshot(page, "board")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("li.alert", has_text="visit missed")).to_contain_text(
        "acknowledged by monitor-a")

    # a no-access alert: the checklist and the incident record, then resolve
    desk.a.raise_alert(EventType.NO_ACCESS, Severity.CRITICAL, "v-a", "su-a")
    no_access = page.locator("li.alert", has_text="no access")
    expect(no_access).to_be_visible()
    no_access.get_by_role("link", name="Open").click()
    expect(page.get_by_role("heading", name="No response on visit: checklist")).to_be_visible()
    page.get_by_role("button", name="Acknowledge").click()
    first_step = page.locator(".checklist li").first
    first_step.get_by_label("Note").fill("looked through the front window")
    first_step.get_by_role("button", name="Done").click()
    expect(page.locator(".checklist li").first).to_contain_text("✓ monitor-a at 11:30")
    page.get_by_label("What happened").fill("Carer could not get in; person found safe")
    page.get_by_label("Action taken now").fill("phoned the son")
    page.get_by_role("group", name="Family or next of kin informed?").get_by_label(
        "Yes").check()
    page.get_by_role("button", name="Save incident record").click()
    expect(page.get_by_role("status")).to_have_text("Incident record saved.")
    expect(page.locator(".facts").last).to_contain_text("phoned the son")
    page.get_by_label("What was done").fill("son let the carer in")
    page.get_by_role("button", name="Resolve").click()
    # a no-access alert needs a manager's sign-off first: said plainly, nothing changed
    expect(page.get_by_role("status")).to_contain_text("sign")
    expect(page.locator("#status")).to_have_text("acknowledged")
    screenshot(page, "alert-detail")
    audit = page.locator("table.audit")
    expect(audit).to_contain_text("monitor-a")
    expect(audit).to_contain_text("alert.acknowledged")


def test_another_organisation_sees_nothing_of_ours(desk: Desk, page: Page) -> None:
    desk.a.raise_alert(EventType.VISIT_MISSED, Severity.CRITICAL, "v-a", "su-a")
    [alert] = wait_for(lambda: list_alerts(desk.store, desk.a.gateway),
                       message="A's alert stored")
    log_in(page, desk, "monitor-b")
    expect(page.get_by_role("heading", name="Alert board")).to_be_visible()
    expect(page.get_by_text("No alerts to work")).to_be_visible()
    expect(page.get_by_text(desk.a.person)).to_have_count(0)
    page.goto(f"{desk.url}/alerts/{alert['id']}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    response = page.request.post(f"{desk.url}/alerts/{alert['id']}/acknowledge", form={
        "csrf_token": page.context.cookies()[0]["value"]})
    assert response.status in (403, 404)


@pytest.mark.parametrize("width", [390, 640])  # a phone; a 1280-px desk at 200 % zoom
def test_the_board_fits_a_phone_and_200_percent_zoom_and_passes_axe(
    desk: Desk, chromium: Browser, width: int,
) -> None:
    desk.a.raise_alert(EventType.VISIT_MISSED, Severity.CRITICAL, "v-a", "su-a")
    context = chromium.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        log_in(page, desk, "monitor-a")
        expect(page.locator("li.alert", has_text="visit missed")).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scrolling at {width}px"
        screenshot(page, f"board-{width}px")
        assert axe_violations(page) == []
        page.locator("li.alert").first.get_by_role("link", name="Open").click()
        expect(page.get_by_role("heading", name="Who and where")).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scrolling on the detail page"
        assert axe_violations(page) == []
        page.goto(desk.url + "/today")
        screenshot(page, f"today-{width}px")
        assert axe_violations(page) == []
        page.get_by_role("link", name=desk.a.address).click()
        expect(page.get_by_role("heading", name="People")).to_be_visible()
        expect(page.get_by_text(desk.a.person)).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scrolling on the household page"
        screenshot(page, f"household-{width}px")
        assert axe_violations(page) == []
    finally:
        context.close()


def test_a_form_without_its_csrf_token_is_refused(desk: Desk, page: Page) -> None:
    log_in(page, desk, "monitor-a")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    session = {"homecall_session": cookies["homecall_session"]}
    with httpx.Client(base_url=desk.url, cookies=session) as client:
        refused = client.post("/logout", data={})
        assert refused.status_code == 403 and "security token" in refused.text
        forged = client.post("/logout", data={"csrf_token": "guessed"},
                             cookies={**session, "homecall_csrf": "other"})
        assert forged.status_code == 403
    # the session still works: nothing was done
    page.goto(desk.url + "/")
    expect(page.get_by_role("heading", name="Alert board")).to_be_visible()


def test_a_missed_visit_is_signed_off_by_a_manager_and_resolved_in_the_browser(
    desk: Desk, page: Page,
) -> None:
    desk.a.raise_alert(EventType.VISIT_MISSED, Severity.CRITICAL, "v-a", "su-a")
    log_in(page, desk, "monitor-a")
    page.locator("li.alert", has_text="visit missed").get_by_role("link", name="Open").click()
    detail_url = page.url
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_label("What happened").fill("Carer off sick, cover not arranged")
    page.get_by_label("Action taken now").fill("sent the standby carer")
    for group, answer in (("Family or next of kin informed?", "Yes"),
                          ("Police contacted?", "No"),
                          ("Safeguarding referral made?", "No")):
        page.get_by_role("group", name=group).get_by_label(answer, exact=True).check()
    page.get_by_label("Reference / why not").fill("person safe at home")
    page.get_by_label("Rationale").fill("one-off, person safe")
    page.get_by_role("button", name="Save incident record").click()
    expect(page.get_by_role("status")).to_have_text("Incident record saved.")
    expect(page.get_by_role("button", name="Sign off the incident record")).to_have_count(0)
    page.get_by_role("button", name="Log out").click()

    log_in(page, desk, "manager-a")
    page.goto(detail_url)
    page.get_by_role("group", name="Must the regulator (CQC) be notified?").get_by_label(
        "No", exact=True).check()
    page.get_by_label("Rationale").last.fill("no harm came to the person")
    page.get_by_role("button", name="Sign off the incident record").click()
    expect(page.get_by_role("status")).to_have_text("Incident record signed off.")
    page.get_by_role("button", name="Log out").click()

    log_in(page, desk, "monitor-a")
    page.goto(detail_url)
    page.get_by_label("What was done").fill("standby carer visited at 12:10")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text("Resolved.")
    expect(page.locator("#status")).to_contain_text("resolved")
    audit = page.locator("table.audit")
    expect(audit).to_contain_text("manager-a")
    expect(audit).to_contain_text("alert.resolved")


def test_a_gateway_offline_alert_says_why_central_counted_it_offline(
    desk: Desk, page: Page,
) -> None:
    """A monitor opening a ``gateway_offline`` alert reads whether the home's gateway went
    silent or its connection ended, in words, not the stored code."""
    from central.ingest.alerts import Raise

    desk.store.raise_by_central(Raise(
        side="central", gateway_id=desk.a.gateway, type="gateway_offline", severity="high",
        raised_at=desk.clock.now(), data={"reason": "missed_heartbeats", "raised_by": "central"},
    ), desk.clock.now())
    [alert] = [a for a in list_alerts(desk.store, desk.a.gateway)
               if a["type"] == "gateway_offline"]
    log_in(page, desk, "monitor-a")
    page.goto(f"{desk.url}/alerts/{alert['id']}")
    expect(page.get_by_role("heading", name="HIGH · gateway offline")).to_be_visible()
    expect(page.locator("#why")).to_have_text(
        "no heartbeat for three intervals: the gateway went silent (its power, its network, "
        "or the gateway itself)")
    expect(page.get_by_text("missed_heartbeats")).to_have_count(0)


def test_many_homes_offline_at_once_read_as_one_outage_on_the_board(
    desk: Desk, page: Page, chromium: Browser,
) -> None:
    """Five of an organisation's homes lose their gateways together: the board says it is
    most likely one outage, above the five alerts; one home offline is just its alert, and
    another organisation's monitor sees no banner for homes that are not theirs."""
    from central.ingest.alerts import Raise
    from central.people.models import HouseholdIn
    from central.people.repository import People

    def offline(gateways: list[str]) -> None:
        desk.store.raise_many_by_central([Raise(
            side="central", gateway_id=gateway, type="gateway_offline", severity="high",
            raised_at=desk.clock.now(), data={"reason": "missed_heartbeats"},
        ) for gateway in gateways], desk.clock.now())

    people = People(desk.app.state.db, desk.clock)
    street = [f"gw-street-{n}" for n in range(1, 5)]
    for n, gateway in enumerate(street, start=2):
        people.create_household(HouseholdIn(gateway_id=gateway, address=f"A{n} Elm Road"),
                                "org-a", "test")
    offline([desk.a.gateway])
    log_in(page, desk, "monitor-a")
    expect(page.get_by_role("link", name="gateway offline")).to_have_count(1)
    expect(page.locator("#outage")).to_have_count(0)  # one home: just its alert

    offline(street)
    page.reload()
    expect(page.get_by_role("link", name="gateway offline")).to_have_count(5)
    expect(page.locator("#outage")).to_contain_text(
        "5 homes' gateways are offline at the same time")
    assert axe_violations(page) == []  # the banner's colours pass too
    other = chromium.new_page()
    try:
        log_in(other, desk, "monitor-b")
        expect(other.get_by_role("heading", name="Alert board")).to_be_visible()
        expect(other.locator("#outage")).to_have_count(0)
    finally:
        other.close()
