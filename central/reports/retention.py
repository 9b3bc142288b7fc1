"""Retention and erasure: call-monitoring data about a person is kept for the retention period
(two years by default, ``retention_years``) after their care ended, then removed: the events
about them or their visits, attendances and manual corrections of those visits, the alerts
about them with their incident records, checklist ticks, escalations and webhook deliveries.
Audit entries about those alerts keep who did what and when, with the details (notes about
the person) removed. The person's record stays as a stub (id, household, care end,
``erased_at``) with name, date of birth, next of kin and notes removed, so plans and the
audit trail that name the id still resolve. The removed events' seqs become ``purged`` gap
ranges, so delivery counts stay true (they are not lost). What was removed is counted,
logged and audited, never its content.

:func:`purge_expired` is the scheduled job; :func:`erase_person` is the same removal for one
person on request, allowed once their retention period is over."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central import CentralError
from central.db.tables import (
    alerts,
    attendance_adjustments,
    attendances,
    audit,
    checklist_ticks,
    escalations,
    event_gaps,
    events,
    incidents,
    planned_visits,
    webhook_deliveries,
)
from central.ingest.alerts import write_audit
from central.people.tables import households, service_users
from central.store import Store
from homecall.clock import format_utc

log = logging.getLogger(__name__)

#: What an erased record keeps in place of the person's details.
ERASED_NAME = "(erased)"
ERASED_BIRTH_DATE = "1900-01-01"


class RetentionError(CentralError):
    """A person's data cannot be erased (yet): the message says why."""


def retention_ends(care_ended_on: date, years: int) -> date:
    """The first day the data may be purged: the same date ``years`` later (29 February
    becomes 28 February)."""
    try:
        return care_ended_on.replace(year=care_ended_on.year + years)
    except ValueError:
        return care_ended_on.replace(year=care_ended_on.year + years, day=28)


@dataclass(frozen=True, slots=True)
class Erased:
    service_user_id: str
    removed: dict[str, int]


def purge_expired(store: Store, now: datetime, years: int) -> list[Erased]:
    """The daily job: erase everyone whose retention period ended by ``now``."""
    with store.db.read() as conn:
        due = [(r.id, date.fromisoformat(r.care_ended_on)) for r in conn.execute(
            sa.select(service_users.c.id, service_users.c.care_ended_on).where(
                service_users.c.care_ended_on.is_not(None),
                service_users.c.erased_at.is_(None)).order_by(service_users.c.id))]
    done = [_erase(store, su, "retention", f"retention period of {years} years ended", now)
            for su, ended in due if retention_ends(ended, years) <= now.date()]
    if done:
        log.info("retention: erased %d people's data: %s", len(done),
                 _total([e.removed for e in done]))
    return done


def erase_person(store: Store, service_user_id: str, years: int, who: str, reason: str,
                 now: datetime) -> Erased:
    """Erase one person's data on request; :class:`RetentionError` while the law still
    requires it kept (care not ended, or inside the retention period) or already erased."""
    with store.db.read() as conn:
        row = conn.execute(sa.select(service_users.c.care_ended_on, service_users.c.erased_at)
                           .where(service_users.c.id == service_user_id)).first()
    if row is None:
        raise RetentionError(f"no service user {service_user_id!r}")
    if row.erased_at is not None:
        raise RetentionError(f"{service_user_id} was already erased at {row.erased_at}")
    if row.care_ended_on is None:
        raise RetentionError(f"{service_user_id} is still in care: set care_ended_on first; "
                             f"records are then kept for {years} years")
    until = retention_ends(date.fromisoformat(row.care_ended_on), years)
    if until > now.date():
        raise RetentionError(f"care records of {service_user_id} must be kept until {until} "
                             f"({years} years after care ended on {row.care_ended_on})")
    return _erase(store, service_user_id, who, reason, now)


def _erase(store: Store, service_user_id: str, who: str, reason: str,
           now: datetime) -> Erased:
    with store.db.read() as conn:
        gateway_id = conn.execute(
            sa.select(households.c.gateway_id).join(
                service_users, service_users.c.household_id == households.c.id)
            .where(service_users.c.id == service_user_id)).scalar_one()
    with store.db.read() as conn:  # every visit ever planned for them
        visit_ids = sorted(conn.execute(sa.select(planned_visits.c.visit_id).where(
            planned_visits.c.gateway_id == gateway_id,
            planned_visits.c.service_user_id == service_user_id)).scalars())
    at = format_utc(now)
    removed: dict[str, int] = {}
    with store.db.write() as conn:
        about = sa.or_(alerts.c.service_user_id == service_user_id,
                       alerts.c.visit_id.in_(visit_ids))
        alert_ids = sorted(int(i) for i in conn.execute(sa.select(alerts.c.id).where(
            alerts.c.gateway_id == gateway_id, about)).scalars())
        for table in (incidents, checklist_ticks, escalations, webhook_deliveries):
            removed[table.name] = _delete(conn, table, table.c.alert_id.in_(alert_ids))
        removed["alerts"] = _delete(conn, alerts, alerts.c.id.in_(alert_ids))
        # who did what to those alerts stays on record; what they wrote about the person goes
        removed["audit_details"] = int(conn.execute(
            sa.update(audit).where(audit.c.target.in_([f"alert:{i}" for i in alert_ids]))
            .values(detail=json.dumps({"erased": at}))).rowcount or 0)
        event_filter = sa.and_(events.c.gateway_id == gateway_id, sa.or_(
            events.c.service_user_id == service_user_id, events.c.visit_id.in_(visit_ids)))
        seqs = sorted(int(s) for s in conn.execute(
            sa.select(events.c.seq).where(event_filter)).scalars())
        removed["events"] = _delete(conn, events, event_filter)
        _record_purged(conn, gateway_id, seqs, at)
        for table in (attendances, attendance_adjustments):
            removed[table.name] = _delete(conn, table, sa.and_(
                table.c.gateway_id == gateway_id, table.c.visit_id.in_(visit_ids)))
        conn.execute(service_users.update().where(service_users.c.id == service_user_id)
                     .values(name=ERASED_NAME, date_of_birth=ERASED_BIRTH_DATE,
                             next_of_kin="[]", risk_notes="", medication="", erased_at=at))
        write_audit(conn, now, who, "service_user.erased", f"service_user:{service_user_id}",
                    {"reason": reason, "removed": removed})
    log.info("erased %s's data (%s): %s", service_user_id, reason, removed)
    return Erased(service_user_id, removed)


def _delete(conn: Connection, table: sa.Table, where: Any) -> int:
    return int(conn.execute(sa.delete(table).where(where)).rowcount or 0)


def _record_purged(conn: Connection, gateway_id: str, seqs: list[int], at: str) -> None:
    """The removed events' seqs as ``purged`` gap ranges (one per consecutive run)."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    for first_seq, last_seq in runs:
        conn.execute(sa.insert(event_gaps).values(
            gateway_id=gateway_id, first_seq=first_seq, last_seq=last_seq, gap="purged",
            payload=json.dumps({"gap": "purged", "first_seq": first_seq,
                                "last_seq": last_seq, "reason": "retention"}),
            received_at=at))


def _total(removed: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in removed:
        for name, n in counts.items():
            total[name] = total.get(name, 0) + n
    return total
