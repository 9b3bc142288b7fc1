"""Subject access: everything central holds about one person, for a request under data
protection law. The person's record (with next of kin, risk notes), their household, each
visit planned for them with its attendances and any manual corrections, every alert about
them with its audit trail and incident record, and the audit entries that name them. As
JSON, and as a CSV of the visits. Asking is itself audited."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from central.db.tables import alerts, audit
from central.people.repository import People
from central.reports.adjustments import adjustments_for
from central.reports.visits import visits_of_person
from central.store import Store
from central.views import alert_detail
from homecall.clock import format_utc


def subject_access(store: Store, people: People, service_user_id: str,
                   scope: str | None, gateways: Collection[str] | None, who: str,
                   now: datetime) -> dict[str, Any]:
    """Raises the people repository's ``NotFound`` for a person outside ``scope``."""
    person = people.get_service_user(service_user_id, scope)
    household = people.get_household(person.household_id, scope)
    gateway_id = household.gateway_id
    corrections = adjustments_for(store.db, [gateway_id])
    visits = [
        {**v, "adjustments": corrections.get((gateway_id, v["id"]), [])}
        for v in visits_of_person(store, gateway_id, service_user_id)
    ]
    visit_ids = {v["id"] for v in visits}
    with store.db.read() as conn:
        alert_ids = [int(r.id) for r in conn.execute(
            sa.select(alerts.c.id).where(
                alerts.c.gateway_id == gateway_id,
                sa.or_(alerts.c.service_user_id == service_user_id,
                       alerts.c.visit_id.in_(sorted(visit_ids)) if visit_ids else sa.false()))
            .order_by(alerts.c.id))]
        named = [dict(r._mapping) for r in conn.execute(
            sa.select(audit.c.at, audit.c.who, audit.c.action, audit.c.target)
            .where(audit.c.target.like(f"%{service_user_id}%")).order_by(audit.c.id))]
    found_alerts = [a for a in (alert_detail(store, i, gateways=gateways) for i in alert_ids)
                    if a is not None]
    with store.db.write() as conn:
        conn.execute(sa.insert(audit).values(
            at=format_utc(now), who=who, action="subject_access.exported",
            target=f"service_user:{service_user_id}",
            detail=json.dumps({"visits": len(visits), "alerts": len(found_alerts)})))
    return {
        "exported_at": format_utc(now), "exported_by": who,
        "person": person.model_dump(mode="json"),
        "household": household.model_dump(mode="json"),
        "visits": visits, "alerts": found_alerts, "audit_naming_person": named,
    }
