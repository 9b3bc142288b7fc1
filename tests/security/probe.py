"""An MQTT 5 client for the security suite that records every answer the broker gives.

:class:`Probe` connects with a real login (a gateway's, or central's) and turns CONNACK,
SUBACK and PUBACK into return values (the MQTT 5 reason code), and keeps every message it
receives and every disconnect the broker sent it, so a test can assert what an attacker got
and what a well-behaved client kept getting.
"""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from homecall.wire import (
    GENESIS_HASH,
    Channel,
    EventEnvelope,
    EventType,
    chain_hash,
    gateway_client_id,
    topic,
)
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.conftest import wait_for

GRANTED_QOS1 = 0x01
SUCCESS = 0x00
UNSPECIFIED_ERROR = 0x80
NOT_AUTHORIZED = 0x87
PACKET_TOO_LARGE = 0x95


class Probe:
    """One MQTT 5 connection under ``username``'s login (a gateway's unless told)."""

    def __init__(self, broker: MosquittoBroker, username: str, *, client_id: str | None = None,
                 password: str | None = None) -> None:
        self.broker = broker
        self.username = username
        self.client_id = client_id or (
            username if username == CENTRAL_USER else gateway_client_id(username))
        self.password = password if password is not None else broker.passwords[username]
        self.connacks: list[int] = []
        self.session_present: list[bool] = []
        self.disconnects: list[int] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self._subacks: dict[int, list[int]] = {}
        self._pubacks: dict[int, int] = {}
        self._lock = threading.Lock()
        self.client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(self.username, self.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- paho callbacks (network thread) ---------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        with self._lock:
            self.connacks.append(int(reason.value))
            self.session_present.append(bool(flags.session_present))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        with self._lock:
            self.disconnects.append(int(reason.value))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        with self._lock:
            self._subacks[mid] = [int(r.value) for r in reasons]

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    props: Any) -> None:
        with self._lock:
            self._pubacks[mid] = int(reason.value)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    # -- what a test does -----------------------------------------------------------------
    def connect(self, *, clean_start: bool = True, session_expiry_s: int = 0) -> int:
        """Connect and return the CONNACK reason code (0 = accepted)."""
        properties = Properties(PacketTypes.CONNECT)
        if session_expiry_s:
            properties.SessionExpiryInterval = session_expiry_s
        before = len(self.connacks)
        self.client.reconnect_delay_set(min_delay=60, max_delay=60)  # no retry storms
        self.client.connect("127.0.0.1", self.broker.port, keepalive=30,
                            clean_start=clean_start, properties=properties)
        self.client.loop_start()
        wait_for(lambda: len(self.connacks) > before or self.disconnects, timeout=10,
                 message=f"CONNACK for {self.client_id}")
        if len(self.connacks) == before:
            self.close()
            raise AssertionError(f"{self.client_id}: connection closed without a CONNACK")
        code = self.connacks[-1]
        if code != SUCCESS:
            self.close()
        return code

    def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe and return the SUBACK reason code (1 = granted QoS 1, 0x87 = refused)."""
        result, mid = self.client.subscribe(topic_filter, qos=qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, f"subscribe not sent: {result}"
        codes = wait_for(lambda: self._subacks.get(mid), message=f"SUBACK for {topic_filter}")
        return codes[0]

    def publish(self, topic_name: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (0x87 = refused)."""
        info = self.client.publish(topic_name, payload, qos=1, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish not sent: {info.rc}"
        wait_for(lambda: info.mid in self._pubacks, timeout=10,
                 message=f"PUBACK for {topic_name}")
        return self._pubacks[info.mid]

    def puback(self, mid: int) -> int | None:
        """The PUBACK reason code for message ``mid``, or None while it is outstanding."""
        with self._lock:
            return self._pubacks.get(mid)

    def publish_ok(self, topic_name: str, payload: bytes, *, retain: bool = False) -> None:
        code = self.publish(topic_name, payload, retain=retain)
        assert code < 0x80, f"{self.client_id}: publish to {topic_name} refused 0x{code:02X}"

    def received(self, topic_name: str | None = None) -> list[bytes]:
        with self._lock:
            return [bytes(m.payload) for m in self.messages
                    if topic_name is None or m.topic == topic_name]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event_payloads(gateway_id: str, count: int, first_seq: int = 1) -> list[bytes]:
    """``count`` valid, chained event envelopes (what a well-behaved gateway publishes)."""
    payloads: list[bytes] = []
    prev = GENESIS_HASH
    for seq in range(first_seq, first_seq + count):
        body = {
            "v": 1, "id": f"{gateway_id}-{seq}", "gateway_id": gateway_id, "seq": seq,
            "type": EventType.DOOR.value, "time": "2026-03-29T00:30:00Z", "mono": float(seq),
            "boot_id": "boot-1", "clock_ok": True, "severity": None, "visit_id": None,
            "service_user_id": None, "carer_id": None,
            "data": {"door": "front", "open": seq % 2 == 0}, "prev_hash": prev,
        }
        envelope = EventEnvelope.model_validate({**body, "hash": chain_hash(prev, body)})
        assert envelope.verify_hash()
        payloads.append(envelope.to_bytes())
        prev = envelope.hash
    return payloads


def deliver_and_count(gateway: Probe, listener: Probe, count: int = 20,
                      first_seq: int = 1) -> int:
    """The well-behaved ``gateway`` publishes ``count`` events; returns how many distinct ones
    ``listener`` received (waits until all have arrived, or fails)."""
    events_topic = topic(gateway.username, Channel.EVENTS)
    sent = event_payloads(gateway.username, count, first_seq)
    for payload in sent:
        gateway.publish_ok(events_topic, payload)
    wait_for(lambda: set(sent) <= set(listener.received(events_topic)), timeout=20,
             message=f"{count} events from {gateway.username} at {listener.client_id}")
    return len(set(sent) & set(listener.received(events_topic)))
