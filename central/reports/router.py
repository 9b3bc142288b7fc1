"""``/api/reports/...``: the punctuality report (JSON, or CSV with ``format=csv``) for a
period, and the weekly billing export (CSV). Staff who read care data, within their
organisation."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from central.auth.deps import (
    AllowedGateways,
    CareReader,
    PeopleDep,
    PeopleEditor,
    UserManager,
    require_visible,
)
from central.deps import ClockDep, SettingsDep, StoreDep
from central.people.repository import NotFound as PersonNotFound
from central.reports.adjustments import (
    REASON_CODES,
    AdjustmentError,
    add_adjustment,
    adjustments_for,
)
from central.reports.alert_response import STANDARD, alert_response_report
from central.reports.billing import adjusted_share, billing_csv, billing_rows
from central.reports.care import continuity_report, durations_report
from central.reports.punctuality import CLASSES, punctuality_report
from central.reports.retention import RetentionError, erase_person
from central.reports.subject_access import subject_access
from central.reports.visits import visits_between
from central.views import list_alerts

router = APIRouter(prefix="/api/reports", tags=["reports"])
DateParam = Annotated[date, Query(description="local date, YYYY-MM-DD")]


def _period(date_from: date, date_to: date) -> None:
    if date_to <= date_from:
        raise HTTPException(status_code=422, detail="to: must be after from")
    if date_to - date_from > timedelta(days=366):
        raise HTTPException(status_code=422, detail="the period may be at most a year")


@router.get("/punctuality", response_model=None)
def punctuality(store: StoreDep, user: CareReader, allowed: AllowedGateways,
                date_from: Annotated[date, Query(alias="from")],
                date_to: Annotated[date, Query(alias="to")],
                format: Literal["json", "csv"] = "json") -> dict[str, Any] | Response:
    """Arrival against the planned window, by carer and by service user, from ``from``
    (inclusive) to ``to`` (exclusive)."""
    _period(date_from, date_to)
    report = punctuality_report(visits_between(store, date_from, date_to, allowed))
    report["period"] = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    if format == "json":
        return report
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["group", "id", *CLASSES])
    writer.writerow(["all", "", *(report["totals"][k] for k in CLASSES)])
    for group, key in (("carer", "by_carer"), ("service_user", "by_service_user")):
        for ident, counts in report[key].items():
            writer.writerow([group, ident, *(counts.get(k, 0) for k in CLASSES)])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


def _csv(header: list[str], rows: list[list[Any]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


FromParam = Annotated[date, Query(alias="from", description="local date, inclusive")]
ToParam = Annotated[date, Query(alias="to", description="local date, exclusive")]


@router.get("/durations", response_model=None)
def durations(store: StoreDep, user: CareReader, allowed: AllowedGateways,
              date_from: FromParam, date_to: ToParam,
              format: Literal["json", "csv"] = "json") -> dict[str, Any] | Response:
    """Length of stay against the planned length; short visits (under 75 % of planned)."""
    _period(date_from, date_to)
    report = durations_report(
        visits_between(store, date_from, date_to, allowed),
        adjustments_for(store.db, None if allowed is None else sorted(allowed)))
    report["period"] = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    if format == "json":
        return report
    columns = ["visits", "planned_minutes", "actual_minutes", "short"]
    rows = [["all", "", *(report["totals"][c] for c in columns)]]
    for group, key in (("carer", "by_carer"), ("service_user", "by_service_user")):
        rows += [[group, ident, *(t[c] for c in columns)] for ident, t in report[key].items()]
    return _csv(["group", "id", *columns], rows,
                f"homecall-durations-{date_from}-{date_to}.csv")


@router.get("/continuity", response_model=None)
def continuity(store: StoreDep, user: CareReader, allowed: AllowedGateways,
               date_from: FromParam, date_to: ToParam,
               format: Literal["json", "csv"] = "json") -> dict[str, Any] | Response:
    """Distinct carers who attended each person, per ISO week."""
    _period(date_from, date_to)
    report = continuity_report(visits_between(store, date_from, date_to, allowed))
    report["period"] = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    if format == "json":
        return report
    rows = [[person, week, n] for person, weeks in report["by_service_user"].items()
            for week, n in weeks.items()]
    return _csv(["service_user_id", "week", "distinct_carers"], rows,
                f"homecall-continuity-{date_from}-{date_to}.csv")


@router.get("/alert-response", response_model=None)
def alert_response(store: StoreDep, user: CareReader, allowed: AllowedGateways,
                   date_from: FromParam, date_to: ToParam,
                   format: Literal["json", "csv"] = "json",
                   standard: Annotated[str | None, Query(
                       pattern=r"^\d{1,5}:(0(\.\d+)?|1(\.0+)?)(,\d{1,5}:(0(\.\d+)?|1(\.0+)?)){0,3}$",
                       description="the service standard as seconds:share pairs, e.g. "
                                   "60:0.975,180:0.99 (the default)")] = None,
                   ) -> dict[str, Any] | Response:
    """How fast alerts were answered and resolved against the service standard (97.5 %
    within 60 s, 99 % within 180 s unless ``standard`` says otherwise), overall and by type,
    shift and month."""
    _period(date_from, date_to)
    chosen = STANDARD if standard is None else tuple(
        (int(seconds), float(share)) for seconds, share in
        (pair.split(":") for pair in standard.split(",")))
    report = alert_response_report(list_alerts(store, gateways=allowed), date_from, date_to,
                                   chosen)
    if format == "json":
        return report
    header = ["group", "key", "alerts", "cleared_before_answer", "to_answer", "unanswered"]
    for seconds, _ in chosen:
        header += [f"answered_within_{seconds}s", f"share_within_{seconds}s"]
    header += ["answer_s_median", "answer_s_p90", "resolved", "resolve_s_median"]

    def line(group: str, key: str, summary: dict[str, Any]) -> list[Any]:
        cells = [group, key, summary["alerts"], summary["cleared_before_answer"],
                 summary["to_answer"], summary["unanswered"]]
        for entry in summary["standard"]:
            share = entry["share"]
            cells += [entry["answered"], "" if share is None else f"{share:.4f}"]
        return [*cells, summary["answer_s_median"], summary["answer_s_p90"],
                summary["resolved"], summary["resolve_s_median"]]

    rows = [line("all", "", report["all"])]
    for name in ("type", "shift", "month"):
        rows += [line(name, key, summary) for key, summary in report[f"by_{name}"].items()]
    return _csv(header, [[("" if c is None else c) for c in r] for r in rows],
                f"homecall-alert-response-{date_from}-{date_to}.csv")


WeekParam = Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$",
                                 description="ISO week, e.g. 2026-W10")]


def _week(week: str) -> date:
    try:
        return date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"week: {err}") from err


@router.get("/billing.csv")
def billing(store: StoreDep, user: CareReader, allowed: AllowedGateways,
            week: WeekParam) -> Response:
    """One line per visit of the ISO week (Monday to Sunday, local time), corrections
    applied and flagged. The week's adjusted share is in ``X-Adjusted-Share``."""
    monday = _week(week)
    visits = visits_between(store, monday, monday + timedelta(days=7), allowed)
    adjustments = adjustments_for(store.db, None if allowed is None else sorted(allowed))
    text = billing_csv(visits, adjustments)
    summary = adjusted_share(billing_rows(visits, adjustments))
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="homecall-billing-{week}.csv"',
        "X-Adjusted-Share": f"{summary['share']:.4f}"})


