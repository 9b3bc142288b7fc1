"""Length of stay and continuity of care over a period, from the same visit lines the billing
export bills (corrections applied).

- **Durations**: each visit whose length is known (first arrival to last departure) against
  its planned minutes; a visit is *short* when it lasted less than ``short_below`` of its
  planned length (default 75 %: a 30-minute call cut to 22 minutes or less). Totals, by carer
  (each carer on the visit) and by service user, and the short visits listed.
- **Continuity**: how many distinct carers attended each person in each ISO week (fewer is
  better continuity; commissioners watch people seen by many different carers).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from central.reports.billing import billing_rows

SHORT_BELOW = 0.75


def _tally() -> dict[str, int]:
    return {"visits": 0, "planned_minutes": 0, "actual_minutes": 0, "short": 0}


def durations_report(visits: list[dict[str, Any]],
                     adjustments: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
                     short_below: float = SHORT_BELOW) -> dict[str, Any]:
    totals = _tally()
    by_carer: dict[str, dict[str, int]] = defaultdict(_tally)
    by_person: dict[str, dict[str, int]] = defaultdict(_tally)
    short: list[dict[str, Any]] = []
    for row in billing_rows(visits, adjustments):
        if not row["actual_minutes"] or row["status"] == "cancelled":
            continue
        planned, actual = int(row["planned_minutes"]), int(row["actual_minutes"])
        is_short = actual < short_below * planned
        groups = [totals, by_person[row["service_user_id"]],
                  *(by_carer[c] for c in row["carers"].split(";") if c)]
        for group in groups:
            group["visits"] += 1
            group["planned_minutes"] += planned
            group["actual_minutes"] += actual
            group["short"] += int(is_short)
        if is_short:
            short.append({"gateway": row["gateway"], "visit_id": row["visit_id"],
                          "service_user": row["service_user_id"], "carers": row["carers"],
                          "planned_start": row["planned_start"], "planned_minutes": planned,
                          "actual_minutes": actual})
    return {"short_below": short_below, "totals": totals,
            "by_carer": dict(sorted(by_carer.items())),
            "by_service_user": dict(sorted(by_person.items())), "short_visits": short}


def continuity_report(visits: list[dict[str, Any]]) -> dict[str, Any]:
    """Distinct carers per person per ISO week (``2026-W10``), from the carers who attended."""
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for visit in visits:
        year, week, _ = datetime.fromisoformat(visit["planned_start"]).isocalendar()
        for attendance in visit["attendances"]:
            if attendance["arrived"]:
                seen[visit["service_user"]][f"{year}-W{week:02d}"].add(attendance["carer"])
    per_person = {person: {week: len(carers) for week, carers in sorted(weeks.items())}
                  for person, weeks in sorted(seen.items())}
    counts = [n for weeks in per_person.values() for n in weeks.values()]
    return {"by_service_user": per_person,
            "mean_distinct_carers": sum(counts) / len(counts) if counts else None,
            "most_distinct_carers": max(counts, default=None)}
