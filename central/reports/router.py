"""``/api/reports/...``: the punctuality report (JSON, or CSV with ``format=csv``) for a
period, and the weekly billing export (CSV). Staff who read care data, within their
organisation."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from central.auth.deps import AllowedGateways, CareReader
from central.deps import StoreDep
from central.reports.billing import billing_csv
from central.reports.punctuality import CLASSES, punctuality_report
from central.reports.visits import visits_between

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


@router.get("/billing.csv")
def billing(store: StoreDep, user: CareReader, allowed: AllowedGateways,
            week: Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$",
                                       description="ISO week, e.g. 2026-W10")]) -> Response:
    """One line per visit of the ISO week (Monday to Sunday, local time)."""
    year, number = int(week[:4]), int(week[6:])
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"week: {err}") from err
    text = billing_csv(visits_between(store, monday, monday + timedelta(days=7), allowed))
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="homecall-billing-{week}.csv"'})
