"""A stolen gateway against central's ingest: real Mosquitto with the policy, real central.

The hostile gateway (``gw-evil``) publishes with its own valid login what the broker lets
through (it only bounds sizes and topics): poison events, a forged event at the next seq,
a heartbeat claiming 10**15 events, and (through a broker without the policy, played by a
publish under central's login) a retained event. Each test asserts that the attack fails
and that a well-behaved gateway (``gw-good``) has every one of its events stored and acked
in the same run (the delivered count).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.settings import CentralSettings
from homecall.clock import ManualClock
from homecall.wire import (
    GENESIS_HASH,
    AckMessage,
    Channel,
    EventEnvelope,
    EventType,
    StatusMessage,
    chain_hash,
    topic,
)
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.conftest import wait_for
from tests.security.probe import SUCCESS, Probe, event_payloads
from tests.support.auth import log_in_admin

GOOD = "gw-good"
EVIL = "gw-evil"
#: Central's clock: half an hour after the events of ``event_payloads``.
NOW = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


class Central:
    """Central (API and ingest) on an SQLite file, against the test broker."""

    def __init__(self, broker: MosquittoBroker, db_path: Path) -> None:
        settings = CentralSettings(
            database=f"sqlite:///{db_path}", mqtt_port=broker.port, mqtt_user=CENTRAL_USER,
            mqtt_password=broker.passwords[CENTRAL_USER], mqtt_client_id="central-sec",
        )
        self.db_path = db_path
        self.app = create_app(settings, clock=ManualClock(NOW))
        self.client = TestClient(self.app)

    def __enter__(self) -> Central:
        self.client.__enter__()
        wait_for(lambda: self.client.get("/api/health").json()["broker_connected"],
                 message="central to connect")
        log_in_admin(self.client, self.app)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(None, None, None)

    def events(self, gateway_id: str) -> list[dict[str, Any]]:
        response = self.client.get("/api/events", params={"gateway": gateway_id,
                                                          "limit": 10000})
        assert response.status_code == 200, response.text
        return list(response.json())

    def rejected(self) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(
                "SELECT topic, reason, payload FROM rejected_messages ORDER BY id")]
        finally:
            conn.close()


class Gateway(Probe):
    """A gateway login that also reads central's acks on its own ``ack`` topic."""

    def acked(self) -> int:
        acks = [AckMessage.from_bytes(p).seq
                for p in self.received(topic(self.username, Channel.ACK)) if p]
        return acks[-1] if acks else 0

    def events_topic(self) -> str:
        return topic(self.username, Channel.EVENTS)


@pytest.fixture
def gateways(broker: MosquittoBroker) -> Iterator[tuple[Gateway, Gateway]]:
    broker.add_user(GOOD)
    broker.add_user(EVIL)
    good, evil = Gateway(broker, GOOD), Gateway(broker, EVIL)
    try:
        for gateway in (good, evil):
            assert gateway.connect() == SUCCESS
            gateway.subscribe(topic(gateway.username, Channel.ACK))
        yield good, evil
    finally:
        good.close()
        evil.close()


@pytest.fixture
def central(broker: MosquittoBroker, tmp_path: Path,
            gateways: tuple[Gateway, Gateway]) -> Iterator[Central]:
    with Central(broker, tmp_path / "central.db") as running:
        yield running


def good_gateway_delivers(central: Central, good: Gateway, count: int = 20,
                          first_seq: int = 1) -> int:
    """``good`` publishes ``count`` chained events; returns how many central stored, once
    central acked them all."""
    for payload in event_payloads(GOOD, count, first_seq):
        good.publish_ok(good.events_topic(), payload)
    last = first_seq + count - 1
    wait_for(lambda: good.acked() >= last, timeout=30, message=f"{GOOD} acked to {last}")
    stored = [e["seq"] for e in central.events(GOOD)]
    assert stored == list(range(1, last + 1))
    return len([s for s in stored if s >= first_seq])


def envelope(gateway_id: str, seq: int, prev_hash: str, **fields: Any) -> EventEnvelope:
    """A correctly hashed event (what a gateway holding the login can forge at will)."""
    body = {
        "v": 1, "id": f"{gateway_id}-{seq}-{fields.pop('tag', 'x')}", "gateway_id": gateway_id,
        "seq": seq, "type": EventType.DOOR.value, "time": "2026-03-29T00:30:00Z",
        "mono": float(seq), "boot_id": "boot-1", "clock_ok": True, "severity": None,
        "visit_id": None, "service_user_id": None, "carer_id": None,
        "data": {"door": "front"}, "prev_hash": prev_hash, **fields,
    }
    return EventEnvelope.model_validate({**body, "hash": chain_hash(prev_hash, body)})


