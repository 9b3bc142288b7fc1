"""The EM4100 parser decodes what a reader sends and rejects every corruption without losing
the next good frame. Frames are built by the simulator's own encoder, not the parser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.em4100 import encode_frame
from gateway.protocols.em4100 import Em4100Parser, FrameRejected, TagFrame, TapConfirmer

GOOD = encode_frame("0F00A1B2C3")
OTHER = encode_frame("1A2B3C4D5E")


def tags(events: list[object]) -> list[str]:
    return [e.tag for e in events if isinstance(e, TagFrame)]


def rejections(events: list[object]) -> list[FrameRejected]:
    return [e for e in events if isinstance(e, FrameRejected)]


def test_good_frame_decodes_to_canonical_tag() -> None:
    assert tags(Em4100Parser().feed(GOOD)) == ["em4100:0F00A1B2C3"]


def test_frame_split_across_reads_decodes_once() -> None:
    parser = Em4100Parser()
    events = []
    for i in range(len(GOOD)):
        events += parser.feed(GOOD[i : i + 1])
    assert tags(events) == ["em4100:0F00A1B2C3"]
    assert rejections(events) == []


def test_lowercase_hex_is_accepted() -> None:
    frame = b"\x02" + b"0f00a1b2c3" + GOOD[11:13] + b"\x03"
    assert tags(Em4100Parser().feed(frame)) == ["em4100:0F00A1B2C3"]


def test_bad_checksum_is_rejected_and_next_frame_kept() -> None:
    bad = encode_frame("0F00A1B2C3", corrupt_checksum=True)
    events = Em4100Parser().feed(bad + OTHER)
    assert tags(events) == ["em4100:1A2B3C4D5E"]
    assert "checksum" in rejections(events)[0].reason


def test_missing_etx_is_rejected_and_next_frame_kept() -> None:
    broken = GOOD[:-1] + b"\x04"
    events = Em4100Parser().feed(broken + OTHER)
    assert tags(events) == ["em4100:1A2B3C4D5E"]
    assert "ETX" in rejections(events)[0].reason


def test_truncated_frame_then_good_frame() -> None:
    events = Em4100Parser().feed(GOOD[:7] + OTHER)
    assert tags(events) == ["em4100:1A2B3C4D5E"]
    assert "truncated" in rejections(events)[0].reason


def test_non_hex_character_is_rejected() -> None:
    broken = GOOD[:3] + b"Z" + GOOD[4:]
    events = Em4100Parser().feed(broken + OTHER)
    assert tags(events) == ["em4100:1A2B3C4D5E"]
    assert "non-hex" in rejections(events)[0].reason


def test_garbage_between_frames_is_reported_not_fatal() -> None:
    events = Em4100Parser().feed(GOOD + b"\xff\x00noise\x03" + OTHER)
    assert tags(events) == ["em4100:0F00A1B2C3", "em4100:1A2B3C4D5E"]
    assert any("outside a frame" in r.reason for r in rejections(events))


def test_counters_track_outcomes() -> None:
    parser = Em4100Parser()
    parser.feed(GOOD + encode_frame("0F00A1B2C3", corrupt_checksum=True) + OTHER)
    assert (parser.frames_ok, parser.frames_rejected) == (2, 1)


tag_ids = st.text(alphabet="0123456789ABCDEF", min_size=10, max_size=10)


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(
        st.one_of(
            tag_ids.map(lambda t: ("good", t)),
            st.binary(max_size=40).map(lambda b: ("junk", b)),
        ),
        max_size=30,
    ),
    split=st.integers(min_value=1, max_value=17),
)
def test_any_stream_never_crashes_and_keeps_good_frames(
    chunks: list[tuple[str, object]], split: int
) -> None:
    """Arbitrary bytes between frames: every good frame that is not run into by junk survives."""
    stream = b""
    expected: list[str] = []
    for kind, value in chunks:
        if kind == "good":
            assert isinstance(value, str)
            stream += encode_frame(value)
            expected.append("em4100:" + value)
        else:
            assert isinstance(value, bytes)
            # Junk that could open or close a frame is what the resync must survive; keep
            # STX out of the junk so each good frame's bytes are its own.
            stream += value.replace(b"\x02", b"")
    parser = Em4100Parser()
    events = []
    for i in range(0, len(stream), split):
        events += parser.feed(stream[i : i + split])
    assert tags(events) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_yield_checksummed_frames(data: bytes) -> None:
    for event in Em4100Parser().feed(data):
        if isinstance(event, TagFrame):
            raw = bytes.fromhex(event.tag.split(":")[1])
            assert len(raw) == 5


# -- TapConfirmer: a tag counts on two identical consecutive frames (time passed in) --------

A, B = "em4100:0F00A1B2C3", "em4100:1F10A1B2C3"


def test_confirmer_needs_two_identical_frames_in_a_row() -> None:
    c = TapConfirmer(hold_gap_s=0.25)
    assert c.frame(A, 0.00) is None
    assert c.frame(A, 0.03) == A
    assert c.frame(A, 0.06) is None  # the rest of the hold is the same tap


def test_confirmer_alternating_tags_never_confirm() -> None:
    c = TapConfirmer()
    assert [c.frame(t, i * 0.03) for i, t in enumerate([A, B, A, B, A])] == [None] * 5
    assert c.unconfirmed == 4


def test_confirmer_rejected_frame_breaks_the_pair_but_not_a_hold() -> None:
    c = TapConfirmer()
    c.frame(A, 0.00)
    c.rejected(0.03)
    assert c.frame(A, 0.06) is None
    assert c.frame(A, 0.09) == A
    c.rejected(0.12)
    assert c.frame(A, 0.15) is None and c.frame(A, 0.18) is None  # still the same hold


def test_confirmer_gap_ends_the_hold() -> None:
    c = TapConfirmer(hold_gap_s=0.25)
    c.frame(A, 0.0)
    assert c.frame(A, 0.03) == A
    assert c.frame(A, 0.30) is None  # 0.27 s of silence: the fob left; a new tap starts
    assert c.frame(A, 0.33) == A


def test_confirmer_with_one_frame_policy() -> None:
    assert TapConfirmer(confirm_frames=1).frame(A, 0.0) == A
