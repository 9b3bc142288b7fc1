"""The desk's pages: login and logout, the alert board (home page, with a fragment the
live board refreshes from), an alert's detail (timeline, audit, no-response checklist,
incident record, resolve), today's households, and the contract reports with charts. Forms
post back here and redirect (post/redirect/get); a move the lifecycle refuses comes back as
a message on the page. The same store calls, scoping and audit as the API: only the
caller's organisation's alerts exist here, and every change names the logged-in user."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from central.alerts import AlertDeskError
from central.alerts.actors import Actor
from central.alerts.incidents import (
    NO_RESPONSE_CHECKLIST,
    ContactDecision,
    IncidentError,
    IncidentRecord,
    PoliceDecision,
    SafeguardingDecision,
)
from central.alerts.lifecycle import Acknowledge, Resolve
from central.alerts.outcomes import OutcomeCatalogue
from central.auth.deps import DESK_ROLES as DESK_ACTOR_ROLES
from central.auth.deps import SESSION_COOKIE, get_accounts, get_people
from central.auth.service import AuthUser, LoginFailed, LoginThrottled
from central.dashboard.charts import bar_chart
from central.dashboard.context import (
    LONDON,
    SEVERITY_SHAPE,
    DeskContext,
    board_cards,
    local,
)
from central.dashboard.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    allowed_gateways,
    csrf_token,
    form_fields,
    page_user,
)
from central.dashboard.timeline import visit_svg
from central.deps import AlertId
from central.provisioning.commissioning import commissioning_records
from central.reports.adjustments import adjustments_for
from central.reports.alert_response import alert_response_report
from central.reports.care import continuity_report, durations_report
from central.reports.punctuality import punctuality_report
from central.reports.visits import visits_between
from central.store import NotFound, Store
from central.views import alert_detail, list_alerts, list_gateways, list_visits
from homecall.clock import format_utc

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["local"] = local
templates.env.filters["local_day"] = lambda v: local(v, with_date=True)

PageUser = Annotated[AuthUser, Depends(page_user)]
SEVERITIES = ("critical", "high", "medium", "low")


def _render(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    user = values.get("user")
    response = templates.TemplateResponse(request, name, {
        "csrf_field": CSRF_FIELD, "csrf": csrf_token(request), "user": user,
        "server_now": format_utc(request.app.state.clock.now()), "shape": SEVERITY_SHAPE,
        **values}, status_code=status_code)
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
    return response


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _desk_actor(user: AuthUser) -> Actor:
    role = DESK_ACTOR_ROLES.get(user.role)
    if role is None:
        raise HTTPException(status_code=403, detail=f"role {user.role!r} may not work alerts")
    return Actor(user.username, role)


def _back(alert_id: AlertId, message: str = "") -> RedirectResponse:
    suffix = f"?message={quote(message)}" if message else ""
    return RedirectResponse(f"/alerts/{alert_id}{suffix}", status_code=303)


# ------------------------------------------------------------------------ login, logout


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    accounts = get_accounts(request, request.app.state.db, request.app.state.clock)
    client = request.client.host if request.client else "unknown"
    try:
        user, issued = accounts.login(fields.get("username", ""), fields.get("password", ""),
                                      client, "cookie")
    except LoginThrottled as err:
        return _render(request, "login.html", 429, error=str(err))
    except LoginFailed:
        log.info("failed desk login from %s", client)
        return _render(request, "login.html", 401,
                       error="Wrong username or password.",
                       username=fields.get("username", ""))
    log.info("desk login: %s (%s)", user.username, user.role)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, issued.token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/",
                        max_age=int((issued.expires_at - accounts.clock.now())
                                    .total_seconds()))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_fields(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        get_accounts(request, request.app.state.db, request.app.state.clock).revoke(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ----------------------------------------------------------------------------- board


#: Homes offline at once that the board reads as one outage (a network, a broker, a region)
#: rather than as that many separate faults, and says so above the rows.
OUTAGE_BANNER_AT = 5


def _board_values(request: Request, user: AuthUser) -> dict[str, Any]:
    query = request.query_params
    people = get_people(request.app.state.db, request.app.state.clock)
    filters = {k: query.get(k, "") for k in ("severity", "type", "status", "organisation")}
    cards = board_cards(
        _store(request), people, allowed_gateways(request, user),
        severity=filters["severity"], alert_type=filters["type"], status=filters["status"],
        organisation=filters["organisation"] if user.spans_all_organisations else None)
    organisations = (people.list_organisations(None) if user.spans_all_organisations
                     else [])
    offline = sum(1 for card in cards if card.alert["type"] == "gateway_offline"
                  and card.alert["status"] in ("open", "escalated", "acknowledged"))
    return {"user": user, "cards": cards, "filters": filters, "severities": SEVERITIES,
            "organisations": organisations,
            "outage": offline if offline >= OUTAGE_BANNER_AT else 0,
            "query": str(request.url.query)}


@router.get("/", response_class=HTMLResponse)
def board(request: Request, user: PageUser) -> Response:
    return _render(request, "board.html", **_board_values(request, user))


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(request: Request, user: PageUser) -> Response:
    """The board's rows alone: what the live board swaps in when an alert changes."""
    return _render(request, "board_rows.html", **_board_values(request, user))


