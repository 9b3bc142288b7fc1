"""The weekly billing export a council portal takes: one CSV line per planned visit.

Columns (UTF-8, comma-separated, a header line, times in Europe/London as
``YYYY-MM-DD HH:MM``, durations in whole minutes): ``gateway``, ``visit_id``,
``service_user_id``, ``planned_start``, ``planned_minutes``, ``actual_start``,
``actual_end``, ``actual_minutes``, ``carers`` (carer ids joined with ``;``), ``status``,
``punctuality`` (the class the punctuality report gives), ``adjusted`` (``N`` until manual
adjustments exist), ``adjustment_reason``. Actual start is the first arrival, actual end
the last departure; a visit with no departure has no end or length (it is not billed by
guess)."""

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


def billing_rows(visits: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for visit in visits:
        arrivals = [a["arrived"] for a in visit["attendances"] if a["arrived"]]
        departures = [a["departed"] for a in visit["attendances"] if a["departed"]]
        complete = bool(arrivals) and len(departures) == len(visit["attendances"])
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
            "carers": ";".join(sorted({a["carer"] for a in visit["attendances"]})),
            "status": visit["status"], "punctuality": classify(visit),
            "adjusted": "N", "adjustment_reason": "",
        })
    return rows


def billing_csv(visits: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(billing_rows(visits))
    return out.getvalue()
