"""Central's store: the event record (:class:`~central.ingest.events.EventStore`) plus what
staff change: plan versions per gateway, alert status, and the audit trail.

Every unit of work takes its own connection from :class:`~central.db.engine.Database`'s pool
(``db.write()`` / ``db.read()``), so HTTP handlers never share ingest's connection. Every
write to a plan or an alert goes through the audit trail in the same transaction.

Organisation scoping: methods that routers call take ``gateways`` (``None`` = every
gateway; otherwise only these gateway ids). Something outside that set reads as absent
(:class:`NotFound`) or, for a write naming it, :class:`OutOfScope`; this module does no
authentication, it only applies the set it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.alerts.actors import Actor
from central.alerts.escalation import EscalationPolicy
from central.alerts.incidents import IncidentRecord, missing_for_resolution
from central.alerts.lifecycle import (
    AWAITING_ACKNOWLEDGEMENT,
    Acknowledge,
    AlertRecord,
    Command,
    Resolve,
)
from central.alerts.outcomes import OutcomeCatalogue
from central.db.tables import (
    alerts,
    checklist_ticks,
    escalation_policies,
    events,
    gateway_certificates,
    incidents,
    plans,
    rejected_messages,
    webhook_deliveries,
    webhook_subscriptions,
)
from central.db.tables import gateways as gateways_table
from central.ingest import StoreError
from central.ingest.alerts import (
    Raise,
    RaiseResult,
    SensorAlertBatch,
    load_for_update,
    move,
    raise_alert,
    write_audit,
)
from central.ingest.chain import PLACEHOLDER_TYPES
from central.ingest.events import EventStore, StoreResult
from central.ingest.gateway_rows import ensure_gateway, ensure_gateways
from central.ingest.statuses import sortable_utc
from central.people.tables import households
from central.plans.history import record_planned_visits
from homecall.clock import format_utc, parse_utc
from homecall.plan import GatewayPlan, PlanDocument

__all__ = ["NotFound", "OutOfScope", "Store", "StoreError", "StoreResult", "Superseded"]


class NotFound(StoreError):
    """No such thing (or none the caller may see)."""


class OutOfScope(StoreError):
    """A write names a gateway outside the caller's set."""


class Superseded(StoreError):
    """The alert was superseded by a newer one; staff work the newer alert."""


def in_scope(gateway_id: str, gateways: Collection[str] | None) -> bool:
    return gateways is None or gateway_id in gateways


def _load_incident(conn: Connection, alert_id: int) -> IncidentRecord | None:
    record = conn.execute(sa.select(incidents.c.record).where(
        incidents.c.alert_id == alert_id)).scalar()
    return IncidentRecord.model_validate_json(record) if record else None


