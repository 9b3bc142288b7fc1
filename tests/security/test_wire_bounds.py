"""The wire schema bounds every field a hostile gateway controls.

A message that parses can always be stored: seqs within 1..2**53, times within years
storage holds, strings, ``data`` and whole messages bounded in size, gap spans bounded. Each
refusal is a :class:`WireError` that says what was wrong. Hypothesis then throws generated
envelopes, gaps and status messages (mostly almost-valid, with hostile values mixed in) at the
parsers: the answer is always a valid message or a clean WireError, never another exception.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homecall.wire import (
    GENESIS_HASH,
    MAX_DATA_BYTES,
    MAX_DEVICES,
    MAX_GAP_SPAN,
    MAX_GAP_TYPES,
    MAX_GATEWAY_MESSAGE_BYTES,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_REF_CHARS,
    MAX_SEQ,
    MAX_TEXT_CHARS,
    WIRE_TIME_MAX,
    WIRE_TIME_MIN,
    DeviceStatus,
    EventEnvelope,
    EventGap,
    EventType,
    StatusMessage,
    WireError,
    chain_hash,
    implausible_time,
)


def envelope_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1, "id": "e1", "gateway_id": "gw-bounds", "seq": 1, "type": "door",
        "time": "2026-03-29T00:30:00Z", "mono": 12.5, "boot_id": "boot-1", "clock_ok": True,
        "severity": None, "visit_id": None, "service_user_id": None, "carer_id": None,
        "data": {"door": "front"}, "prev_hash": GENESIS_HASH,
    }
    body.update(changes)
    return {**body, "hash": "a" * 64}


def parse_envelope(**changes: Any) -> EventEnvelope:
    return EventEnvelope.from_bytes(json.dumps(envelope_body(**changes)).encode())


def refused(parse: Any, *words: str) -> str:
    with pytest.raises(WireError) as caught:
        parse()
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


# -- events ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seq", [0, -1, MAX_SEQ + 1, 2**63, 2**64])
def test_seq_outside_1_to_2_pow_53_is_refused(seq: int) -> None:
    refused(lambda: parse_envelope(seq=seq), "seq")


def test_seq_bounds_are_inclusive() -> None:
    assert parse_envelope(seq=1).seq == 1
    assert parse_envelope(seq=MAX_SEQ).seq == MAX_SEQ


@pytest.mark.parametrize("when", [
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: no store can hold it
    "2200-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
])
def test_time_outside_storable_years_is_refused_clearly(when: str) -> None:
    message = refused(lambda: parse_envelope(time=when), "time", "outside")
    assert f"{WIRE_TIME_MIN.year}-01-01 .. {WIRE_TIME_MAX.year}-01-01 UTC" in message


@pytest.mark.parametrize("when", ["2026-03-29T00:30:00", "yesterday", "2026-02-30T00:00:00Z",
                                  12.5, None])
def test_time_must_be_a_real_time_with_an_offset(when: Any) -> None:
    refused(lambda: parse_envelope(time=when), "time")


def test_time_at_the_bounds() -> None:
    assert parse_envelope(time="1970-01-01T00:00:00Z").time == WIRE_TIME_MIN  # clock never set
    last = parse_envelope(time="2199-12-31T23:59:59.999999Z").time
    assert last < WIRE_TIME_MAX


def test_plausibility_against_centrals_clock_is_a_separate_check() -> None:
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    far_future = parse_envelope(time="2150-01-01T00:00:00Z").time  # storable, implausible
    assert "ahead of central" in (implausible_time(far_future, now) or "")
    assert "days old" in (implausible_time(now - timedelta(days=401), now) or "")
    assert implausible_time(now + timedelta(minutes=5), now) is None


@pytest.mark.parametrize(("field", "limit"), [
    ("id", MAX_ID_CHARS), ("boot_id", MAX_ID_CHARS), ("visit_id", MAX_REF_CHARS),
    ("service_user_id", MAX_REF_CHARS), ("carer_id", MAX_REF_CHARS),
])
def test_strings_are_bounded(field: str, limit: int) -> None:
    assert getattr(parse_envelope(**{field: "x" * limit}), field) == "x" * limit
    refused(lambda: parse_envelope(**{field: "x" * (limit + 1)}), field)


def test_data_is_bounded() -> None:
    fits = {"k": "x" * (MAX_DATA_BYTES - len('{"k":""}'))}
    assert parse_envelope(data=fits).data == fits
    refused(lambda: parse_envelope(data={"k": "x" * MAX_DATA_BYTES}), "data",
            f"{MAX_DATA_BYTES} byte limit")


@pytest.mark.parametrize("mono", ["NaN", "Infinity", "-Infinity", "1e300"])
def test_mono_must_be_a_finite_bounded_number(mono: str) -> None:
    payload = json.dumps(envelope_body(mono=0.0)).replace('"mono": 0.0', f'"mono": {mono}')
    refused(lambda: EventEnvelope.from_bytes(payload.encode()), "mono")


def test_an_oversized_payload_is_refused_before_parsing() -> None:
    payload = b" " * (MAX_GATEWAY_MESSAGE_BYTES + 1)
    refused(lambda: EventEnvelope.from_bytes(payload), f"{MAX_GATEWAY_MESSAGE_BYTES} byte limit")


# -- gaps and status --------------------------------------------------------------------------
def gap_bytes(**changes: Any) -> bytes:
    body = {"v": 1, "gap": "lost", "gateway_id": "gw-bounds", "first_seq": 5, "last_seq": 9,
            "prev_hash": None, "hash": None, "types": {}, "reason": "journal replaced"}
    body.update(changes)
    return json.dumps(body).encode()


def test_gap_range_is_ordered_and_bounded() -> None:
    assert EventGap.from_bytes(gap_bytes()).count == 5
    assert EventGap.from_bytes(gap_bytes(first_seq=1, last_seq=MAX_GAP_SPAN)).count == MAX_GAP_SPAN
    refused(lambda: EventGap.from_bytes(gap_bytes(first_seq=9, last_seq=5)), "below first_seq")
    refused(lambda: EventGap.from_bytes(gap_bytes(first_seq=1, last_seq=300_000_000)),
            f"more than {MAX_GAP_SPAN} seqs")
    refused(lambda: EventGap.from_bytes(gap_bytes(first_seq=MAX_SEQ, last_seq=MAX_SEQ + 1)),
            "last_seq")
    refused(lambda: EventGap.from_bytes(gap_bytes(types={f"t{i}": 1 for i in
                                                          range(MAX_GAP_TYPES + 1)})), "types")
    refused(lambda: EventGap.from_bytes(gap_bytes(types={"door": -1})), "types")


def status_bytes(**changes: Any) -> bytes:
    body = {"v": 1, "gateway_id": "gw-bounds", "state": "online",
            "time": "2026-03-29T00:30:00Z", "last_seq": 10, "backlog": 0, "devices": []}
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(("field", "value"), [
    ("last_seq", 2**63), ("last_seq", -1), ("backlog", MAX_SEQ + 1), ("plan_version", -1),
    ("time", "9999-12-31T23:59:59-14:00"), ("gateway_id", "GW/../+"),
    ("heartbeat_s", 0), ("devices", [{"name": "r", "kind": "rfid", "state": "ok"}] *
                         (MAX_DEVICES + 1)),
])
def test_status_fields_are_bounded(field: str, value: Any) -> None:
    refused(lambda: StatusMessage.from_bytes(status_bytes(**{field: value})), field)


def test_status_last_seq_up_to_the_seq_bound_parses() -> None:
    # Whether a claimed last_seq is true is central's check against what it stores.
    assert StatusMessage.from_bytes(status_bytes(last_seq=MAX_SEQ)).last_seq == MAX_SEQ


# -- the largest valid messages fit what the broker lets a gateway publish ---------------------
WORST = "\x01"  # a control character: six bytes once JSON-escaped


def test_the_largest_valid_messages_fit_the_broker_limit() -> None:
    data = {"k": WORST * ((MAX_DATA_BYTES - 8) // 6)}
    body = envelope_body(
        id=WORST * MAX_ID_CHARS, boot_id=WORST * MAX_ID_CHARS, visit_id=WORST * MAX_REF_CHARS,
        service_user_id=WORST * MAX_REF_CHARS, carer_id=WORST * MAX_REF_CHARS, data=data,
        seq=MAX_SEQ, type=EventType.DEPARTURE_MISSING.value, severity="critical",
        time="2199-12-31T23:59:59.999999+14:00", mono=-1e12,
    )
    event = EventEnvelope.model_validate(body)
    device = DeviceStatus(name=WORST * MAX_NAME_CHARS, kind=WORST * MAX_NAME_CHARS,
                          state="disabled", detail=WORST * MAX_TEXT_CHARS,
                          firmware=WORST * MAX_NAME_CHARS,
                          last_frame=datetime(2199, 12, 31, tzinfo=UTC))
    status = StatusMessage(gateway_id="g" * 64, state="offline", time=device.last_frame,
                           boot_id=WORST * MAX_ID_CHARS, clock_ok=False, backlog=MAX_SEQ,
                           last_seq=MAX_SEQ, plan_version=MAX_SEQ, heartbeat_s=86400.0,
                           devices=[device] * MAX_DEVICES)
    gap = EventGap(gap="dropped", gateway_id="g" * 64, first_seq=MAX_SEQ - MAX_GAP_SPAN + 1,
                   last_seq=MAX_SEQ, prev_hash="f" * 64, hash="f" * 64,
                   types={f"{i:02d}" + WORST * (MAX_NAME_CHARS - 2): MAX_SEQ
                          for i in range(MAX_GAP_TYPES)},
                   reason=WORST * MAX_TEXT_CHARS)
    for message in (event, status, gap):
        size = len(message.to_bytes())
        assert size <= MAX_GATEWAY_MESSAGE_BYTES, (type(message).__name__, size)
        assert type(message).from_bytes(message.to_bytes()) == message


# -- fuzz ------------------------------------------------------------------------------------
HOSTILE_INTS = st.sampled_from([0, -1, 1, 2**31, MAX_SEQ, MAX_SEQ + 1, 2**63, 2**64, 10**30])
HOSTILE_TIMES = st.sampled_from([
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-03-29T01:30:00+01:00",
    "2026-03-29T00:30:00", "2026-13-01T00:00:00Z", "", "1970-01-01T00:00:00Z",
    "2199-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "275760-09-13T00:00:00Z",
]) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats()
               | st.text(max_size=40))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
ANY_FIELD = JSON_VALUES | HOSTILE_INTS | HOSTILE_TIMES | st.text(min_size=60, max_size=200)


def _mutate(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=4, unique=True)):
        action = draw(st.sampled_from(["drop", "replace", "replace"]))
        if action == "drop":
            body.pop(key)
        else:
            body[key] = draw(ANY_FIELD)
    if draw(st.booleans()):
        body[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    return body


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    body = envelope_body(
        seq=draw(st.integers(min_value=1, max_value=MAX_SEQ) | HOSTILE_INTS),
        time=draw(HOSTILE_TIMES),
        type=draw(st.sampled_from([t.value for t in EventType] + ["", "arrival "])),
        data=draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5)),
        mono=draw(st.floats()),
    )
    body.pop("hash")
    if draw(st.booleans()):
        body["hash"] = chain_hash(body["prev_hash"], body)
    else:
        body["hash"] = draw(st.sampled_from(["a" * 64, "A" * 64, "", "0" * 65]))
    body = _mutate(draw, body)
    return json.dumps(body, allow_nan=True).encode()


@st.composite
def gaps(draw: st.DrawFn) -> bytes:
    first = draw(HOSTILE_INTS | st.integers(min_value=1, max_value=MAX_SEQ))
    last = draw(HOSTILE_INTS | st.integers(min_value=1, max_value=MAX_SEQ)
                | st.just(first + MAX_GAP_SPAN))
    body = json.loads(gap_bytes(first_seq=first, last_seq=last,
                                types=draw(st.dictionaries(st.text(max_size=70),
                                                           HOSTILE_INTS, max_size=70))))
    return json.dumps(_mutate(draw, body), allow_nan=True).encode()


@st.composite
def statuses(draw: st.DrawFn) -> bytes:
    device = {"name": draw(st.text(max_size=70)), "kind": "rfid",
              "state": draw(st.sampled_from(["ok", "fault", "broken"])),
              "last_frame": draw(HOSTILE_TIMES)}
    body = json.loads(status_bytes(last_seq=draw(HOSTILE_INTS), time=draw(HOSTILE_TIMES),
                                   devices=[device] * draw(st.integers(0, 10))))
    return json.dumps(_mutate(draw, body), allow_nan=True).encode()


def assert_clean(parser: Any, payload: bytes) -> None:
    try:
        message = parser.from_bytes(payload)
    except WireError:
        return
    # Accepted: it must round-trip and hold only storable values.
    assert type(message).from_bytes(message.to_bytes()) == message
    for name in ("seq", "first_seq", "last_seq", "backlog"):
        value = getattr(message, name, None)
        assert value is None or 0 <= value <= MAX_SEQ
    when = getattr(message, "time", None)
    assert when is None or WIRE_TIME_MIN <= when < WIRE_TIME_MAX


FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(envelopes() | st.binary(max_size=200))
def test_fuzzed_envelopes_parse_or_fail_cleanly(payload: bytes) -> None:
    assert_clean(EventEnvelope, payload)


@FUZZ
@given(gaps())
def test_fuzzed_gaps_parse_or_fail_cleanly(payload: bytes) -> None:
    assert_clean(EventGap, payload)


@FUZZ
@given(statuses())
def test_fuzzed_status_messages_parse_or_fail_cleanly(payload: bytes) -> None:
    assert_clean(StatusMessage, payload)


def test_deeply_nested_data_fails_cleanly() -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    payload = json.dumps(envelope_body(data={})).replace('"data": {}', f'"data": {deep}')
    refused(lambda: EventEnvelope.from_bytes(payload.encode()))
