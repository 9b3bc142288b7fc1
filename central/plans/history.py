"""The record of planned visits across plan versions (``planned_visits``): each new version
updates the visits it lists; one it no longer lists stays if it was already due when the
version was stored (it happened, or it was missed: reports and billing must still see it)
and is marked removed if it was still to come (the coordinator took it out of the plan)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from central.db.tables import planned_visits
from homecall.clock import format_utc
from homecall.plan import PlanDocument


def record_planned_visits(conn: Connection, gateway_id: str, version: int,
                          document: PlanDocument | str, at: datetime | str) -> None:
    """Fold plan ``version`` (stored ``at``) into the gateway's planned visits."""
    if isinstance(document, str):
        document = PlanDocument.model_validate_json(document)
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    now_local = at.astimezone(ZoneInfo(document.timezone)).replace(tzinfo=None, microsecond=0)
    rows: list[dict[str, Any]] = [{
        "gateway_id": gateway_id, "visit_id": visit.id, "service_user_id": visit.service_user,
        "day": visit.start.date().isoformat(), "start_local": visit.start.isoformat(),
        "visit": visit.model_dump_json(), "plan_version": version, "removed_at": None,
    } for visit in document.visits]
    if rows:
        insert = (postgresql.insert(planned_visits) if conn.dialect.name == "postgresql"
                  else sqlite.insert(planned_visits))
        statement = insert.values(rows)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[planned_visits.c.gateway_id, planned_visits.c.visit_id],
            set_={name: statement.excluded[name] for name in (
                "service_user_id", "day", "start_local", "visit", "plan_version",
                "removed_at")}))
    listed = {visit.id for visit in document.visits}
    still_to_come = conn.execute(sa.select(planned_visits.c.visit_id).where(
        planned_visits.c.gateway_id == gateway_id, planned_visits.c.removed_at.is_(None),
        planned_visits.c.start_local >= now_local.isoformat())).scalars().all()
    dropped = sorted(set(still_to_come) - listed)
    if dropped:
        conn.execute(sa.update(planned_visits).where(
            planned_visits.c.gateway_id == gateway_id,
            planned_visits.c.visit_id.in_(dropped)).values(removed_at=format_utc(at)))
