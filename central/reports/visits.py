"""The visits of a period for reports and billing, or of one person for subject access and
erasure, from the record of planned visits (so a visit a later plan version no longer lists
still counts once it was due), within the caller's organisation: a period is every visit
whose local start falls from ``date_from`` inclusive to ``date_to`` exclusive. Three
queries whatever the period: the visits by their indexed day, then their attendances and
their alerts joined to the same selection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import date
from typing import Any

import sqlalchemy as sa

from central.db.tables import alerts, attendances, planned_visits
from central.store import Store
from central.views import visit_row
from homecall.plan import Visit


def visits_between(store: Store, date_from: date, date_to: date,
                   gateways: Collection[str] | None) -> list[dict[str, Any]]:
    chosen = [planned_visits.c.day >= date_from.isoformat(),
              planned_visits.c.day < date_to.isoformat(),
              planned_visits.c.removed_at.is_(None)]
    if gateways is not None:
        chosen.append(planned_visits.c.gateway_id.in_(sorted(gateways)))
    return _visits(store, chosen)


def visits_of_person(store: Store, gateway_id: str,
                     service_user_id: str) -> list[dict[str, Any]]:
    """Every visit ever planned for one person (removed ones too: they were planned)."""
    return _visits(store, [planned_visits.c.gateway_id == gateway_id,
                           planned_visits.c.service_user_id == service_user_id])


def _visits(store: Store, chosen: list[Any]) -> list[dict[str, Any]]:
    joined = sa.and_(planned_visits.c.gateway_id == attendances.c.gateway_id,
                     planned_visits.c.visit_id == attendances.c.visit_id)
    alert_join = sa.and_(planned_visits.c.gateway_id == alerts.c.gateway_id,
                         planned_visits.c.visit_id == alerts.c.visit_id)
    with store.db.read() as conn:
        rows = conn.execute(sa.select(planned_visits.c.gateway_id, planned_visits.c.visit)
                            .where(*chosen)).all()
        attended = conn.execute(sa.select(attendances).select_from(
            planned_visits.join(attendances, joined)).where(*chosen)
            .order_by(attendances.c.arrived_at)).all()
        alerted = conn.execute(sa.select(alerts.c.gateway_id, alerts.c.visit_id, alerts.c.type)
                               .select_from(planned_visits.join(alerts, alert_join))
                               .where(*chosen)).all()
    by_visit: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in attended:
        by_visit[(row.gateway_id, row.visit_id)].append(dict(row._mapping))
    alert_types: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in alerted:
        alert_types[(row.gateway_id, row.visit_id)].add(row.type)
    chosen_visits = []
    for row in rows:
        visit = Visit.model_validate_json(row.visit)
        key = (row.gateway_id, visit.id)
        chosen_visits.append(visit_row(row.gateway_id, visit, by_visit.get(key, []),
                                       alert_types.get(key, set())))
    chosen_visits.sort(key=lambda v: (v["planned_start"], v["gateway"], v["id"]))
    return chosen_visits
