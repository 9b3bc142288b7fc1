"""The visits of a period, as the read model lists them (planned start in local time, from
``date_from`` inclusive to ``date_to`` exclusive), within the caller's organisation."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from central.store import Store
from central.views import list_visits


def visits_between(store: Store, date_from: date, date_to: date,
                   gateways: Collection[str] | None) -> list[dict[str, Any]]:
    chosen = []
    for visit in list_visits(store, gateways=gateways):
        day = datetime.fromisoformat(visit["planned_start"]).date()
        if date_from <= day < date_to:
            chosen.append(visit)
    chosen.sort(key=lambda v: (v["planned_start"], v["gateway"], v["id"]))
    return chosen