def test_poison_messages_are_set_aside_with_a_reason_and_the_good_gateway_flows(
    central: Central, gateways: tuple[Gateway, Gateway]
) -> None:
    good, evil = gateways
    chained = json.loads(event_payloads(EVIL, 1)[0])
    huge_seq = {**chained, "seq": 2**63}
    far_future = {**chained, "time": "9999-12-31T23:59:59-14:00"}
    implausible = envelope(EVIL, 1, GENESIS_HASH, time="2199-01-01T00:00:00Z", tag="2199",
                           type=EventType.KEYSAFE_UNEXPECTED.value, severity="critical")
    garbage = b"\x00garbage" * 7000  # 56 KB: under the broker's limit, kept only in part
    for payload in (json.dumps(huge_seq).encode(), json.dumps(far_future).encode(),
                    implausible.to_bytes(), garbage):
        evil.publish_ok(evil.events_topic(), payload)
    assert good_gateway_delivers(central, good) == 20
    wait_for(lambda: len(central.rejected()) >= 4, message="four messages kept aside")
    reasons = [r["reason"] for r in central.rejected()]
    assert "seq: Input should be less than or equal to 9007199254740992" in reasons[0]
    assert "outside 1970-01-01 .. 2200-01-01 UTC" in reasons[1]
    assert "implausible time 2199-01-01T00:00:00+00:00 is more than 1:00:00 ahead" in reasons[2]
    kept = central.rejected()[3]
    assert len(kept["payload"]) == 4096 and garbage.startswith(kept["payload"])
    assert f"payload {len(garbage)} bytes, sha256 {hashlib.sha256(garbage).hexdigest()}" \
        in kept["reason"]
    # Nothing of the attacker's was stored, and the 2199 event opened no alert.
    assert central.events(EVIL) == []
    assert central.client.get("/api/alerts", params={"gateway": EVIL}).json() == []


def test_a_message_the_store_refuses_is_set_aside_alone_never_rolling_back_its_batch(
    central: Central, gateways: tuple[Gateway, Gateway]
) -> None:
    good, evil = gateways
    # A real storage failure from the real database: this id is refused by a trigger.
    conn = sqlite3.connect(central.db_path, timeout=10)
    conn.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON events "
                 "WHEN NEW.id LIKE '%-poison' BEGIN SELECT RAISE(ABORT, 'poison'); END")
    conn.commit()
    conn.close()
    poison = envelope(EVIL, 1, GENESIS_HASH, tag="poison")
    fine = envelope(EVIL, 2, poison.hash, tag="fine")
    good_payloads = event_payloads(GOOD, 20)
    # Interleaved, so the poison shares batches with valid events of both gateways.
    evil.publish_ok(evil.events_topic(), poison.to_bytes())
    for i, payload in enumerate(good_payloads):
        good.publish_ok(good.events_topic(), payload)
        if i == 0:
            evil.publish_ok(evil.events_topic(), fine.to_bytes())
    wait_for(lambda: good.acked() >= 20, timeout=30, message=f"{GOOD} acked to 20")
    assert [e["seq"] for e in central.events(GOOD)] == list(range(1, 21))
    wait_for(lambda: central.events(EVIL), message="the attacker's valid event stored")
    assert [e["seq"] for e in central.events(EVIL)] == [2]
    wait_for(lambda: [r for r in central.rejected() if "storage failed" in r["reason"]],
             message="the refused event set aside")
    [kept] = [r for r in central.rejected() if "storage failed" in r["reason"]]
    assert "poison" in kept["reason"] and kept["payload"] == poison.to_bytes()
    assert evil.acked() == 0  # seq 1 is not stored: nothing is acked past it


