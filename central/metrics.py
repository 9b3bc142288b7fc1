"""``GET /metrics``: central's state in Prometheus text format, read from the database at
scrape time (so every process reports the same totals) plus this process's ingest queue.

Owned here: the collector and the route. Figures: events stored (by kind), alerts not yet
closed by severity and type, gateways by state, escalations made, webhook deliveries by
state, the ingest queue's depth and the age of the newest stored event (ingest lag). Only
counts and ids leave: no names, addresses or tags. Reading it needs a manager's or an
admin's login (Prometheus sends a bearer token from ``homecall central create-user``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from central.auth.deps import UserManager
from central.db.tables import alerts, escalations, events, gateways, webhook_deliveries
from central.ingest.session import Ingest
from central.store import Store
from homecall.clock import Clock, parse_utc

router = APIRouter(tags=["operations"])


class CentralCollector(Collector):
    def __init__(self, store: Store, clock: Clock, ingest: Ingest | None) -> None:
        self.store = store
        self.clock = clock
        self.ingest = ingest

    def collect(self) -> Iterator[Metric]:
        with self.store.db.read() as conn:
            stored = conn.execute(sa.select(events.c.type, sa.func.count())
                                  .group_by(events.c.type)).all()
            open_alerts = conn.execute(
                sa.select(alerts.c.severity, alerts.c.type, sa.func.count())
                .where(alerts.c.status.in_(["open", "escalated", "acknowledged"]))
                .group_by(alerts.c.severity, alerts.c.type)).all()
            states = conn.execute(sa.select(gateways.c.state, sa.func.count())
                                  .group_by(gateways.c.state)).all()
            escalated = conn.execute(sa.select(sa.func.count()).select_from(escalations)
                                     ).scalar_one()
            deliveries = conn.execute(sa.select(webhook_deliveries.c.state, sa.func.count())
                                      .group_by(webhook_deliveries.c.state)).all()
            newest = conn.execute(sa.select(sa.func.max(events.c.received_at))).scalar()
        family = GaugeMetricFamily("homecall_events_stored", "events stored at central",
                                   labels=["type"])
        for event_type, count in stored:
            family.add_metric([str(event_type)], float(count))
        yield family
        family = GaugeMetricFamily("homecall_alerts_open", "alerts not yet resolved",
                                   labels=["severity", "type"])
        for severity, alert_type, count in open_alerts:
            family.add_metric([str(severity), str(alert_type)], float(count))
        yield family
        family = GaugeMetricFamily("homecall_gateways", "gateways by state", labels=["state"])
        for state, count in states:
            family.add_metric([str(state)], float(count))
        yield family
        yield GaugeMetricFamily("homecall_escalations", "escalations made",
                                value=float(escalated))
        family = GaugeMetricFamily("homecall_webhook_deliveries", "webhook deliveries by state",
                                   labels=["state"])
        for state, count in deliveries:
            family.add_metric([str(state)], float(count))
        yield family
        if self.ingest is not None:
            yield GaugeMetricFamily("homecall_ingest_queue", "messages waiting in this "
                                    "process's ingest queue",
                                    value=float(self.ingest.queue_depth()))
        if newest:
            age = (self.clock.now() - _time(newest)).total_seconds()
            yield GaugeMetricFamily("homecall_newest_event_age_seconds",
                                    "seconds since central stored its newest event",
                                    value=max(age, 0.0))


def _time(value: str) -> datetime:
    return parse_utc(value)


@router.get("/metrics", response_class=Response)
def metrics(request: Request, user: UserManager) -> Response:
    """Prometheus text format (see the module docstring for the figures)."""
    registry = CollectorRegistry()
    registry.register(CentralCollector(request.app.state.store, request.app.state.clock,
                                       request.app.state.ingest))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
