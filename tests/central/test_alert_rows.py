"""Alerts at central on each engine: one alert per (gateway, visit, type) whichever side
raised it first (``raised_by``, ``received_at``, the other side's raise recorded), the
conditions that clear an alert by themselves (with the reason in the audit trail), and the
lifecycle moves stored with who and when."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from central.alerts.actors import Actor
from central.alerts.lifecycle import Acknowledge, IllegalTransition, Reopen, Resolve
from central.db.engine import Database
from central.db.migrate import upgrade
from central.db.tables import audit
from central.ingest.alerts import Raise
from central.store import Store
from central.views import list_alerts, report
from homecall.wire import EventType, Severity
from tests.central.test_store import GW, T0, Chain, pairs

MONA = Actor("mona", "monitor")
MARY = Actor("mary", "manager")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    db = Database(database_url)
    upgrade(db)
    yield Store(db)
    db.dispose()


def trail(store: Store, alert_id: int) -> list[tuple[str, str, dict[str, object]]]:
    with store.db.read() as conn:
        rows = conn.execute(sa.select(audit.c.who, audit.c.action, audit.c.detail)
                            .where(audit.c.target == f"alert:{alert_id}")
                            .order_by(audit.c.id)).all()
    return [(r.who, r.action, json.loads(r.detail)) for r in rows]


def central_late(visit: str = "v1") -> Raise:
    return Raise(side="central", gateway_id=GW, type="visit_late", severity="high",
                 raised_at=T0 + timedelta(minutes=2), visit_id=visit)


def test_central_raises_first_and_the_gateways_replay_is_recorded_on_the_same_alert(
    store: Store,
) -> None:
    deadline_stored = T0 + timedelta(minutes=2, seconds=1)
    alert_id, result = store.raise_by_central(central_late(), deadline_stored)
    assert result == "created"
    assert store.raise_by_central(central_late(), deadline_stored)[1] == "duplicate"
    chain = Chain()
    chain.next()
    late = chain.next(EventType.VISIT_LATE, visit_id="v1", severity=Severity.HIGH)
    replayed_at = T0 + timedelta(hours=3)
    store.store_events(pairs(late), replayed_at)
    store.store_events(pairs(late), replayed_at)  # redelivered: still one
    [alert] = list_alerts(store, GW)
    assert alert["id"] == alert_id
    assert alert["raised_by"] == "central"
    assert alert["received_at"] == "2026-03-02T08:02:01Z"
    assert alert["other_raise"]["side"] == "gateway"
    assert alert["other_raise"]["event_seq"] == 2
    assert alert["other_raise"]["received_at"] == "2026-03-02T11:00:00Z"
    [row] = report(store, GW)["alerts"]
    assert (row["raised_by"], row["received_at"]) == ("central", "2026-03-02T08:02:01Z")


def test_the_gateway_raises_first_and_centrals_later_raise_changes_only_the_record(
    store: Store,
) -> None:
    chain = Chain()
    store.store_events(pairs(chain.next(EventType.VISIT_LATE, visit_id="v1",
                                        severity=Severity.HIGH)), T0)
    _, result = store.raise_by_central(central_late(), T0 + timedelta(minutes=5))
    assert result == "recorded"
    [alert] = list_alerts(store, GW)
    assert (alert["raised_by"], alert["received_at"]) == ("gateway", "2026-03-02T08:00:00Z")
    assert alert["other_raise"]["side"] == "central"


def test_a_late_carer_clears_visit_late_with_the_reason(store: Store) -> None:
    chain = Chain()
    store.store_events(pairs(chain.next(EventType.VISIT_LATE, visit_id="v1",
                                        severity=Severity.HIGH)), T0)
    store.store_events(pairs(chain.next(EventType.ARRIVAL, visit_id="v1", carer_id="c1",
                                        data={"punctuality": "late"})), T0)
    [alert] = list_alerts(store, GW)
    assert alert["status"] == "resolved"
    assert alert["outcome"] == "auto:carer_arrived"
    assert alert["resolved_by"] == "system"
    [(who, action, detail)] = trail(store, alert["id"])
    assert (who, action, detail["reason"]) == ("system", "alert.auto_resolved", "carer_arrived")
    assert "c1" in str(detail["detail"])


def test_visit_late_replayed_after_its_arrival_is_cleared_too(store: Store) -> None:
    chain = Chain()
    late = chain.next(EventType.VISIT_LATE, visit_id="v1", severity=Severity.HIGH)
    arrival = chain.next(EventType.ARRIVAL, visit_id="v1", carer_id="c1")
    store.store_events(pairs(arrival, late), T0)  # newest first, one batch
    [alert] = list_alerts(store, GW)
    assert (alert["status"], alert["outcome"]) == ("resolved", "auto:carer_arrived")


def test_visit_missed_is_not_cleared_by_a_late_arrival(store: Store) -> None:
    chain = Chain()
    store.store_events(pairs(
        chain.next(EventType.VISIT_MISSED, visit_id="v1", severity=Severity.CRITICAL),
        chain.next(EventType.ARRIVAL, visit_id="v1", carer_id="c1"),
    ), T0)
    [alert] = list_alerts(store, GW)
    assert alert["status"] == "open"


def test_door_and_keysafe_left_open_clear_when_closed(store: Store) -> None:
    chain = Chain()
    store.store_events(pairs(
        chain.next(EventType.KEYSAFE_LEFT_OPEN, severity=Severity.HIGH),
        chain.next(EventType.DOOR_LEFT_OPEN, severity=Severity.HIGH),
        chain.next(EventType.KEYSAFE, data={"sensor": "k", "state": "closed"}),
    ), T0)
    by_type = {a["type"]: a for a in list_alerts(store, GW)}
    assert by_type["keysafe_left_open"]["outcome"] == "auto:keysafe_closed"
    assert by_type["door_left_open"]["status"] == "open"
    store.store_events(pairs(chain.next(EventType.DOOR, data={"sensor": "d",
                                                              "state": "closed"})), T0)
    by_type = {a["type"]: a for a in list_alerts(store, GW)}
    assert by_type["door_left_open"]["outcome"] == "auto:door_closed"


def test_centrals_backup_alert_is_resolved_as_raised_in_error_by_an_earlier_arrival(
    store: Store,
) -> None:
    alert_id, _ = store.raise_by_central(
        Raise(side="central", gateway_id=GW, type="visit_missed", severity="critical",
              raised_at=T0 + timedelta(hours=1), visit_id="v1"), T0 + timedelta(hours=1))
    chain = Chain()  # the arrival at T0+1min, seen only after the gateway came back
    store.store_events(pairs(chain.next(EventType.ARRIVAL, visit_id="v1", carer_id="c1")),
                       T0 + timedelta(hours=2))
    [alert] = list_alerts(store, GW)
    assert (alert["status"], alert["outcome"]) == ("resolved", "auto:raised_in_error")
    assert trail(store, alert_id)[-1][2]["reason"] == "raised_in_error"


def test_gateway_offline_is_resolved_when_the_gateway_is_back(store: Store) -> None:
    store.raise_by_central(Raise(side="central", gateway_id=GW, type="gateway_offline",
                                 severity="high", raised_at=T0), T0)
    status = json.dumps({"v": 1, "gateway_id": GW, "state": "online"})
    assert store.record_status(GW, status, "offline", T0) == []
    assert len(store.record_status(GW, status, "online", T0 + timedelta(minutes=9))) == 1
    [alert] = list_alerts(store, GW)
    assert (alert["status"], alert["outcome"]) == ("resolved", "auto:gateway_back")


def test_lifecycle_moves_are_stored_with_who_and_when_and_illegal_ones_refused(
    store: Store,
) -> None:
    chain = Chain()
    store.store_events(pairs(chain.next(EventType.UNKNOWN_TAG)), T0)
    [alert] = list_alerts(store, GW)
    with pytest.raises(IllegalTransition, match="acknowledge the alert before resolving"):
        store.move_alert(alert["id"], Resolve("false_alarm", "visitor's fob"), MONA, T0)
    store.move_alert(alert["id"], Acknowledge(), MONA, T0 + timedelta(minutes=1))
    store.move_alert(alert["id"], Resolve("false_alarm", "visitor's fob"), MONA,
                     T0 + timedelta(minutes=2))
    [alert] = list_alerts(store, GW)
    assert (alert["acknowledged_by"], alert["acknowledged_at"]) == ("mona",
                                                                    "2026-03-02T08:01:00Z")
    assert (alert["outcome"], alert["outcome_note"], alert["resolved_by"]) == (
        "false_alarm", "visitor's fob", "mona")
    with pytest.raises(IllegalTransition, match="manager"):
        store.move_alert(alert["id"], Reopen("wrong fob"), MONA, T0)
    store.move_alert(alert["id"], Reopen("it was not a visitor"), MARY, T0)
    [alert] = list_alerts(store, GW)
    assert (alert["status"], alert["outcome"]) == ("open", None)
    assert [a for _, a, _ in trail(store, alert["id"])] == [
        "alert.acknowledged", "alert.resolved", "alert.reopened"]
