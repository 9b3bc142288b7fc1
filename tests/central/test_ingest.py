"""Central's ingest against a real Mosquitto, on SQLite and PostgreSQL: idempotent storage,
acks, bad payloads kept aside with a reason while ingest carries on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.settings import CentralSettings
from gateway.delivery.journal import Journal, NewEvent
from homecall.clock import ManualClock
from homecall.wire import (
    AckMessage,
    Channel,
    EventEnvelope,
    EventType,
    Severity,
    gateway_client_id,
    topic,
)
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.conftest import wait_for
from tests.support.auth import log_in_admin

GW = "gw-ingest-1"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class GatewayClient:
    """A raw MQTT client holding the gateway's own credentials."""

    def __init__(self, broker: MosquittoBroker, gateway_id: str) -> None:
        self.acks: list[int] = []
        self.results: dict[int, int] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=gateway_client_id(gateway_id),
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(gateway_id, broker.passwords[gateway_id])
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        # a publish before the broker's CONNACK fails at once ("not currently connected")
        assert connected.wait(10), f"{gateway_id} did not connect to the broker"
        self.client.subscribe(topic(gateway_id, Channel.ACK), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(AckMessage.from_bytes(msg.payload).seq)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object,
                    props: object) -> None:
        self.results[mid] = int(getattr(rc, "value", rc))

    def publish(self, payload: bytes, gateway_id: str = GW) -> int:
        info = self.client.publish(topic(gateway_id, Channel.EVENTS), payload, qos=1)
        info.wait_for_publish(5)
        return info.mid

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def central(broker: MosquittoBroker, database_url: str) -> Iterator[TestClient]:
    """Central on each engine (SQLite and PostgreSQL) against the real broker."""
    broker.add_user(GW)
    settings = CentralSettings(
        database=database_url, mqtt_port=broker.port, mqtt_user=CENTRAL_USER,
        mqtt_password=broker.passwords[CENTRAL_USER], mqtt_client_id="central-test",
    )
    app = create_app(settings, clock=ManualClock(T0))
    with TestClient(app) as client:
        wait_for(lambda: client.get("/api/health").json()["broker_connected"],
                 message="central to connect")
        log_in_admin(client, app)
        yield client


def journal_events(tmp_path: Path, count: int) -> list[EventEnvelope]:
    journal = Journal(tmp_path / "gw.db", GW, "boot-1", synchronous="NORMAL")
    events = journal.append(
        [NewEvent(EventType.UNKNOWN_TAG, T0, float(i), severity=Severity.MEDIUM,
                  data={"tag": f"em4100:#{i:08x}"}) for i in range(count)],
        clock_ok=True,
    )
    journal.close()
    return events


def test_same_event_published_twice_is_stored_once_and_acked(
    central: TestClient, broker: MosquittoBroker, tmp_path: Path
) -> None:
    gateway = GatewayClient(broker, GW)
    try:
        first, second = journal_events(tmp_path, 2)
        gateway.publish(first.to_bytes())
        gateway.publish(first.to_bytes())
        gateway.publish(second.to_bytes())
        wait_for(lambda: 2 in gateway.acks, message="ack of seq 2")
        events = central.get("/api/events", params={"gateway": GW}).json()
        assert [e["seq"] for e in events] == [1, 2]
        alerts = central.get("/api/alerts", params={"gateway": GW}).json()
        assert [a["type"] for a in alerts] == ["unknown_tag", "unknown_tag"]
        assert central.get("/api/report").json()["events_duplicated"] == 0
    finally:
        gateway.close()


def test_ack_is_highest_contiguous_seq(
    central: TestClient, broker: MosquittoBroker, tmp_path: Path
) -> None:
    gateway = GatewayClient(broker, GW)
    try:
        one, two, three = journal_events(tmp_path, 3)
        gateway.publish(one.to_bytes())
        wait_for(lambda: gateway.acks == [1], message="ack of seq 1")
        gateway.publish(three.to_bytes())
        wait_for(lambda: len(gateway.acks) >= 2, message="an ack after seq 3")
        assert gateway.acks == [1, 1]  # seq 3 is stored, but 2 is missing
        gateway.publish(two.to_bytes())
        wait_for(lambda: 3 in gateway.acks, message="ack of seq 3 once the gap fills")
    finally:
        gateway.close()


def test_bad_payloads_are_kept_aside_with_a_reason_and_ingest_carries_on(
    central: TestClient, broker: MosquittoBroker, tmp_path: Path
) -> None:
    gateway = GatewayClient(broker, GW)
    try:
        good = journal_events(tmp_path, 1)[0]
        tampered = json.loads(good.to_bytes())
        tampered["data"]["tag"] = "em4100:#forged"
        gateway.publish(b"{not json")
        gateway.publish(json.dumps({"seq": 1}).encode())
        gateway.publish(json.dumps(tampered).encode())
        gateway.publish(good.to_bytes())
        wait_for(lambda: 1 in gateway.acks, message="the good event to be acked")
        app = central.app
        store = app.state.store  # type: ignore[attr-defined]
        # (the good event's ack goes out before the batch's rejects are written)
        wait_for(lambda: len(store.rejected_messages()) >= 3, message="three set aside")
        reasons = [r["reason"] for r in store.rejected_messages()]
        assert len(reasons) == 3
        assert "bad EventEnvelope payload" in reasons[0]
        assert "gateway_id" in reasons[1] and "Field required" in reasons[1]
        assert "hash does not match" in reasons[2]
        events = central.get("/api/events", params={"gateway": GW}).json()
        assert [e["data"]["tag"] for e in events] == [good.data["tag"]]
    finally:
        gateway.close()


def test_gateway_cannot_publish_under_another_gateways_topic(
    central: TestClient, broker: MosquittoBroker, tmp_path: Path
) -> None:
    broker.add_user("gw-victim-1")
    gateway = GatewayClient(broker, GW)
    try:
        event = journal_events(tmp_path, 1)[0]
        mid = gateway.publish(event.to_bytes(), gateway_id="gw-victim-1")
        wait_for(lambda: mid in gateway.results, message="PUBACK")
        assert gateway.results[mid] == 0x87  # MQTT 5: not authorised, not silently dropped
        assert central.get("/api/events").json() == []
    finally:
        gateway.close()


def test_plan_upload_rejects_bad_plans_with_a_reason(central: TestClient) -> None:
    response = central.post("/api/plans", json={"gateway": "GW+1", "service_users": []})
    assert response.status_code == 422
    assert "invalid gateway id" in response.json()["detail"]
    response = central.post("/api/plans", json={
        "gateway": GW, "service_users": ["su-1"],
        "visits": [{"id": "v", "service_user": "su-9", "start": "2026-03-02T08:00",
                    "duration_min": 30}],
    })
    assert response.status_code == 422
    assert "unknown service user 'su-9'" in response.json()["detail"]
