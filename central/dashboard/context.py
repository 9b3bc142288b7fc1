"""What the desk shows about an alert beyond its row: the person (name, next of kin), the
household (address, key-safe and access notes), and the visit with its window, all read
from central's own records (nothing here ever goes to a gateway). Also the board's order,
filters and the Europe/London formatting of times."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.people.models import Household, ServiceUser
from central.people.repository import NotFound as PersonNotFound
from central.people.repository import People
from central.store import Store
from central.views import alert_page, window_utc
from homecall.clock import parse_utc
from homecall.plan import GatewayPlan

LONDON = ZoneInfo("Europe/London")
#: Alert statuses the board shows by default: everything not yet closed.
ACTIVE = ("open", "escalated", "acknowledged")
SEVERITY_SHAPE = {"critical": "◆", "high": "▲", "medium": "●", "low": "○"}


def local(value: str | datetime | None, with_date: bool = False) -> str:
    """A UTC wire time as London wall-clock time (``14:05``, or ``Mon 2 Mar 14:05``)."""
    if not value:
        return ""
    moment = parse_utc(value) if isinstance(value, str) else value
    here = moment.astimezone(LONDON)
    return here.strftime("%a %-d %b %H:%M") if with_date else here.strftime("%H:%M")


@dataclass
class AlertCard:
    alert: dict[str, Any]
    household: Household | None = None
    person: ServiceUser | None = None
    window: tuple[datetime, datetime] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> str:
        return SEVERITY_SHAPE.get(self.alert["severity"], "●")

    @property
    def waiting_since(self) -> str:
        return str(self.alert.get("received_at") or self.alert["raised_at"])


class DeskContext:
    """Looks up people, households and plans once per page."""

    def __init__(self, store: Store, people: People) -> None:
        self.store = store
        self.people = people
        self._plans: dict[str, GatewayPlan | None] = {}
        self._households: dict[str, Household | None] = {}

    def plan(self, gateway_id: str) -> GatewayPlan | None:
        if gateway_id not in self._plans:
            current = self.store.current_plan(gateway_id)
            self._plans[gateway_id] = current[1] if current else None
        return self._plans[gateway_id]

    def household(self, gateway_id: str) -> Household | None:
        if gateway_id not in self._households:
            self._households[gateway_id] = self.people.household_for_gateway(gateway_id, None)
        return self._households[gateway_id]

    def card(self, alert: dict[str, Any]) -> AlertCard:
        card = AlertCard(alert, household=self.household(alert["gateway"]))
        plan = self.plan(alert["gateway"])
        person_id = alert.get("service_user")
        if plan is not None and alert.get("visit"):
            visit = next((v for v in plan.visits if v.id == alert["visit"]), None)
            if visit is not None:
                card.window = window_utc(plan, visit)
                person_id = person_id or visit.service_user
        if person_id:
            try:
                card.person = self.people.get_service_user(person_id, None)
            except PersonNotFound:
                card.person = None
        return card


def board_cards(store: Store, people: People, gateways: Collection[str] | None, *,
                severity: str | None = None, alert_type: str | None = None,
                status: str | None = None, organisation: str | None = None,
                ) -> list[AlertCard]:
    """The board's alerts: active ones (or ``status``) most severe first, then oldest."""
    if organisation:
        own = people.gateway_ids(organisation)
        gateways = own if gateways is None else frozenset(gateways) & own
    rows, _ = alert_page(store, alert_type=alert_type or None, severity=severity or None,
                         status=status or ACTIVE, limit=500, gateways=gateways)
    context = DeskContext(store, people)
    return [context.card(r) for r in rows]