# ------------------------------------------------------------------------ alert detail

#: Why central counted a gateway offline, in the desk's words (``data.reason`` of the alert).
OFFLINE_REASONS = {
    "missed_heartbeats": "no heartbeat for three intervals: the gateway went silent (its "
                         "power, its network, or the gateway itself)",
    "last_will": "the gateway's connection to the broker ended without a goodbye (its last "
                 "will): the network dropped or the gateway stopped",
}


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: AlertId, user: PageUser) -> Response:
    store = _store(request)
    found = alert_detail(store, alert_id, gateways=allowed_gateways(request, user))
    if found is None:
        return _render(request, "not_found.html", 404, user=user,
                       what=f"alert {alert_id}")
    people = get_people(request.app.state.db, request.app.state.clock)
    card = DeskContext(store, people).card(found)
    visit = found.get("visit_detail") or {}
    svg = visit_svg(card.window, visit.get("timeline", []), request.app.state.clock.now())
    incident = found.get("incident")
    ticks = {t["step_id"]: t for t in ((incident or {}).get("checklist") or {})
             .get("ticks", [])}
    return _render(
        request, "alert.html", user=user, card=card, alert=found, svg=svg,
        incident=incident, ticks=ticks,
        checklist=NO_RESPONSE_CHECKLIST if found["type"] == "no_access" else None,
        outcomes=OutcomeCatalogue.default().for_type(found["type"]),
        message=request.query_params.get("message", ""),
        takes_incident=found["type"] in ("visit_missed", "call_outside_tolerance",
                                         "no_access"),
        why=(OFFLINE_REASONS.get(str((found.get("data") or {}).get("reason")))
             if found["type"] == "gateway_offline" else None),
    )


def _scope(request: Request, user: AuthUser) -> frozenset[str] | None:
    return allowed_gateways(request, user)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: AlertId, user: PageUser) -> Response:
    await form_fields(request)
    try:
        _store(request).move_alert(alert_id, Acknowledge(), _desk_actor(user),
                                   request.app.state.clock.now(),
                                   gateways=_scope(request, user))
    except NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except AlertDeskError as err:
        return _back(alert_id, str(getattr(err, "reason", err)))
    target = request.query_params.get("next", "")
    return RedirectResponse("/" if target == "board" else f"/alerts/{alert_id}",
                            status_code=303)


@router.post("/alerts/{alert_id}/resolve")
async def resolve(request: Request, alert_id: AlertId, user: PageUser) -> Response:
    fields = await form_fields(request)
    try:
        _store(request).move_alert(
            alert_id, Resolve(outcome=fields.get("outcome", ""), note=fields.get("note", "")),
            _desk_actor(user), request.app.state.clock.now(), gateways=_scope(request, user))
    except NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except (AlertDeskError, ValueError) as err:
        return _back(alert_id, str(getattr(err, "reason", err)))
    return _back(alert_id, "Resolved.")


