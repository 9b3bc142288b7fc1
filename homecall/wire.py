"""The wire contract between gateway and central, defined once.

Both the gateway and central import this module: MQTT topic names, gateway id validation,
the event envelope and its hash chain, the status heartbeat, the ack and the command
messages. Nothing else in the code base builds a topic string or parses a payload by hand.
Every parse failure raises :class:`WireError` with a message that says what was wrong.

Every field a gateway sends is bounded here (seqs, string and ``data`` sizes, times, gap
spans, the whole message's size), so a message that parses can always be stored; whether a
time is plausible against central's clock is central's check (:func:`implausible_time`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from homecall import HomeCallError

PROTOCOL_VERSION = 1
TOPIC_ROOT = "homecall/v1/gw"
SHARED_EVENTS_SUBSCRIPTION = f"$share/central/{TOPIC_ROOT}/+/events"
ALL_STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/+/status"
SHARED_STATUS_SUBSCRIPTION = f"$share/central/{ALL_STATUS_SUBSCRIPTION}"
GENESIS_HASH = "0" * 64

GATEWAY_CLIENT_ID_PREFIX = "gw-"
_GATEWAY_ID_RE = re.compile(r"[a-z0-9-]{3,64}")

# -- bounds of the wire contract -----------------------------------------------------------
#: Largest seq (and any count of seqs): 2**53, the largest integer every JSON reader, SQLite
#: and PostgreSQL bigint hold exactly.
MAX_SEQ = 2**53
#: Longest run of seqs one gap tombstone may cover. Central stores a gap as a range; the
#: bound keeps a forged or runaway gap from being a weapon against any per-seq bookkeeping.
MAX_GAP_SPAN = 1_000_000
#: Length of the opaque ids in an event (event id, boot id) and of references to plan
#: entities (visit, service user, carer pseudonym), in characters.
MAX_ID_CHARS = 64
MAX_REF_CHARS = 128
#: Size of an event's ``data`` object, as canonical JSON (UTF-8 bytes).
MAX_DATA_BYTES = 16 * 1024
#: Free-text fields: a gap's reason, a device's fault detail; short names and versions.
MAX_TEXT_CHARS = 512
MAX_NAME_CHARS = 64
#: Devices one status heartbeat may list; event types one gap may count.
MAX_DEVICES = 8
MAX_GAP_TYPES = 64
#: Largest message a gateway may publish (an event, a gap or a status). Every valid message
#: fits (tests/security/test_wire_bounds.py builds the largest of each); the broker refuses
#: bigger publishes from gateways (docs/security.md).
MAX_GATEWAY_MESSAGE_BYTES = 64 * 1024
#: Largest message central publishes: a signed plan (up to 2,000 visits in 1 MiB).
MAX_PLAN_MESSAGE_BYTES = 1024 * 1024
#: Wire times must fall in [WIRE_TIME_MIN, WIRE_TIME_MAX) once converted to UTC: every store
#: and language can hold these (9999-12-31T23:59:59-14:00 is year 10000 in UTC and cannot).
#: The lower bound admits a gateway whose clock never got set (1970, ``clock_ok: false``).
WIRE_TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
WIRE_TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
#: Central's plausibility window (its check, not the schema's): how far ahead of central's
#: clock, and how far behind it, a gateway with a good clock may date an event.
PLAUSIBLE_AHEAD = timedelta(hours=1)
PLAUSIBLE_BEHIND = timedelta(days=400)


class WireError(HomeCallError, ValueError):
    """A message or identifier that does not follow the wire contract."""


def validate_gateway_id(gateway_id: str) -> str:
    """Return ``gateway_id`` if it matches ``[a-z0-9-]{3,64}``, else raise WireError."""
    if not isinstance(gateway_id, str) or not _GATEWAY_ID_RE.fullmatch(gateway_id):
        raise WireError(
            f"invalid gateway id {gateway_id!r}: must be 3-64 characters of a-z, 0-9 and '-'"
        )
    return gateway_id


def gateway_client_id(gateway_id: str) -> str:
    """The MQTT client id a gateway must connect with: ``gw-{gateway_id}``.

    The broker refuses any other client id for a gateway's login (docs/security.md), so no
    login can take over another's session; central's client ids never start with ``gw-``.
    """
    return f"{GATEWAY_CLIENT_ID_PREFIX}{gateway_id}"


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
    # alerts (docs/rules.md)
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
    # raised by central itself: two different events claim one (gateway, seq)
    GATEWAY_INTEGRITY = "gateway_integrity"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


#: Default severity of each alert type (docs/rules.md). Types absent here are not alerts.
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


def _bounded_time(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must carry a UTC offset")
    # Aware comparison works on the instants without building a UTC datetime, which would
    # overflow for 9999-12-31T23:59:59-14:00.
    if not WIRE_TIME_MIN <= value < WIRE_TIME_MAX:
        raise ValueError(
            f"time {value.isoformat()} is outside {WIRE_TIME_MIN.year}-01-01 .. "
            f"{WIRE_TIME_MAX.year}-01-01 UTC"
        )
    return value


def _time_not_number(value: Any) -> Any:
    if isinstance(value, int | float):
        raise ValueError("time must be an ISO 8601 date-time with a UTC offset, not a number")
    return value


def _bounded_data(value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        return value
    # Fast path for what gateways write on every event: a few flat strings, small ints,
    # booleans and nulls, far under the limit even if every character were escaped.
    if len(value) <= 32:
        chars = 0
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                chars += len(key) + len(item)
            elif item is None or kind is bool or (kind is int and -MAX_SEQ <= item <= MAX_SEQ):
                chars += len(key) + 20
            else:
                break
        else:
            if 6 * chars + 8 * len(value) + 2 <= MAX_DATA_BYTES:
                return value
    try:
        size = len(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError) as err:
        raise ValueError(f"data is not plain JSON: {err}") from err
    if size > MAX_DATA_BYTES:
        raise ValueError(f"data is {size} bytes of JSON, over the {MAX_DATA_BYTES} byte limit")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


#: A timezone-aware time within the wire's year bounds.
WireTime = Annotated[datetime, BeforeValidator(_time_not_number),
                     AfterValidator(_bounded_time)]
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
Count = Annotated[int, Field(ge=0, le=MAX_SEQ)]
Ref = Annotated[str, Field(min_length=1, max_length=MAX_REF_CHARS)]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


def implausible_time(event_time: datetime, now: datetime) -> str | None:
    """Why ``event_time`` is implausible against ``now`` (central's clock), else None.

    For central's ingest: an event from a gateway with a good clock dated more than
    :data:`PLAUSIBLE_AHEAD` ahead of central or :data:`PLAUSIBLE_BEHIND` behind it should
    not open alerts as if it were current.
    """
    if event_time > now + PLAUSIBLE_AHEAD:
        return f"time {event_time.isoformat()} is more than {PLAUSIBLE_AHEAD} ahead of central"
    if event_time < now - PLAUSIBLE_BEHIND:
        return f"time {event_time.isoformat()} is more than {PLAUSIBLE_BEHIND.days} days old"
    return None


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()

    #: Largest payload :meth:`from_bytes` parses.
    max_bytes: ClassVar[int] = MAX_GATEWAY_MESSAGE_BYTES

    @classmethod
    def from_bytes(cls, payload: bytes | str) -> Any:
        if len(payload) > cls.max_bytes:
            raise WireError(
                f"bad {cls.__name__} payload: {len(payload)} bytes, over the "
                f"{cls.max_bytes} byte limit"
            )
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
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    gateway_id: str
    seq: Seq
    type: EventType
    time: WireTime
    mono: float = Field(ge=-1e12, le=1e12, allow_inf_nan=False)
    boot_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    clock_ok: bool
    severity: Severity | None = None
    visit_id: Ref | None = None
    service_user_id: Ref | None = None
    carer_id: Ref | None = None
    data: Annotated[dict[str, Any], AfterValidator(_bounded_data)] = Field(default_factory=dict)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        try:
            return validate_gateway_id(value)
        except WireError as err:
            raise ValueError(str(err)) from err

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
    name: Name
    kind: Name
    state: Literal["ok", "fault", "absent", "disabled"]
    detail: Text | None = None
    firmware: Name | None = None
    last_frame: WireTime | None = None


class CommandResult(_Message):
    """What the gateway did with central's last command (in its ``status``)."""

    id: str | None = Field(None, max_length=MAX_ID_CHARS)
    command: str = Field(max_length=MAX_ID_CHARS)
    result: Literal["done", "failed"]
    detail: str = Field("", max_length=200)
    at: WireTime


class StatusMessage(_Message):
    """Retained on ``gw/{id}/status``: the heartbeat, or the last-will ``offline``."""

    v: Literal[1] = 1
    gateway_id: str
    state: Literal["online", "offline"]
    time: WireTime | None = None
    boot_id: str | None = Field(None, max_length=MAX_ID_CHARS)
    clock_ok: bool | None = None
    backlog: Count | None = None
    last_seq: Count | None = None
    plan_version: Count | None = None
    heartbeat_s: float | None = Field(None, gt=0, le=86400, allow_inf_nan=False)
    devices: list[DeviceStatus] = Field(default_factory=list, max_length=MAX_DEVICES)
    last_command: CommandResult | None = None

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        try:
            return validate_gateway_id(value)
        except WireError as err:
            raise ValueError(str(err)) from err


class AckMessage(_Message):
    """Central → gateway on ``gw/{id}/ack``: every seq <= ``seq`` is durably stored.

    ``max_seq`` (the highest seq central holds for the gateway, possibly above a gap) lets a
    gateway whose journal was replaced or damaged continue above it instead of reusing seqs.
    Central sends an ack after every stored batch and in reply to every ``status``.
    """

    v: Literal[1] = 1
    seq: Count
    max_seq: Count | None = None


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
    first_seq: Seq
    last_seq: Seq
    prev_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    types: dict[Name, Count] = Field(default_factory=dict, max_length=MAX_GAP_TYPES)
    reason: Text = ""

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
        if self.last_seq - self.first_seq + 1 > MAX_GAP_SPAN:
            raise ValueError(
                f"gap {self.first_seq}..{self.last_seq} covers more than {MAX_GAP_SPAN} seqs"
            )
        return self

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


class CommandMessage(_Message):
    """Central → gateway on ``gw/{id}/cmd``. ``identify`` makes the home's hub show its
    identify pattern (an installer or carer can tell which home's gateway central reaches).
    The gateway reports the result in its next status as ``last_command``, matched by ``id``.
    """

    v: Literal[1] = 1
    command: Literal["identify"]
    id: str | None = Field(None, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9._-]+$")
    args: Annotated[dict[str, Any], AfterValidator(_bounded_data)] = Field(default_factory=dict)