def test_a_forged_event_at_the_next_seq_is_kept_aside_and_the_ack_stops_below_it(
    central: Central, gateways: tuple[Gateway, Gateway]
) -> None:
    good, evil = gateways
    first = envelope(EVIL, 1, GENESIS_HASH, tag="real")
    second = envelope(EVIL, 2, first.hash, tag="real")
    forged = envelope(EVIL, 3, second.hash, tag="forged", data={"door": "back"})
    real = envelope(EVIL, 3, second.hash, tag="real")
    for event in (first, second, forged):
        evil.publish_ok(evil.events_topic(), event.to_bytes())
    wait_for(lambda: evil.acked() == 3, message="the forged seq 3 stored and acked")
    evil.publish_ok(evil.events_topic(), real.to_bytes())  # the real event arrives second
    wait_for(lambda: evil.acked() == 2, message="the ack to drop below the conflict")
    assert good_gateway_delivers(central, good) == 20
    conflicts = central.client.get(f"/api/gateways/{EVIL}/conflicts").json()
    assert [c["seq"] for c in conflicts] == [3]
    assert conflicts[0]["stored"]["event"]["id"] == forged.id
    assert [c["event"]["id"] for c in conflicts[0]["conflicting"]] == [real.id]
    alerts = central.client.get("/api/alerts", params={"gateway": EVIL}).json()
    assert [(a["type"], a["data"]["seq"]) for a in alerts] == [("gateway_integrity", 3)]
    # Later events are stored but never acked past the conflict: the gateway keeps its copy.
    evil.publish_ok(evil.events_topic(), envelope(EVIL, 4, real.hash, tag="real").to_bytes())
    wait_for(lambda: 4 in [e["seq"] for e in central.events(EVIL)], message="seq 4 stored")
    assert evil.acked() == 2
    assert central.client.get(f"/api/gateways/{GOOD}/conflicts").json() == []

    # Staff compare the claims and a manager settles it: the real event replaces the forged
    # one, the forged one is kept as resolved, the alert closes, and the ack moves on at once.
    resolve = f"/api/gateways/{EVIL}/conflicts/3/resolve"
    wrong = central.client.post(resolve, json={"keep_hash": "0" * 64, "reason": "guess"})
    assert wrong.status_code == 409 and "not one of the claims" in wrong.json()["detail"]
    settled = central.client.post(resolve, json={
        "keep_hash": real.hash, "reason": "the gateway's journal holds this one"})
    assert settled.status_code == 200, settled.text
    assert settled.json()["contiguous_seq"] == 4
    wait_for(lambda: evil.acked() == 4, message="the ack past the settled conflict")
    [after] = central.client.get(f"/api/gateways/{EVIL}/conflicts").json()
    assert after["stored"]["event"]["id"] == real.id
    assert [(c["event"]["id"], c["resolved_at"] is not None)
            for c in after["conflicting"]] == [(real.id, True), (forged.id, True)]
    stored = {e["seq"]: e for e in central.events(EVIL)}
    assert stored[3]["id"] == real.id
    [alert] = central.client.get("/api/alerts", params={"gateway": EVIL}).json()
    assert alert["status"] == "resolved"
    assert central.client.post(resolve, json={
        "keep_hash": real.hash, "reason": "again"}).status_code == 409  # nothing open


def test_a_heartbeat_claiming_a_huge_last_seq_is_not_reported_as_lost_events(
    central: Central, gateways: tuple[Gateway, Gateway]
) -> None:
    good, evil = gateways
    status = StatusMessage(gateway_id=EVIL, state="online", time=NOW, last_seq=10**15)
    evil.publish_ok(topic(EVIL, Channel.STATUS), status.to_bytes())
    wait_for(lambda: any(g["id"] == EVIL and g["status"]
                         for g in central.client.get("/api/gateways").json()),
             message="the claim recorded")
    assert good_gateway_delivers(central, good) == 20
    report = central.client.get("/api/report").json()
    assert report["events_lost"] == 10_000  # counted only up to 10,000 above what is stored
    assert report["events_claimed_unverified"] == 10**15 - 10_000


def test_retained_events_are_kept_aside_and_cleared_at_start_and_while_running(
    broker: MosquittoBroker, tmp_path: Path, gateways: tuple[Gateway, Gateway]
) -> None:
    """A broker without the policy (played by central's login, which may retain on any
    topic) holds a retained event; central must not ingest it, and clears it."""
    good, _ = gateways
    writer = Probe(broker, CENTRAL_USER, client_id="central-writer")
    assert writer.connect() == SUCCESS
    evil_events = topic(EVIL, Channel.EVENTS)
    before = envelope(EVIL, 1, GENESIS_HASH, tag="retained-before")
    during = envelope(EVIL, 1, GENESIS_HASH, tag="retained-during")
    try:
        writer.publish_ok(evil_events, before.to_bytes(), retain=True)
        with Central(broker, tmp_path / "central.db") as central:
            wait_for(lambda: central.rejected(), message="the retained event set aside")
            writer.publish_ok(evil_events, during.to_bytes(), retain=True)
            wait_for(lambda: during.to_bytes() in [r["payload"] for r in central.rejected()],
                     message="the second set aside")
            assert good_gateway_delivers(central, good) == 20
            kept = central.rejected()
            # (each may be seen twice: by the start-up sweep and the shared subscription)
            assert {r["payload"] for r in kept} == {before.to_bytes(), during.to_bytes()}
            assert all("retained message on an events topic" in r["reason"] for r in kept)
            assert central.events(EVIL) == []
            assert_no_retained(broker, evil_events)
    finally:
        writer.close()


def assert_no_retained(broker: MosquittoBroker, topic_name: str) -> None:
    """A fresh subscriber gets no retained message on ``topic_name`` (its own marker, sent
    after subscribing, is the first thing it receives)."""
    reader = Probe(broker, CENTRAL_USER, client_id="central-reader")
    assert reader.connect() == SUCCESS
    try:
        reader.subscribe(topic_name)
        reader.publish_ok(topic_name, b"marker")
        received: Callable[[], list[bytes]] = lambda: reader.received(topic_name)  # noqa: E731
        wait_for(lambda: b"marker" in received(), message="the marker")
        assert received()[0] == b"marker", received()
    finally:
        reader.close()
