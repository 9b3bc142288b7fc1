"""The wire contract between gateway and central (SPEC §5), defined once.

Both the gateway and central import this module: MQTT topic names, gateway id validation,
the event envelope and its hash chain, the status heartbeat, the ack and the command
messages. Nothing else in the code base builds a topic string or parses a payload by hand.
Every parse failure raises :class:`WireError` with a message that says what was wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PROTOCOL_VERSION = 1
TOPIC_ROOT = "homecall/v1/gw"
SHARED_EVENTS_SUBSCRIPTION = f"$share/central/{TOPIC_ROOT}/+/events"
ALL_STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/+/status"
GENESIS_HASH = "0" * 64

_GATEWAY_ID_RE = re.compile(r"[a-z0-9-]{3,64}")


class WireError(ValueError):
    """A message or identifier that does not follow the wire contract."""


def validate_gateway_id(gateway_id: str) -> str:
    """Return ``gateway_id`` if it matches ``[a-z0-9-]{3,64}``, else raise WireError."""
    if not isinstance(gateway_id, str) or not _GATEWAY_ID_RE.fullmatch(gateway_id):
        raise WireError(
            f"invalid gateway id {gateway_id!r}: must be 3-64 characters of a-z, 0-9 and '-'"
        )
    return gateway_id


class Channel(StrEnum):
    """The last element of a gateway topic."""

    EVENTS = "events"
    STATUS = "status"
    ACK = "ack"
    PLAN = "plan"
    CMD = "cmd"


def topic(gateway_id: str, channel: Channel) -> str:
    return f"{TOPIC_ROOT}/{validate_gateway_id(gateway_id)}/{channel.value}"


def parse_topic(topic_name: str) -> tuple[str, Channel]:
    """Split ``homecall/v1/gw/{id}/{channel}`` into (gateway_id, channel)."""
    prefix = TOPIC_ROOT + "/"
    if not topic_name.startswith(prefix):
        raise WireError(f"topic {topic_name!r} is not under {TOPIC_ROOT}/")
    rest = topic_name[len(prefix) :].split("/")
    if len(rest) != 2:
        raise WireError(f"topic {topic_name!r} must be {TOPIC_ROOT}/<gateway>/<channel>")
    gateway_id, channel_name = rest
    validate_gateway_id(gateway_id)
    try:
        channel = Channel(channel_name)
    except ValueError as err:
        raise WireError(f"unknown channel {channel_name!r} in topic {topic_name!r}") from err
    return gateway_id, channel


class EventType(StrEnum):
    """Every event a gateway (or central's backup rules) can record."""

    # attendance
    ARRIVAL = "arrival"
    DEPARTURE = "departure"
    # alerts (SPEC §3)
    VISIT_LATE = "visit_late"
    VISIT_MISSED = "visit_missed"
    CALL_OUTSIDE_TOLERANCE = "call_outside_tolerance"
    NO_ACCESS = "no_access"
    DOUBLE_UP_INCOMPLETE = "double_up_incomplete"
    SHORT_VISIT = "short_visit"
    DEPARTURE_MISSING = "departure_missing"
    UNPLANNED_VISIT = "unplanned_visit"
    UNKNOWN_TAG = "unknown_tag"
    KEYSAFE_UNEXPECTED = "keysafe_unexpected"
    KEYSAFE_LEFT_OPEN = "keysafe_left_open"
    DOOR_LEFT_OPEN = "door_left_open"
    DEVICE_FAULT = "device_fault"
    JOURNAL_FAULT = "journal_fault"
    GATEWAY_OFFLINE = "gateway_offline"
    # telemetry and bookkeeping
    DOOR = "door"
    KEYSAFE = "keysafe"
    BUTTON = "button"
    TAMPER = "tamper"
    BATTERY = "battery"
    DEVICE_RECOVERED = "device_recovered"
    JOURNAL_RECOVERED = "journal_recovered"
    PLAN_APPLIED = "plan_applied"
    PLAN_REJECTED = "plan_rejected"
    GATEWAY_STARTED = "gateway_started"
    JOURNAL_DAMAGED = "journal_damaged"
    EVENTS_DROPPED = "events_dropped"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


#: Default severity of each alert type (SPEC §3). Types absent here are not alerts.
ALERT_SEVERITY: dict[EventType, Severity] = {
    EventType.VISIT_LATE: Severity.HIGH,
    EventType.VISIT_MISSED: Severity.CRITICAL,
    EventType.CALL_OUTSIDE_TOLERANCE: Severity.HIGH,
    EventType.NO_ACCESS: Severity.CRITICAL,
    EventType.DOUBLE_UP_INCOMPLETE: Severity.HIGH,
    EventType.SHORT_VISIT: Severity.MEDIUM,
    EventType.DEPARTURE_MISSING: Severity.MEDIUM,
    EventType.UNPLANNED_VISIT: Severity.LOW,
    EventType.UNKNOWN_TAG: Severity.MEDIUM,
    EventType.KEYSAFE_UNEXPECTED: Severity.CRITICAL,
    EventType.KEYSAFE_LEFT_OPEN: Severity.HIGH,
    EventType.DOOR_LEFT_OPEN: Severity.HIGH,
    EventType.DEVICE_FAULT: Severity.MEDIUM,
    EventType.JOURNAL_FAULT: Severity.MEDIUM,
    EventType.GATEWAY_OFFLINE: Severity.HIGH,
}

#: Events that matter most when the journal must shed load (never dropped).
VITAL_TYPES: frozenset[EventType] = frozenset(ALERT_SEVERITY) | {
    EventType.ARRIVAL,
    EventType.DEPARTURE,
    EventType.JOURNAL_DAMAGED,
    EventType.EVENTS_DROPPED,
    EventType.PLAN_REJECTED,
    EventType.JOURNAL_RECOVERED,
}


def is_alert(event_type: EventType | str) -> bool:
    return EventType(event_type) in ALERT_SEVERITY


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_bytes(cls, payload: bytes | str) -> Any:
        try:
            return cls.model_validate_json(payload)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<payload>'}: {e['msg']}"
                for e in err.errors()
            )
            raise WireError(f"bad {cls.__name__} payload: {problems}") from err