def _change(request: Request, alert_id: AlertId, user: AuthUser, change: Any,
            done: str) -> Response:
    actor = _desk_actor(user)
    try:
        _store(request).change_incident(alert_id, change, actor, request.app.state.clock.now(),
                                        gateways=_scope(request, user))
    except NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except (IncidentError, AlertDeskError, ValueError) as err:
        return _back(alert_id, str(err))
    return _back(alert_id, done)


@router.post("/alerts/{alert_id}/checklist/{step}")
async def tick_step(request: Request, alert_id: AlertId, step: str, user: PageUser) -> Response:
    fields = await form_fields(request)
    actor, now = _desk_actor(user), request.app.state.clock.now()
    reason = fields.get("not_applicable_reason") or None
    return _change(request, alert_id, user, lambda r: r.tick(
        step, actor, now, not_applicable_reason=reason, note=fields.get("note", "")),
        "Step recorded.")


@router.post("/alerts/{alert_id}/incident")
async def incident(request: Request, alert_id: AlertId, user: PageUser) -> Response:
    fields = await form_fields(request)
    actor, now = _desk_actor(user), request.app.state.clock.now()

    def yes(name: str) -> bool | None:
        value = fields.get(name, "")
        return None if value == "" else value == "yes"

    def change(record: IncidentRecord) -> IncidentRecord:
        update: dict[str, Any] = {}
        if fields.get("what_happened", "").strip():
            update["what_happened"] = fields["what_happened"].strip()
        family, police, referral = yes("family_informed"), yes("police_contacted"), \
            yes("safeguarding_referral_made")
        if family is not None:
            update["family_contact"] = ContactDecision(
                informed=family, at=now if family else None, by=actor.user_id,
                contact=fields.get("family_contact", ""),
                reason_not=fields.get("family_reason_not", ""))
        if police is not None:
            update["police"] = PoliceDecision(
                contacted=police, at=now if police else None, by=actor.user_id,
                reference=fields.get("police_reference", ""),
                reason_not=fields.get("police_reason_not", ""))
        if referral is not None:
            update["safeguarding"] = SafeguardingDecision(
                considered_at=now, by=actor.user_id, referral_made=referral,
                reference=fields.get("safeguarding_reference", ""),
                rationale=fields.get("safeguarding_rationale", "") or "(none given)")
        record = record.model_copy(update=update)
        if fields.get("action", "").strip():
            record = record.add_action(actor, now, fields["action"].strip())
        return record

    return _change(request, alert_id, user, change, "Incident record saved.")


# ------------------------------------------------------------------------- household


@router.get("/households/{household_id}", response_class=HTMLResponse)
def household_page(request: Request, household_id: str, user: PageUser) -> Response:
    """People, plan, recent visits, devices and gateway health of one household."""
    from central.people.repository import NotFound as PersonNotFound

    people = get_people(request.app.state.db, request.app.state.clock)
    try:
        household = people.get_household(household_id, user.scope)
    except PersonNotFound:
        return _render(request, "not_found.html", 404, user=user,
                       what=f"household {household_id}")
    store = _store(request)
    gateway_id = household.gateway_id
    current = store.current_plan(gateway_id)
    visits = list_visits(store, gateway_id, gateways=[gateway_id])
    visits.sort(key=lambda v: v["planned_start"], reverse=True)
    gateway = next(iter(list_gateways(store, gateways=[gateway_id])), None)
    devices = ((gateway or {}).get("status") or {}).get("devices", [])
    return _render(request, "household.html", user=user, household=household,
                   residents=people.list_service_users(user.scope, household.id),
                   plan=current[0] if current else None, visits=visits[:30],
                   gateway=gateway, devices=devices,
                   commissioning=commissioning_records(request.app.state.db, household.id))


