"""Punctuality and attendance over a period: each planned visit falls in exactly one class.

- ``on_time`` / ``early`` / ``late``: the first carer's arrival against the window;
- ``outside_tolerance``: arrived, but more than ``tolerance_min`` (default 60) outside the
  window (the council's missed-calls procedure treats it as a failed call);
- ``missed``, ``no_access``, ``cancelled``: not attended, with that reason;
- ``not_recorded``: attended on no record we hold (no tap, no alert yet: a future or
  still-open visit, or a carer who did not tap).

The electronic share is the visits with an arrival recorded in the home over the visits
that were due (not cancelled); councils' contracts commonly ask for 85 % or more.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

CLASSES = ("on_time", "early", "late", "outside_tolerance", "missed", "no_access",
           "cancelled", "not_recorded")
ELECTRONIC_TARGET = 0.85


def classify(visit: dict[str, Any], tolerance_min: int = 60) -> str:
    if visit["status"] in ("cancelled", "no_access", "missed"):
        return str(visit["status"])
    if not visit["attendances"] or visit["punctuality"] is None:
        return "not_recorded"
    if (visit.get("minutes_outside_window") or 0) > tolerance_min:
        return "outside_tolerance"
    return str(visit["punctuality"])


def punctuality_report(visits: list[dict[str, Any]], tolerance_min: int = 60,
                       ) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    by_carer: dict[str, Counter[str]] = defaultdict(Counter)
    by_person: dict[str, Counter[str]] = defaultdict(Counter)
    for visit in visits:
        kind = classify(visit, tolerance_min)
        totals[kind] += 1
        by_person[visit["service_user"]][kind] += 1
        first = visit["attendances"][0]["carer"] if visit["attendances"] else None
        if first is not None:
            by_carer[first][kind] += 1
    due = sum(totals.values()) - totals["cancelled"]
    recorded = sum(totals[k] for k in ("on_time", "early", "late", "outside_tolerance"))
    share = recorded / due if due else None
    return {
        "visits": len(visits),
        "totals": {k: totals[k] for k in CLASSES},
        "electronic_share": share,
        "electronic_target": ELECTRONIC_TARGET,
        "electronic_below_target": share is not None and share < ELECTRONIC_TARGET,
        "by_carer": {c: {k: n[k] for k in CLASSES if n[k]} for c, n in sorted(by_carer.items())},
        "by_service_user": {p: {k: n[k] for k in CLASSES if n[k]}
                            for p, n in sorted(by_person.items())},
    }
