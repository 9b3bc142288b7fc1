"""Webhooks end to end against a real local HTTP receiver, on each engine: a new alert and
its escalation are queued with the change, posted signed (the receiver verifies the HMAC),
a 503 is retried after the back-off with the same body, and every attempt is in the log.
An organisation's webhooks hear only about its own households' alerts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from central.alerts.actors import SYSTEM
from central.alerts.lifecycle import Escalate
from central.db.engine import Database
from central.db.migrate import upgrade
from central.notify.delivery import WebhookSender
from central.notify.webhooks import SIGNATURE_HEADER, verify_signature
from central.people.models import HouseholdIn, OrganisationIn
from central.people.repository import People
from central.store import Store
from homecall.clock import ManualClock
from homecall.wire import EventType, Severity
from tests.central.test_store import GW, T0, Chain, pairs

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    def __init__(self) -> None:
        self.replies = [503]
        self.received: list[tuple[str, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                verify_signature(SECRET.encode(), self.headers[SIGNATURE_HEADER], body,
                                 datetime.now(UTC))
                receiver.received.append((self.headers["X-HomeCall-Event"], body))
                code = receiver.replies.pop(0) if receiver.replies else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store where org-1's household has the test gateway and org-2's another."""
    db = Database(database_url)
    upgrade(db)
    people = People(db, ManualClock(T0))
    for org_id, gateway in (("org-1", GW), ("org-2", "gw-org-2")):
        people.create_organisation(OrganisationIn(name=org_id), "test", org_id=org_id)
        people.create_household(HouseholdIn(gateway_id=gateway, address="1 Road"), org_id,
                                "test")
    yield Store(db)
    db.dispose()


def test_new_and_escalated_alerts_are_delivered_signed_and_a_503_is_retried(
    store: Store,
) -> None:
    receiver = Receiver()
    try:
        store.add_webhook("org-1", receiver.url, SECRET, "raised,escalated", T0, "admin")
        store.add_webhook("org-2", receiver.url, SECRET, "raised,escalated", T0, "admin")
        clock = ManualClock(T0)
        sender = WebhookSender(store, clock)
        chain = Chain()
        store.store_events(pairs(chain.next(EventType.NO_ACCESS, visit_id="v1",
                                            severity=Severity.CRITICAL)), T0)
        next_at = sender.deliver_due()
        assert next_at == T0 + timedelta(seconds=30)  # the 503: retried after the back-off
        [log] = store.deliveries()
        assert (log["state"], log["attempts"], log["last_status"]) == ("pending", 1, 503)
        clock.set(next_at)
        assert sender.deliver_due() is None
        [log] = store.deliveries()
        assert (log["state"], log["attempts"], log["last_status"]) == ("delivered", 2, 200)
        assert receiver.received[0] == receiver.received[1]  # the same bytes each time
        assert b'"event":"alert.raised"' in receiver.received[0][1]

        alert_id = log["alert_id"]
        store.move_alert(alert_id, Escalate("manager"), SYSTEM, clock.now())
        sender.deliver_due()
        assert [e for e, _ in receiver.received] == ["alert.raised", "alert.raised",
                                                      "alert.escalated"]
        assert b'"escalated_to":"manager"' in receiver.received[2][1]
        assert [d["state"] for d in store.deliveries(alert_id)] == ["delivered", "delivered"]
    finally:
        receiver.close()


def test_an_unreachable_receiver_is_logged_and_a_4xx_is_given_up(store: Store) -> None:
    receiver = Receiver()
    receiver.replies = [404]
    try:
        store.add_webhook("org-1", receiver.url, SECRET, "raised", T0, "admin")
        store.add_webhook("org-1", "http://127.0.0.1:9/nothing", SECRET, "raised", T0, "admin")
        chain = Chain()
        store.store_events(pairs(chain.next(EventType.UNKNOWN_TAG)), T0)
        WebhookSender(store, ManualClock(T0), timeout_s=2).deliver_due()
        gone, refused = store.deliveries()
        assert (gone["state"], gone["last_status"]) == ("failed", 404)
        assert refused["state"] == "pending" and "ConnectError" in refused["last_error"]
    finally:
        receiver.close()


def test_gateway_offline_raised_for_many_at_once_reaches_only_the_subscriber(
    store: Store,
) -> None:
    """A regional outage's ``gateway_offline`` alerts are stored a batch at a time; the
    organisation that subscribes still gets a delivery for its gateway's alert, and the
    gateways nobody subscribes to (another organisation's, or in no household) get none."""
    import json

    from central.supervision.runner import Supervisor
    from central.views import list_alerts

    store.add_webhook("org-1", "http://127.0.0.1:9/hook", SECRET, "raised", T0, "admin")
    gateways = [GW, "gw-org-2", *(f"gw-nobody-{n}" for n in range(5))]
    for gateway_id in gateways:
        store.record_status(gateway_id, json.dumps({
            "v": 1, "gateway_id": gateway_id, "state": "online", "clock_ok": True,
            "backlog": 0, "heartbeat_s": 10}), "online", T0)
    Supervisor(store, ManualClock(T0 + timedelta(seconds=31))).run_once()
    offline = {a["gateway"]: a["id"] for a in list_alerts(store)
               if a["type"] == "gateway_offline"}
    assert set(offline) == set(gateways)
    assert [(d["alert_id"], d["event"]) for d in store.deliveries()] == [
        (offline[GW], "alert.raised")]
