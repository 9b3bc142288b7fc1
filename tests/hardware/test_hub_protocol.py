"""The hub parser on its own (sans-IO): frames, errors, sequence gaps, debouncing, fuzz."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim import hub as sim_hub
from gateway.protocols.contact_debounce import ContactDebouncer
from gateway.protocols.hub import (
    FEEDBACK,
    Battery,
    Button,
    Buzz,
    Contact,
    FrameError,
    Heartbeat,
    Hello,
    HubProtocol,
    Led,
    Ping,
    RequestState,
    SequenceGap,
    Tamper,
    crc16_ccitt,
    encode_frame,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_crc_matches_the_standard_check_value_and_the_firmware() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert sim_hub._crc16(b"123456789") == 0x29B1


def test_documented_example_frames_parse() -> None:
    proto = HubProtocol()
    wire = (
        b"$0000,HELLO,hub-7f3a,1.3.0,1*"
        + b"%04X" % crc16_ccitt(b"0000,HELLO,hub-7f3a,1.3.0,1")
        + b"\r\n"
    )
    wire += encode_frame(1, ["DOOR", "front", "OPEN"]) + encode_frame(2, ["BATT", "3650"])
    events = proto.feed(wire)
    assert events == [
        Hello(0, "hub-7f3a", "1.3.0", 1),
        Contact(1, "door", "front", True),
        Battery(2, 3650),
    ]


def test_every_frame_type() -> None:
    proto = HubProtocol()
    frames = [
        ["KEYSAFE", "keysafe", "CLOSED"],
        ["TAMPER", "ON"],
        ["BUTTON", "no_reply"],
        ["HB", "42"],
    ]
    wire = b"".join(encode_frame(i, f) for i, f in enumerate(frames))
    assert proto.feed(wire) == [
        Contact(0, "keysafe", "keysafe", False),
        Tamper(1, True),
        Button(2, "no_reply"),
        Heartbeat(3, 42),
    ]


def test_bad_crc_is_reported_and_the_gap_is_counted() -> None:
    proto = HubProtocol()
    good0 = encode_frame(7, ["HB", "1"])
    bad = bytearray(encode_frame(8, ["DOOR", "front", "OPEN"]))
    bad[5] ^= 0x01  # flip a bit in the body
    good2 = encode_frame(9, ["HB", "2"])
    events = proto.feed(good0 + bytes(bad) + good2)
    assert [type(e) for e in events] == [Heartbeat, FrameError, SequenceGap, Heartbeat]
    assert events[1] == FrameError("crc", len(bad) - 2)
    assert events[2] == SequenceGap(8, 9, 1)
    assert proto.stats.crc_errors == 1 and proto.stats.seq_gaps == 1
    assert proto.stats.frames_lost == 1


def test_hello_resets_sequence_expectation() -> None:
    proto = HubProtocol()
    proto.feed(encode_frame(500, ["HB", "1"]))
    events = proto.feed(encode_frame(0, ["HELLO", "h", "1.0", "1"]))
    assert [type(e) for e in events] == [Hello]


def test_sequence_wraps_without_a_gap() -> None:
    proto = HubProtocol()
    events = proto.feed(encode_frame(0xFFFF, ["HB", "1"]) + encode_frame(0, ["HB", "2"]))
    assert not any(isinstance(e, SequenceGap) for e in events)


def test_commands_encode_with_increasing_sequence_and_the_sim_accepts_them() -> None:
    proto = HubProtocol()
    a = proto.encode(Led("GREEN", "SOLID", 1500))
    b = proto.encode(Buzz(100, 1))
    assert a.startswith(b"$0000,LED,GREEN,SOLID,1500*") and a.endswith(b"\n")
    assert b.startswith(b"$0001,BUZZ,100,1*")
    for frame in (a, b, proto.encode(Ping()), proto.encode(RequestState())):
        body, _, crc = frame[1:].strip().rpartition(b"*")
        assert sim_hub._crc16(body) == int(crc, 16)
    assert set(FEEDBACK) == {"accepted", "unplanned", "rejected", "fault"}


def test_overlong_and_unknown_frames_are_errors() -> None:
    proto = HubProtocol()
    events = proto.feed(b"$" + b"A" * 300 + b"\n" + encode_frame(0, ["WHAT", "x"]))
    assert [e.reason for e in events if isinstance(e, FrameError)] == ["too_long", "unknown"]


def test_debouncer_collapses_bounce_and_ignores_glitches() -> None:
    deb = ContactDebouncer(settle_s=0.05)
    deb.edge("door", "front", True, T0, 0.0)
    deb.edge("door", "front", False, T0, 0.01)
    deb.edge("door", "front", True, T0, 0.02)
    assert deb.settle(0.05) == []
    settled = deb.settle(0.08)
    assert [(s.sensor, s.open, s.at) for s in settled] == [("front", True, T0)]
    # a closed-open-closed glitch reports nothing
    deb.edge("door", "front", False, T0, 1.0)
    deb.settle(1.1)
    deb.edge("door", "front", True, T0, 2.0)
    deb.edge("door", "front", False, T0, 2.01)
    assert deb.settle(2.1) == []
    # first sight of a closed sensor is the assumed state
    deb.edge("keysafe", "keysafe", False, T0, 3.0)
    assert deb.settle(3.1) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(1, 50), max_size=20))
def test_arbitrary_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    proto = HubProtocol()
    i = 0
    for cut in cuts:
        proto.feed(data[i : i + cut])
        i += cut
    proto.feed(data[i:])
    proto.feed(encode_frame(0, ["HB", "1"]))


_FIELDS = st.sampled_from(
    [
        ["DOOR", "front", "OPEN"],
        ["DOOR", "back", "CLOSED"],
        ["KEYSAFE", "keysafe", "OPEN"],
        ["BUTTON", "no_reply"],
        ["TAMPER", "OFF"],
        ["BATT", "3700"],
        ["HB", "9"],
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300),
    st.lists(_FIELDS, min_size=1, max_size=10),
    st.lists(st.integers(1, 40), max_size=30),
)
def test_good_frames_after_garbage_are_not_lost(
    garbage: bytes, frames: list[list[str]], cuts: list[int]
) -> None:
    proto = HubProtocol()
    # Garbage may end inside a half-frame: the next frame's '$' must still start afresh.
    wire = garbage + b"".join(encode_frame(100 + i, f) for i, f in enumerate(frames))
    events = []
    i = 0
    for cut in cuts:
        events += proto.feed(wire[i : i + cut])
        i += cut
    events += proto.feed(wire[i:])
    got = [e for e in events if not isinstance(e, FrameError | SequenceGap) and e.seq >= 100]
    assert [e.seq for e in got] == [100 + i for i in range(len(frames))]
