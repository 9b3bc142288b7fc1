"""The weekly billing export a council portal takes: one CSV line per planned visit.

Columns (UTF-8, comma-separated, a header line, times in Europe/London as
``YYYY-MM-DD HH:MM``, durations in whole minutes): ``gateway``, ``visit_id``,
``service_user_id``, ``planned_start``, ``planned_minutes``, ``actual_start``,
``actual_end``, ``actual_minutes``, ``carers`` (carer ids joined with ``;``), ``status``,
``punctuality`` (the class the punctuality report gives), ``adjusted`` (``Y`` when a
coordinator corrected a carer's times, else ``N``), ``adjustment_reason`` (the reason codes,
joined with ``;``). Actual start is the first arrival, actual end the last departure, after
corrections; a visit with a missing departure has no end or length (it is not billed by
guess). Councils expect manually adjusted lines to stay under 5 % of a week's lines:
:func:`adjusted_share` says the week's share and whether it is over."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.reports.punctuality import classify
from homecall.clock import parse_utc

LONDON = ZoneInfo("Europe/London")
COLUMNS = ("gateway", "visit_id", "service_user_id", "planned_start", "planned_minutes",
           "actual_start", "actual_end", "actual_minutes", "carers", "status", "punctuality",
           "adjusted", "adjustment_reason")


def _local(value: str | None) -> str:
    if not value:
        return ""
    return parse_utc(value).astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


ADJUSTED_LIMIT = 0.05


def _corrected(visit: dict[str, Any], adjustments: list[dict[str, Any]],
               ) -> tuple[list[dict[str, Any]], list[str]]:
    """The visit's attendances with the latest correction per carer applied."""
    by_carer = {a["carer"]: dict(a) for a in visit["attendances"]}
    reasons: list[str] = []
    for adjustment in adjustments:  # oldest first: the latest wins
        by_carer[adjustment["carer_id"]] = {
            "carer": adjustment["carer_id"], "arrived": adjustment["arrived_at"],
            "departed": adjustment["departed_at"]}
        if adjustment["reason_code"] not in reasons:
            reasons.append(adjustment["reason_code"])
    return list(by_carer.values()), reasons


def billing_rows(visits: list[dict[str, Any]],
                 adjustments: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
                 ) -> list[dict[str, str]]:
    rows = []
    for visit in visits:
        attendances, reasons = _corrected(
            visit, (adjustments or {}).get((visit["gateway"], visit["id"]), []))
        arrivals = [a["arrived"] for a in attendances if a["arrived"]]
        departures = [a["departed"] for a in attendances if a["departed"]]
        complete = bool(arrivals) and len(departures) == len(attendances)
        start = min(arrivals) if arrivals else None
        end = max(departures) if complete else None
        minutes = ""
        if start and end:
            minutes = str(round((parse_utc(end) - parse_utc(start)).total_seconds() / 60))
        rows.append({
            "gateway": visit["gateway"], "visit_id": visit["id"],
            "service_user_id": visit["service_user"],
            "planned_start": datetime.fromisoformat(visit["planned_start"])
            .strftime("%Y-%m-%d %H:%M"),
            "planned_minutes": str(visit["duration_min"]),
            "actual_start": _local(start), "actual_end": _local(end),
            "actual_minutes": minutes,
            "carers": ";".join(sorted({a["carer"] for a in attendances})),
            "status": visit["status"], "punctuality": classify(visit),
            "adjusted": "Y" if reasons else "N", "adjustment_reason": ";".join(reasons),
        })
    return rows


def adjusted_share(rows: list[dict[str, str]]) -> dict[str, Any]:
    adjusted = sum(r["adjusted"] == "Y" for r in rows)
    share = adjusted / len(rows) if rows else 0.0
    return {"lines": len(rows), "adjusted": adjusted, "share": share,
            "limit": ADJUSTED_LIMIT, "over_limit": share > ADJUSTED_LIMIT}


def billing_csv(visits: list[dict[str, Any]],
                adjustments: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
                ) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(billing_rows(visits, adjustments))
    return out.getvalue()