@router.get("/billing-summary")
def billing_summary(store: StoreDep, user: CareReader, allowed: AllowedGateways,
                    week: WeekParam) -> dict[str, Any]:
    """The week's lines, how many were manually adjusted, and whether that is over 5 %."""
    monday = _week(week)
    visits = visits_between(store, monday, monday + timedelta(days=7), allowed)
    rows = billing_rows(visits, adjustments_for(
        store.db, None if allowed is None else sorted(allowed)))
    return {"week": week, **adjusted_share(rows)}


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carer_id: str = Field(min_length=1, max_length=64)
    arrived_at: datetime
    departed_at: datetime
    reason_code: str = Field(description="one of GET /api/reports/adjustment-reasons")
    note: str = Field(min_length=1, max_length=2000)


@router.get("/subject-access/{service_user_id}", response_model=None)
def subject_access_export(service_user_id: str, store: StoreDep, clock: ClockDep,
                          people: PeopleDep, user: UserManager, allowed: AllowedGateways,
                          format: Literal["json", "csv"] = "json",
                          ) -> dict[str, Any] | Response:
    """Everything held about one person (a manager; audited). ``format=csv``: their
    visits, one line each, in the billing export's columns."""
    try:
        export = subject_access(store, people, service_user_id, user.scope, allowed,
                                user.username, clock.now())
    except PersonNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    if format == "json":
        return export
    return Response(billing_csv(export["visits"]), media_type="text/csv; charset=utf-8")


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=512,
                        description="why (e.g. the person's erasure request and its date)")


@router.post("/erasure/{service_user_id}")
def erase(service_user_id: str, body: ErasureIn, store: StoreDep, clock: ClockDep,
          people: PeopleDep, settings: SettingsDep, user: UserManager) -> dict[str, Any]:
    """Erase one person's call-monitoring data and personal details now (a manager;
    audited), where the law allows: once their care has ended and the retention period after
    it is over (409 saying until when otherwise). The daily retention job does the same for
    everyone whose period has ended."""
    try:
        people.get_service_user(service_user_id, user.scope)
    except PersonNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    try:
        erased = erase_person(store, service_user_id, settings.retention_years,
                              user.username, body.reason, clock.now())
    except RetentionError as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    return {"service_user": service_user_id, "removed": erased.removed}


@router.get("/adjustment-reasons")
def adjustment_reasons(user: CareReader) -> dict[str, str]:
    return REASON_CODES


@router.post("/visits/{gateway_id}/{visit_id}/adjustments", status_code=201)
def adjust(gateway_id: str, visit_id: str, body: AdjustmentIn, store: StoreDep,
           clock: ClockDep, user: PeopleEditor, allowed: AllowedGateways) -> dict[str, Any]:
    """Correct one carer's attendance (coordinator or manager): kept beside the original,
    audited, flagged on the billing line."""
    require_visible(allowed, gateway_id, "gateway")
    try:
        adjustment_id = add_adjustment(store.db, gateway_id, visit_id, body.carer_id,
                                       body.arrived_at, body.departed_at, body.reason_code,
                                       body.note, user.username, clock.now())
    except AdjustmentError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    return {"id": adjustment_id}


@router.get("/visits/{gateway_id}/{visit_id}/adjustments")
def adjustments(gateway_id: str, visit_id: str, store: StoreDep, user: CareReader,
                allowed: AllowedGateways) -> list[dict[str, Any]]:
    """The corrections with the originals beside them, oldest first."""
    require_visible(allowed, gateway_id, "gateway")
    return adjustments_for(store.db, [gateway_id]).get((gateway_id, visit_id), [])
