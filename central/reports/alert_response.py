"""How fast alerts were answered, against the monitoring service standard.

An alert counts from when central stored it (``received_at``: when staff could first see
it) to its acknowledgement, and to its resolution. Monitoring centres are audited on the
share answered within set times (commonly 97.5 % within 60 s and 99 % within 180 s); the
standard here is :data:`STANDARD` unless the caller gives another. Alerts the system cleared
before anyone answered (a late carer who then arrived, a gateway back online) needed no
answer and are counted apart; an alert still unanswered counts as not answered in time.
Grouped overall, by type, by shift (day 08:00-20:00 and night, London time) and by month.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from homecall.clock import parse_utc

LONDON = ZoneInfo("Europe/London")
#: (answer within this many seconds, share that must be) pairs.
STANDARD: tuple[tuple[int, float], ...] = ((60, 0.975), (180, 0.99))
DAY_SHIFT = (8, 20)


def _seen_at(alert: dict[str, Any]) -> datetime:
    return parse_utc(alert["received_at"] or alert["raised_at"])


def _shift(at: datetime) -> str:
    hour = at.astimezone(LONDON).hour
    return "day" if DAY_SHIFT[0] <= hour < DAY_SHIFT[1] else "night"


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Group:
    def __init__(self) -> None:
        self.alerts = 0
        self.cleared_before_answer = 0
        self.answer_s: list[float] = []
        self.unanswered = 0
        self.resolve_s: list[float] = []

    def summary(self, standard: tuple[tuple[int, float], ...]) -> dict[str, Any]:
        due = len(self.answer_s) + self.unanswered
        within = []
        for seconds, target in standard:
            n = sum(s <= seconds for s in self.answer_s)
            share = n / due if due else None
            within.append({"within_s": seconds, "answered": n, "share": share,
                           "target": target,
                           "met": None if share is None else share >= target})
        return {"alerts": self.alerts, "cleared_before_answer": self.cleared_before_answer,
                "to_answer": due, "unanswered": self.unanswered, "standard": within,
                "answer_s_median": _percentile(self.answer_s, 0.5),
                "answer_s_p90": _percentile(self.answer_s, 0.9),
                "resolved": len(self.resolve_s),
                "resolve_s_median": _percentile(self.resolve_s, 0.5)}


def alert_response_report(alerts: list[dict[str, Any]], date_from: date, date_to: date,
                          standard: tuple[tuple[int, float], ...] = STANDARD,
                          ) -> dict[str, Any]:
    """``alerts`` as the read model lists them; those seen (London date) from ``date_from``
    inclusive to ``date_to`` exclusive are counted."""
    overall = _Group()
    groups: dict[str, dict[str, _Group]] = {"type": defaultdict(_Group),
                                            "shift": defaultdict(_Group),
                                            "month": defaultdict(_Group)}
    for alert in alerts:
        seen = _seen_at(alert)
        local = seen.astimezone(LONDON)
        if not date_from <= local.date() < date_to:
            continue
        keys = {"type": alert["type"], "shift": _shift(seen), "month": local.strftime("%Y-%m")}
        targets = [overall, *(groups[g][k] for g, k in keys.items())]
        for group in targets:
            group.alerts += 1
        if alert["acknowledged_at"]:
            waited = (parse_utc(alert["acknowledged_at"]) - seen).total_seconds()
            for group in targets:
                group.answer_s.append(max(0.0, waited))
        elif alert["resolved_at"]:  # cleared by the system before anyone answered
            for group in targets:
                group.cleared_before_answer += 1
        else:
            for group in targets:
                group.unanswered += 1
        if alert["resolved_at"] and alert["acknowledged_at"]:
            took = (parse_utc(alert["resolved_at"]) - seen).total_seconds()
            for group in targets:
                group.resolve_s.append(max(0.0, took))
    return {"period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
            "all": overall.summary(standard),
            **{f"by_{name}": {key: group.summary(standard)
                              for key, group in sorted(by.items())}
               for name, by in groups.items()}}
