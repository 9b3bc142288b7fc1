"""One simulated gateway as the real one behaves on the wire: its MQTT session settings
(keep-alive, session expiry, in-flight window), the mix of events a home sends, the
hash-chained :class:`~homecall.wire.EventEnvelope` bytes it seals with gap-free seqs, its
``online``/``offline`` status messages and the delivery state it keeps in memory (what is
unacked; when it connected, was first acked, stopped, and was seen offline).
:func:`self_check` proves its events verify against :mod:`homecall.wire` before a run.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import TypeAdapter

from homecall.wire import (
    ALERT_SEVERITY,
    GENESIS_HASH,
    EventEnvelope,
    EventType,
    StatusMessage,
    chain_hash,
)
from orchestration.benchmarks.fleet.errors import FleetError

KEEPALIVE_S = 30  # the real gateway's default keep-alive
SESSION_EXPIRY_S = 7 * 24 * 3600  # as the real gateway asks for
WINDOW = 256  # in-flight publishes per gateway, as the real outbox

#: What a home's gateway mostly sends, with a weight: door and key safe telemetry, carers'
#: arrivals and departures, now and then an unknown tag (an alert, stored as one by central).
EVENT_MIX: tuple[tuple[EventType, int], ...] = (
    (EventType.DOOR, 40),
    (EventType.KEYSAFE, 20),
    (EventType.ARRIVAL, 15),
    (EventType.DEPARTURE, 15),
    (EventType.BUTTON, 5),
    (EventType.UNKNOWN_TAG, 5),
)

_TIME = TypeAdapter(datetime)


@dataclass(eq=False)
class SimGateway:
    """The delivery state of one simulated gateway (its journal, in memory)."""

    gateway_id: str
    password: str
    #: the interval its status announces (central's offline deadline is three of them)
    heartbeat_s: float = 10.0
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    client: mqtt.Client | None = None
    seq: int = 0
    prev_hash: str = GENESIS_HASH
    acked: int = 0
    #: (seq, payload, first publish time) of every event not yet covered by an ack
    unacked: deque[tuple[int, bytes, float]] = field(default_factory=deque)
    last_progress: float = 0.0
    connected: bool = False
    connack_at: float | None = None
    first_ack_at: float | None = None
    stopped_at: float | None = None
    will_seen_at: float | None = None
    central_offline_at: float | None = None
    #: central's gateway_offline alert for it: when stored (monotonic, from its received_at)
    central_alert_at: float | None = None
    held_socket: socket.socket | None = None

    def next_event(self, rng: random.Random, now: datetime) -> tuple[int, bytes]:
        """Seal the next event of this gateway's hash chain (the bytes central verifies)."""
        self.seq += 1
        event_type = rng.choices([t for t, _ in EVENT_MIX], [w for _, w in EVENT_MIX])[0]
        severity = ALERT_SEVERITY.get(event_type)
        data: dict[str, Any] = {}
        if event_type in (EventType.DOOR, EventType.KEYSAFE):
            data = {"open": bool(self.seq % 2)}
        elif event_type is EventType.UNKNOWN_TAG:
            data = {"tag": "em4100:#" + secrets.token_hex(4)}
        body: dict[str, Any] = {
            "v": 1,
            "id": uuid.uuid4().hex,
            "gateway_id": self.gateway_id,
            "seq": self.seq,
            "type": event_type.value,
            "time": _TIME.dump_python(now, mode="json"),
            "mono": round(time.monotonic(), 6),
            "boot_id": self.boot_id,
            "clock_ok": True,
            "severity": severity.value if severity else None,
            "visit_id": None,
            "service_user_id": None,
            "carer_id": None,
            "data": data,
            "prev_hash": self.prev_hash,
        }
        body["hash"] = self.prev_hash = chain_hash(self.prev_hash, body)
        return self.seq, json.dumps(body, separators=(",", ":")).encode()

    def status(self, state: str = "online") -> bytes:
        if state == "offline":
            return StatusMessage(gateway_id=self.gateway_id, state="offline").to_bytes()
        return StatusMessage(
            gateway_id=self.gateway_id, state="online", time=datetime.now(UTC),
            boot_id=self.boot_id, clock_ok=True, backlog=len(self.unacked), last_seq=self.seq,
            plan_version=None, heartbeat_s=self.heartbeat_s,
        ).to_bytes()


def self_check() -> None:
    """The generator's hand-built events must be what central verifies (wire's own model)."""
    probe = SimGateway("gw-probe", "-")
    rng = random.Random(0)
    for _ in range(3):
        _, payload = probe.next_event(rng, datetime.now(UTC))
        envelope = EventEnvelope.from_bytes(payload)
        if not envelope.verify_hash():
            raise FleetError("generated event does not verify against homecall.wire")