@router.post("/alerts/{alert_id}/sign-off")
async def sign_off(request: Request, alert_id: AlertId, user: PageUser) -> Response:
    """A manager records the regulator decision and signs the incident record off."""
    fields = await form_fields(request)
    if DESK_ACTOR_ROLES.get(user.role) != "manager":
        return _back(alert_id, "Only a manager can sign off an incident record.")
    actor, now = _desk_actor(user), request.app.state.clock.now()
    required = fields.get("regulator_required", "") == "yes"
    rationale = fields.get("regulator_rationale", "").strip() or "(none given)"
    return _change(request, alert_id, user, lambda r: r.decide_regulator(
        actor, now, required=required, rationale=rationale).sign(
        actor, now, fields.get("note", "")), "Incident record signed off.")


# --------------------------------------------------------------------------- reports

#: Who reads the contract reports (the API's care readers).
REPORT_ROLES = ("monitor", "coordinator", "manager", "admin")


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


@router.get("/reports", response_class=HTMLResponse)
def reports(request: Request, user: PageUser, date_from: Annotated[
        str | None, Query(alias="from")] = None, date_to: Annotated[
        str | None, Query(alias="to")] = None) -> Response:
    """The period's punctuality, length of stay, continuity and alert response, each as a
    chart with its figures in a table and a CSV download."""
    if user.role not in REPORT_ROLES:
        raise HTTPException(status_code=403, detail="reports are for care staff")
    today_local = request.app.state.clock.now().astimezone(LONDON).date()
    message = ""
    try:
        start = date.fromisoformat(date_from) if date_from else today_local.replace(day=1)
        end = date.fromisoformat(date_to) if date_to else today_local + timedelta(days=1)
        if end <= start or end - start > timedelta(days=366):
            raise ValueError("the end must be after the start, at most a year later")
    except ValueError as err:
        message = f"Period not understood ({err}); showing this month."
        start, end = today_local.replace(day=1), today_local + timedelta(days=1)
    store = _store(request)
    scope = allowed_gateways(request, user)
    visits = visits_between(store, start, end, scope)
    corrections = adjustments_for(store.db, None if scope is None else sorted(scope))
    punctuality = punctuality_report(visits)
    durations = durations_report(visits, corrections)
    continuity = continuity_report(visits)
    response = alert_response_report(list_alerts(store, gateways=scope), start, end)
    charts = {
        "punctuality": bar_chart("Visits by punctuality", [
            (kind.replace("_", " "), float(n), str(n))
            for kind, n in punctuality["totals"].items()]),
        "response": bar_chart("Alerts answered in time", [
            (f"within {entry['within_s']} s", (entry["share"] or 0.0) * 100,
             _percent(entry["share"]) + f" (target {entry['target'] * 100:g} %)")
            for entry in response["all"]["standard"]], maximum=100.0),
    }
    return _render(request, "reports.html", user=user, start=start, end=end,
                   last_day=end - timedelta(days=1), message=message,
                   punctuality=punctuality, durations=durations, continuity=continuity,
                   response=response, charts=charts, percent=_percent,
                   query=f"from={start.isoformat()}&to={end.isoformat()}")


# ----------------------------------------------------------------------------- today


@router.get("/today", response_class=HTMLResponse)
def today(request: Request, user: PageUser) -> Response:
    store = _store(request)
    scope = allowed_gateways(request, user)
    now: datetime = request.app.state.clock.now()
    day = now.astimezone(LONDON).date()
    visits = [v for v in list_visits(store, gateways=scope)
              if str(v.get("planned_start", ""))[:10] == day.isoformat()]
    people = get_people(request.app.state.db, request.app.state.clock)
    context = DeskContext(store, people)
    homes: dict[str, dict[str, Any]] = {}
    for gateway in list_gateways(store, gateways=scope):
        homes[gateway["id"]] = {"gateway": gateway,
                                "household": context.household(gateway["id"]),
                                "visits": []}
    for visit in visits:
        homes.setdefault(visit["gateway"], {"gateway": {"id": visit["gateway"]},
                                            "household": context.household(visit["gateway"]),
                                            "visits": []})["visits"].append(visit)
    return _render(request, "today.html", user=user, homes=list(homes.values()), day=day)
