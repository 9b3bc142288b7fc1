"""What storing one gateway event keeps current besides the event itself: ``attendances``
(arrival/departure pairs), ``alerts`` (raised once per (gateway, visit, type) whichever side
raised it first; superseded in either arrival order; auto-resolved by the event that clears
them) and the auto-resolution of alerts the event answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db.tables import alerts, attendances
from central.ingest.alerts import (
    Raise,
    SensorAlertBatch,
    auto_resolve,
    auto_resolve_for_event,
    may_auto_resolve,
    raise_alert,
)
from central.ingest.gateway_rows import upsert
from homecall.clock import format_utc
from homecall.wire import EventEnvelope, EventType, is_alert

# Statements built once and run with parameters; bind names start ``b_``.
_P = sa.bindparam

@dataclass(frozen=True, slots=True)
class _ProjectionStatements:
    """The projection's upserts for one dialect (built once: see the note on ``_P``)."""

    arrival: Any
    departure: Any


_ATTENDANCE_KEY = [attendances.c.gateway_id, attendances.c.visit_id, attendances.c.carer_id,
                   attendances.c.arrived_at]
_OPEN_ATTENDANCE = (
    sa.select(attendances.c.arrived_at)
    .where(attendances.c.gateway_id == _P("b_gw"), attendances.c.visit_id == _P("b_visit"),
           attendances.c.carer_id == _P("b_carer"), attendances.c.departed_at.is_(None))
    .order_by(attendances.c.arrived_at.desc()).limit(1)
)
_FIRST_ARRIVAL = (
    sa.select(attendances.c.carer_id, attendances.c.arrived_at)
    .where(attendances.c.gateway_id == _P("b_gw"), attendances.c.visit_id == _P("b_visit"))
    .order_by(attendances.c.arrived_at).limit(1)
)
_LATER_ALERTS = (
    sa.select(alerts.c.id, alerts.c.data)
    .where(alerts.c.gateway_id == _P("b_gw"), alerts.c.visit_id == _P("b_visit"),
           alerts.c.event_seq > _P("b_seq"))
    .order_by(alerts.c.event_seq)
)
_SUPERSEDE_EARLIER = (
    sa.update(alerts)
    .where(alerts.c.gateway_id == _P("b_gw"), alerts.c.visit_id == _P("b_visit"),
           alerts.c.type == _P("b_type"), alerts.c.status != "superseded",
           alerts.c.event_seq < _P("b_seq"))
    .values(status="superseded", superseded_by=_P("b_by"))
)
_SUPERSEDE_ONE = (
    sa.update(alerts).where(alerts.c.id == _P("b_id"))
    .values(status="superseded", superseded_by=_P("b_by"))
)
_PROJECTIONS: dict[str, _ProjectionStatements] = {}


def _projection_statements(conn: Connection) -> _ProjectionStatements:
    built = _PROJECTIONS.get(conn.dialect.name)
    if built is None:
        arrival = upsert(conn, attendances)
        departure = upsert(conn, attendances)
        built = _ProjectionStatements(
            arrival=arrival.on_conflict_do_update(index_elements=_ATTENDANCE_KEY, set_={
                "arrival_seq": arrival.excluded.arrival_seq,
                "punctuality": arrival.excluded.punctuality,
                "minutes_outside_window": arrival.excluded.minutes_outside_window,
            }),
            departure=departure.on_conflict_do_update(index_elements=_ATTENDANCE_KEY, set_={
                "departed_at": departure.excluded.departed_at,
                "departure_seq": departure.excluded.departure_seq,
            }),
        )
        _PROJECTIONS[conn.dialect.name] = built
    return built


def project(conn: Connection, event: EventEnvelope, now: datetime,
             sensor_alerts: SensorAlertBatch | None = None) -> None:
    data = event.data
    if sensor_alerts is not None and may_auto_resolve(event.type.value, event.visit_id, data):
        sensor_alerts.flush(conn)  # what it may clear must be in the table first
    auto_resolve_for_event(conn, event.gateway_id, event.type.value, event.visit_id,
                           event.carer_id, event.time, data, event.seq, now)
    when = format_utc(event.time)
    statements = _projection_statements(conn)
    if event.type is EventType.ARRIVAL and event.visit_id and event.carer_id:
        conn.execute(statements.arrival, {
            "gateway_id": event.gateway_id, "visit_id": event.visit_id,
            "carer_id": event.carer_id, "arrived_at": when, "arrival_seq": event.seq,
            "punctuality": data.get("punctuality"),
            "minutes_outside_window": data.get("minutes_outside_window"),
            "data": json.dumps(data),
        })
    elif event.type is EventType.DEPARTURE and event.visit_id and event.carer_id:
        arrived_at = data.get("arrived_at")
        if arrived_at is None:
            arrived_at = conn.execute(_OPEN_ATTENDANCE, {
                "b_gw": event.gateway_id, "b_visit": event.visit_id, "b_carer": event.carer_id,
            }).scalar() or when
        conn.execute(statements.departure, {
            "gateway_id": event.gateway_id, "visit_id": event.visit_id,
            "carer_id": event.carer_id, "arrived_at": arrived_at, "departed_at": when,
            "departure_seq": event.seq,
        })
    if is_alert(event.type) and event.severity is not None:
        raised = Raise(
            side="gateway", gateway_id=event.gateway_id, type=event.type.value,
            severity=event.severity.value, raised_at=event.time, visit_id=event.visit_id,
            service_user_id=event.service_user_id, carer_id=event.carer_id,
            event_seq=event.seq, data=data,
        )
        if sensor_alerts is not None and sensor_alerts.take(conn, raised, now):
            return  # no visit: nothing below applies
        alert_id, result = raise_alert(conn, raised, now)
        if result == "created" and event.type is EventType.VISIT_LATE and event.visit_id:
            # the arrival may have been stored first (a replay after an outage comes in
            # any order): the alert is cleared as it would have been had it come first
            arrived = conn.execute(_FIRST_ARRIVAL, {
                "b_gw": event.gateway_id, "b_visit": event.visit_id}).first()
            if arrived is not None:
                auto_resolve(conn, [alerts.c.id == alert_id], "carer_arrived",
                             f"carer {arrived.carer_id} arrived at {arrived.arrived_at}", now)
        if result != "created" or not event.visit_id:
            return
        supersedes = data.get("supersedes")
        if supersedes:
            conn.execute(_SUPERSEDE_EARLIER, {
                "b_gw": event.gateway_id, "b_visit": event.visit_id, "b_type": supersedes,
                "b_seq": event.seq, "b_by": alert_id,
            })
        # Alerts may arrive newest first (after an outage): a later alert that already
        # arrived and supersedes this type wins regardless of arrival order. (``supersedes``
        # lives in the alert's JSON data; the visit's few later alerts are read and checked
        # here, so no JSON operator, which differs between engines, is needed.)
        later_alerts = conn.execute(_LATER_ALERTS, {
            "b_gw": event.gateway_id, "b_visit": event.visit_id, "b_seq": event.seq})
        later = next((row.id for row in later_alerts
                      if json.loads(row.data).get("supersedes") == event.type.value), None)
        if later is not None:
            conn.execute(_SUPERSEDE_ONE, {"b_id": alert_id, "b_by": later})