class Store(EventStore):
    """The event record plus plans, alert work and the audit trail, on one database
    (``Store(db)``, ``db`` a :class:`~central.db.engine.Database`)."""

    # -- plans -----------------------------------------------------------------------------
    def save_plan(self, document: PlanDocument, now: datetime, who: str, *,
                  gateways: Collection[str] | None = None) -> GatewayPlan:
        """Store a new plan version for the document's gateway; returns the gateway's plan."""
        if not in_scope(document.gateway, gateways):
            raise OutOfScope(f"gateway {document.gateway!r} is not one of yours")
        with self.db.write() as conn:
            gateway = ensure_gateway(conn, document.gateway, lock=True)
            version = int(gateway.plan_version) + 1
            plan = document.for_gateway(version, gateway.tag_salt, issued_at=now)
            conn.execute(sa.insert(plans).values(
                gateway_id=document.gateway, version=version,
                document=document.model_dump_json(), gateway_plan=plan.model_dump_json(),
                created_at=format_utc(now), created_by=who,
            ))
            conn.execute(sa.update(gateways_table).where(
                gateways_table.c.id == document.gateway).values(plan_version=version))
            record_planned_visits(conn, document.gateway, version, document, now)
            write_audit(conn, now, who, "plan.upload", f"gateway:{document.gateway}",
                        {"version": version, "visits": len(document.visits)})
        return plan

    def current_plan(
        self, gateway_id: str, *, gateways: Collection[str] | None = None
    ) -> tuple[PlanDocument, GatewayPlan] | None:
        if not in_scope(gateway_id, gateways):
            return None
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(plans.c.document, plans.c.gateway_plan)
                .where(plans.c.gateway_id == gateway_id)
                .order_by(plans.c.version.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return (
            PlanDocument.model_validate_json(row.document),
            GatewayPlan.model_validate_json(row.gateway_plan),
        )

    # -- alerts ----------------------------------------------------------------------------
    def update_alert(self, alert_id: int, status: str, outcome: str | None, now: datetime,
                     who: str, *, gateways: Collection[str] | None = None) -> str:
        """The simple status update (acknowledged / resolved) kept for scripts and the demo,
        mapped onto the lifecycle as a monitor: ``resolved`` acknowledges first if nobody
        has, then resolves with ``outcome`` as the note (code ``other``; an outcome code
        from the catalogue is used as the code). Returns the previous status.
        :class:`NotFound` if there is no such alert in ``gateways``; :class:`Superseded` if
        a newer alert replaced it; the lifecycle's errors for anything else it refuses."""
        actor = Actor(who, "monitor")
        with self.db.write() as conn:
            row = load_for_update(conn, alert_id)
            if row is None or not in_scope(row.gateway_id, gateways):
                raise NotFound(f"no alert {alert_id}")
            previous = str(row.status)
            if previous == "superseded":
                raise Superseded("alert was superseded; work the newer one")
            if status == "acknowledged" or previous in ("open", "escalated"):
                move(conn, row, Acknowledge(), actor, now)
            if status == "resolved":
                catalogue = OutcomeCatalogue.default()
                code = outcome if outcome in catalogue.codes else "other"
                note = outcome or "resolved through the status update"
                row = load_for_update(conn, alert_id)
                assert row is not None
                move(conn, row, Resolve(outcome=code, note=note,
                                        incident=_load_incident(conn, alert_id)), actor, now)
        return previous

    def raise_by_central(self, raise_: Raise, now: datetime) -> tuple[int, RaiseResult]:
        """Store an alert central raised itself (backup detection, gateway supervision),
        under the one-alert-per-(gateway, visit, type) rule; ``received_at`` is ``now``."""
        if raise_.side != "central":
            raise StoreError("raise_by_central takes central's own raises")
        with self.db.write() as conn:
            ensure_gateway(conn, raise_.gateway_id, lock=True)
            return raise_alert(conn, raise_, now)

    def raise_many_by_central(self, raises: list[Raise], now: datetime, *,
                              per_transaction: int = 500) -> list[RaiseResult]:
        """:meth:`raise_by_central` for many raises (a regional outage's ``gateway_offline``
        alerts): ``per_transaction`` of them to a transaction, not one each, and those that
        belong to no visit and that no webhook subscriber hears of inserted together."""
        if any(raise_.side != "central" for raise_ in raises):
            raise StoreError("raise_many_by_central takes central's own raises")
        results: list[RaiseResult] = []
        for start in range(0, len(raises), per_transaction):
            chunk = raises[start:start + per_transaction]
            with self.db.write() as conn:
                ensure_gateways(conn, [raise_.gateway_id for raise_ in chunk])
                together = SensorAlertBatch()
                together.prefetch(conn, [raise_.gateway_id for raise_ in chunk])
                for raise_ in chunk:
                    results.append("created" if together.take(conn, raise_, now)
                                   else raise_alert(conn, raise_, now)[1])
                together.flush(conn)
        return results

    def move_alert(self, alert_id: int, command: Command, actor: Actor, now: datetime, *,
                   gateways: Collection[str] | None = None,
                   outcomes: OutcomeCatalogue | None = None) -> AlertRecord:
        """One lifecycle move on a stored alert, audited; returns the alert after it.

        :class:`NotFound` if there is no such alert in ``gateways``; the lifecycle's
        :class:`~central.alerts.lifecycle.IllegalTransition` (with the reason) for a move it
        does not allow, ``InvalidOutcome`` / ``IncidentIncomplete`` for a resolution that
        lacks what it needs."""
        with self.db.write() as conn:
            row = load_for_update(conn, alert_id)
            if row is None or not in_scope(row.gateway_id, gateways):
                raise NotFound(f"no alert {alert_id}")
            if isinstance(command, Resolve) and command.incident is None:
                command = replace(command, incident=_load_incident(conn, alert_id))
            after, _ = move(conn, row, command, actor, now, outcomes=outcomes)
        return after

    def incident(self, alert_id: int, *,
                 gateways: Collection[str] | None = None) -> IncidentRecord | None:
        """The alert's incident record (``None``: not started). :class:`NotFound` if there
        is no such alert in ``gateways``."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(alerts.c.gateway_id).where(
                alerts.c.id == alert_id)).first()
            if row is None or not in_scope(row.gateway_id, gateways):
                raise NotFound(f"no alert {alert_id}")
            return _load_incident(conn, alert_id)

    def change_incident(
        self, alert_id: int, change: Callable[[IncidentRecord], IncidentRecord], actor: Actor,
        now: datetime, *, gateways: Collection[str] | None = None,
    ) -> IncidentRecord:
        """Apply ``change`` to the alert's incident record (started by ``actor`` if there is
        none yet) and store it, audited; checklist ticks are also kept as rows (step, time,
        user). The record's own rules (:mod:`central.alerts.incidents`) raise
        ``IncidentError`` for what they refuse."""
        with self.db.write() as conn:
            row = load_for_update(conn, alert_id)
            if row is None or not in_scope(row.gateway_id, gateways):
                raise NotFound(f"no alert {alert_id}")
            before = _load_incident(conn, alert_id)
            record = before or IncidentRecord.start(str(alert_id), row.type, actor, now)
            after = change(record)
            values = {"record": after.model_dump_json(), "updated_at": format_utc(now),
                      "updated_by": actor.user_id,
                      "signed_off_by": after.sign_off.by if after.sign_off else None,
                      "signed_off_at": format_utc(after.sign_off.at) if after.sign_off else None}
            if before is None:
                conn.execute(sa.insert(incidents).values(alert_id=alert_id, **values))
            else:
                conn.execute(sa.update(incidents).where(incidents.c.alert_id == alert_id)
                             .values(**values))
            old_ticks = {t.step_id for t in (record.checklist.ticks if record.checklist else ())}
            for new_tick in (after.checklist.ticks if after.checklist else ()):
                if new_tick.step_id not in old_ticks:
                    conn.execute(sa.insert(checklist_ticks).values(
                        alert_id=alert_id, step=new_tick.step_id,
                        ticked_at=format_utc(new_tick.at), ticked_by=new_tick.by,
                        note=new_tick.note))
            write_audit(conn, now, actor.user_id,
                        "incident.started" if before is None else "incident.updated",
                        f"alert:{alert_id}", {"missing": len(missing_for_resolution(after))})
        return after

    # -- supervision: what the runner reads and records --------------------------------
    def supervision_rows(self, due_at: datetime | None = None) -> list[Any]:
        """Gateways' rows (state, last status, offline_since, caught_up_at). With ``due_at``,
        only those supervision must look at then: not online, clock not known good, or past
        (or without) their offline deadline; the rest are online and on time, and raise their
        own alerts."""
        query = sa.select(gateways_table).order_by(gateways_table.c.id)
        if due_at is not None:
            column = gateways_table.c
            query = query.where(sa.or_(
                column.state != "online", column.offline_deadline.is_(None),
                column.offline_deadline <= sortable_utc(due_at),
                column.clock_ok.is_(None), column.clock_ok.is_(False)))
        with self.db.read() as conn:
            return list(conn.execute(query))

    def next_offline_deadline(self, after: datetime) -> datetime | None:
        """The earliest offline deadline of an online gateway after ``after``."""
        with self.db.read() as conn:
            value = conn.execute(sa.select(sa.func.min(gateways_table.c.offline_deadline)).where(
                gateways_table.c.state == "online",
                gateways_table.c.offline_deadline > sortable_utc(after))).scalar()
        return parse_utc(value) if value else None

    def supervision_row(self, gateway_id: str) -> Any:
        """One gateway's row, as :meth:`supervision_rows` gives it."""
        with self.db.read() as conn:
            return conn.execute(sa.select(gateways_table)
                                .where(gateways_table.c.id == gateway_id)).one()

    def supervision_rows_of(self, gateway_ids: list[str]) -> dict[str, Any]:
        """The rows of ``gateway_ids``, as :meth:`supervision_rows` gives them, by id."""
        out: dict[str, Any] = {}
        with self.db.read() as conn:
            for start in range(0, len(gateway_ids), 1000):
                chunk = gateway_ids[start:start + 1000]
                out.update((row.id, row) for row in conn.execute(
                    sa.select(gateways_table).where(gateways_table.c.id.in_(chunk))))
        return out

    def plan_history(self, gateway_id: str) -> list[tuple[datetime, GatewayPlan]]:
        """Every plan version of the gateway with when it was stored, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(plans.c.created_at, plans.c.gateway_plan)
                .where(plans.c.gateway_id == gateway_id).order_by(plans.c.version)).all()
        return [(parse_utc(r.created_at), GatewayPlan.model_validate_json(r.gateway_plan))
                for r in rows]

    def backup_facts(self, gateway_id: str) -> tuple[list[Any], list[Any]]:
        """(the gateway's stored events in seq order, central's own raises) for rebuilding
        its household's rules state."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(events.c.seq, events.c.type, events.c.time, events.c.visit_id,
                          events.c.service_user_id, events.c.carer_id, events.c.clock_ok,
                          events.c.data, events.c.received_at)
                .where(events.c.gateway_id == gateway_id,
                       events.c.type.not_in(sorted(PLACEHOLDER_TYPES)))
                .order_by(events.c.seq)).all()
            raised = conn.execute(
                sa.select(alerts.c.type, alerts.c.visit_id, alerts.c.carer_id,
                          alerts.c.received_at)
                .where(alerts.c.gateway_id == gateway_id, alerts.c.raised_by == "central",
                       alerts.c.visit_id.is_not(None))).all()
        return list(rows), list(raised)

    def awaiting_acknowledgement(self) -> list[Any]:
        """Alerts nobody has taken yet (open or escalated), every column, oldest first."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(alerts).where(
                alerts.c.status.in_(sorted(AWAITING_ACKNOWLEDGEMENT))).order_by(alerts.c.id)))

    # -- gateway certificates --------------------------------------------------------------
    def record_certificate(self, serial: str, gateway_id: str, now: datetime,
                           not_after: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(sa.insert(gateway_certificates).values(
                serial=serial, gateway_id=gateway_id, issued_at=format_utc(now),
                not_after=format_utc(not_after)))
            write_audit(conn, now, f"gateway:{gateway_id}", "certificate.issued",
                        f"gateway:{gateway_id}", {"serial": serial})

    def revoke_certificates(self, gateway_id: str, now: datetime, who: str) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(gateway_certificates).where(
                gateway_certificates.c.gateway_id == gateway_id,
                gateway_certificates.c.revoked_at.is_(None)).values(revoked_at=format_utc(now)))
            write_audit(conn, now, who, "certificate.revoked", f"gateway:{gateway_id}", {})

    # -- escalation policies -------------------------------------------------------------
    def escalation_policy(self, organisation_id: str) -> EscalationPolicy:
        """The organisation's policy (the defaults until a manager sets one)."""
        with self.db.read() as conn:
            text = conn.execute(sa.select(escalation_policies.c.policy).where(
                escalation_policies.c.organisation_id == organisation_id)).scalar()
        return EscalationPolicy.model_validate_json(text) if text else EscalationPolicy()

    def set_escalation_policy(self, organisation_id: str, policy: EscalationPolicy,
                              now: datetime, who: str) -> None:
        with self.db.write() as conn:
            values = {"policy": policy.model_dump_json(), "updated_at": format_utc(now),
                      "updated_by": who}
            done = conn.execute(sa.update(escalation_policies).where(
                escalation_policies.c.organisation_id == organisation_id).values(**values))
            if not done.rowcount:
                conn.execute(sa.insert(escalation_policies).values(
                    organisation_id=organisation_id, **values))
            write_audit(conn, now, who, "escalation_policy.set",
                        f"organisation:{organisation_id}", policy.model_dump(mode="json"))

    def policies_by_gateway(self) -> dict[str, EscalationPolicy]:
        """Each household's gateway -> its organisation's policy (set ones only)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(households.c.gateway_id, escalation_policies.c.policy)
                .join(escalation_policies,
                      escalation_policies.c.organisation_id == households.c.organisation_id)
            ).all()
        parsed: dict[str, EscalationPolicy] = {}
        return {row.gateway_id: parsed.setdefault(row.policy,
                                                  EscalationPolicy.model_validate_json(row.policy))
                for row in rows}

    # -- webhooks ---------------------------------------------------------------------
    def add_webhook(self, organisation_id: str, url: str, secret: str, events: str,
                    now: datetime, who: str) -> int:
        with self.db.write() as conn:
            sub_id = conn.execute(sa.insert(webhook_subscriptions).values(
                organisation_id=organisation_id, url=url, secret=secret, events=events,
                created_at=format_utc(now)).returning(webhook_subscriptions.c.id)).scalar_one()
            write_audit(conn, now, who, "webhook.added", f"webhook:{sub_id}",
                        {"url": url, "events": events})
        return int(sub_id)

    def due_deliveries(self, now: datetime) -> list[Any]:
        """Pending deliveries due by ``now`` with their subscription's url and secret."""
        with self.db.read() as conn:
            return list(conn.execute(
                sa.select(webhook_deliveries, webhook_subscriptions.c.url,
                          webhook_subscriptions.c.secret)
                .join(webhook_subscriptions,
                      webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id)
                .where(webhook_deliveries.c.state == "pending",
                       webhook_deliveries.c.next_attempt_at <= format_utc(now))
                .order_by(webhook_deliveries.c.id)))

    def next_delivery_at(self) -> datetime | None:
        with self.db.read() as conn:
            value = conn.execute(sa.select(sa.func.min(webhook_deliveries.c.next_attempt_at))
                                 .where(webhook_deliveries.c.state == "pending")).scalar()
        return parse_utc(value) if value else None

    def record_delivery(self, delivery_id: int, *, attempts: int, state: str,
                        status: int | None, error: str | None, next_attempt_at: datetime | None,
                        now: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(webhook_deliveries).where(
                webhook_deliveries.c.id == delivery_id).values(
                attempts=attempts, state=state, last_status=status, last_error=error,
                next_attempt_at=format_utc(next_attempt_at) if next_attempt_at else None,
                delivered_at=format_utc(now) if state == "delivered" else None))

    def deliveries(self, alert_id: int | None = None, *,
                   organisation_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery log (bodies left out), oldest first; only ``organisation_id``'s
        subscriptions' deliveries when given (None: every organisation's)."""
        query = sa.select(
            webhook_deliveries.c.id, webhook_deliveries.c.subscription_id,
            webhook_deliveries.c.alert_id, webhook_deliveries.c.event,
            webhook_deliveries.c.attempts, webhook_deliveries.c.state,
            webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.last_status,
            webhook_deliveries.c.last_error, webhook_deliveries.c.delivered_at,
        ).order_by(webhook_deliveries.c.id)
        if alert_id is not None:
            query = query.where(webhook_deliveries.c.alert_id == alert_id)
        if organisation_id is not None:
            query = query.where(webhook_deliveries.c.subscription_id.in_(
                sa.select(webhook_subscriptions.c.id).where(
                    webhook_subscriptions.c.organisation_id == organisation_id)))
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def mark_offline(self, gateway_id: str, since: datetime) -> None:
        """Central counts the gateway offline from ``since`` (missed heartbeats)."""
        self.mark_offline_many([(gateway_id, since)])

    def mark_offline_many(self, silent: list[tuple[str, datetime]], *,
                          last_seen: dict[str, str] | None = None) -> None:
        """:meth:`mark_offline` for every (gateway, since) in ``silent``, in one transaction
        (a regional outage takes thousands offline in the same run). With ``last_seen`` (each
        gateway's ``last_seen`` as supervision read it), a gateway heard from since is left
        online."""
        if not silent:
            return
        column = gateways_table.c
        unheard = [] if last_seen is None else [column.last_seen == sa.bindparam("silent_seen")]
        with self.db.write() as conn:
            conn.execute(
                sa.update(gateways_table).where(
                    column.id == sa.bindparam("silent_id"), column.state == "online", *unheard,
                ).values(state="offline", offline_since=sa.bindparam("silent_since")),
                [{"silent_id": gateway_id, "silent_since": format_utc(since),
                  **({} if last_seen is None else {"silent_seen": last_seen.get(gateway_id)})}
                 for gateway_id, since in silent])

    def household_gateway(self, gateway_id: str) -> str | None:
        """The household id whose gateway this is (None: no household has it)."""
        with self.db.read() as conn:
            value = conn.execute(sa.select(households.c.id).where(
                households.c.gateway_id == gateway_id)).scalar()
        return None if value is None else str(value)

    def has_alert_since(self, gateway_id: str, alert_type: str, since: datetime) -> bool:
        with self.db.read() as conn:
            return conn.execute(sa.select(alerts.c.id).where(
                alerts.c.gateway_id == gateway_id, alerts.c.type == alert_type,
                alerts.c.raised_at >= format_utc(since)).limit(1)).first() is not None

    def latest_alert_times(self, alert_type: str) -> dict[str, datetime]:
        """When each gateway's latest alert of ``alert_type`` was raised (one query for all:
        supervision asks this of every offline gateway on every run)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(alerts.c.gateway_id, sa.func.max(alerts.c.raised_at))
                                .where(alerts.c.type == alert_type)
                                .group_by(alerts.c.gateway_id)).all()
        return {str(gateway_id): parse_utc(raised) for gateway_id, raised in rows if raised}

    def gateways_with_plans(self) -> set[str]:
        """The gateways that have ever had a plan (only those have visits to cover)."""
        with self.db.read() as conn:
            return set(conn.execute(sa.select(plans.c.gateway_id).distinct()).scalars())

    # -- audit and what ingest kept aside --------------------------------------------------
    def audit(self, now: datetime, who: str, action: str, target: str,
              detail: dict[str, Any]) -> None:
        with self.db.write() as conn:
            write_audit(conn, now, who, action, target, detail)

    def rejected_messages(self, limit: int = 1000) -> list[dict[str, Any]]:
        """What ingest refused, oldest first, with the reason (payloads left out)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(rejected_messages.c.id, rejected_messages.c.received_at,
                          rejected_messages.c.topic, rejected_messages.c.reason)
                .order_by(rejected_messages.c.id).limit(limit)
            )
            return [dict(row._mapping) for row in rows]