class EventEnvelope(_Message):
    """One journalled event as published on ``gw/{id}/events``.

    ``seq`` is gap-free per gateway; ``hash`` chains each event to the previous one
    (``prev_hash``) so central can prove the journal was not cut or rewritten.
    """

    v: Literal[1] = 1
    id: str = Field(min_length=1, max_length=64)
    gateway_id: str
    seq: int = Field(ge=1)
    type: EventType
    time: datetime
    mono: float
    boot_id: str = Field(min_length=1, max_length=64)
    clock_ok: bool
    severity: Severity | None = None
    visit_id: str | None = None
    service_user_id: str | None = None
    carer_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        try:
            return validate_gateway_id(value)
        except WireError as err:
            raise ValueError(str(err)) from err

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        return value

    def expected_hash(self) -> str:
        return chain_hash(self.prev_hash, self.body_for_hash())

    def body_for_hash(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"hash"})

    def verify_hash(self) -> bool:
        return self.hash == self.expected_hash()


def canonical_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """sha256 over the previous hash and the canonical JSON of the event without ``hash``."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(canonical_json(body))
    return digest.hexdigest()


class DeviceStatus(_Message):
    name: str
    kind: str
    state: Literal["ok", "fault", "absent", "disabled"]
    detail: str | None = None
    firmware: str | None = None
    last_frame: datetime | None = None


class StatusMessage(_Message):
    """Retained on ``gw/{id}/status``: the heartbeat, or the last-will ``offline``."""

    v: Literal[1] = 1
    gateway_id: str
    state: Literal["online", "offline"]
    time: datetime | None = None
    boot_id: str | None = None
    clock_ok: bool | None = None
    backlog: int | None = None
    last_seq: int | None = None
    plan_version: int | None = None
    heartbeat_s: float | None = None
    devices: list[DeviceStatus] = Field(default_factory=list)


class AckMessage(_Message):
    """Central → gateway on ``gw/{id}/ack``: every seq <= ``seq`` is durably stored.

    ``max_seq`` (the highest seq central holds for the gateway, possibly above a gap) lets a
    gateway whose journal was replaced or damaged continue above it instead of reusing seqs.
    Central sends an ack after every stored batch and in reply to every ``status``.
    """

    v: Literal[1] = 1
    seq: int = Field(ge=0)
    max_seq: int | None = Field(None, ge=0)


class EventGap(_Message):
    """A tombstone on ``gw/{id}/events`` for a run of seqs central will never receive.

    ``dropped``: the gateway shed these low-value telemetry events to stay within its disk
    budget; ``prev_hash`` (the hash the first one chained to) and ``hash`` (the last one's
    hash, which the next event names as its ``prev_hash``) keep the chain verifiable across
    the gap. ``lost``: the gateway's journal was damaged or replaced and these seqs are gone
    (no hashes; the chain restarts and central flags the break).
    """

    v: Literal[1] = 1
    gap: Literal["dropped", "lost"]
    gateway_id: str
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)
    prev_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    types: dict[str, int] = Field(default_factory=dict)
    reason: str = ""

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        try:
            return validate_gateway_id(value)
        except WireError as err:
            raise ValueError(str(err)) from err

    @model_validator(mode="after")
    def _ordered(self) -> EventGap:
        if self.last_seq < self.first_seq:
            raise ValueError("last_seq must not be below first_seq")
        return self

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


class CommandMessage(_Message):
    """Central → gateway on ``gw/{id}/cmd``."""

    v: Literal[1] = 1
    command: Literal["refresh_plan", "test_mode", "identify", "resync"]
    args: dict[str, Any] = Field(default_factory=dict)
