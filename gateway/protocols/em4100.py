"""Sans-IO parser for the RDM6300-class 125 kHz reader's EM4100 ASCII frames.

A frame is ``0x02``, ten ASCII hex digits (version byte + 32-bit id), two ASCII hex digits
of checksum (XOR of the five data bytes) and ``0x03``; the reader repeats it while a tag is
held. :class:`Em4100Parser` takes bytes as they arrive, in any split, and returns
:class:`TagFrame` for each good frame and :class:`FrameRejected` (with a reason) for each
corrupt one. After garbage it resynchronises on the next ``0x02`` so that no good frame
following garbage is lost.

The checksum is only an 8-bit XOR: two or three flipped bits can turn one fob's frame into
another fob's *valid* frame (about 500 in a million noisy frames). :class:`TapConfirmer`
therefore accepts a tag only when two consecutive frames on the wire are identical (a real
reader repeats the frame for as long as the fob is in its field, so every tap gives several),
and collapses the rest of that hold into the same tap. Time is passed in (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

STX = 0x02
ETX = 0x03
FRAME_LENGTH = 14  # STX + 10 data hex + 2 checksum hex + ETX
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_MAX_GARBAGE_REPORT = 32


@dataclass(frozen=True, slots=True)
class TagFrame:
    """A good frame: ``tag`` is canonical (``em4100:0F00A1B2C3``)."""

    tag: str


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """Bytes that were not a good frame, and why."""

    reason: str
    raw: bytes


Em4100Event = TagFrame | FrameRejected


class Em4100Parser:
    """Incremental EM4100 frame parser. Not thread-safe; one per serial port."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._garbage = bytearray()
        self.frames_ok = 0
        self.frames_rejected = 0

    def feed(self, data: bytes) -> list[Em4100Event]:
        events: list[Em4100Event] = []
        for byte in data:
            if not self._buffer:
                if byte == STX:
                    self._flush_garbage(events)
                    self._buffer.append(byte)
                else:
                    self._garbage.append(byte)
                    if len(self._garbage) >= _MAX_GARBAGE_REPORT:
                        self._flush_garbage(events)
                continue
            if byte == STX:
                # A new frame starts before this one ended: the old one was truncated.
                self._reject(events, "truncated frame (new STX before ETX)", bytes(self._buffer))
                self._buffer = bytearray([STX])
                continue
            self._buffer.append(byte)
            if len(self._buffer) == FRAME_LENGTH:
                frame = bytes(self._buffer)
                self._buffer.clear()
                events.append(self._decode(frame))
        return events

    def reset(self) -> None:
        """Forget partial input (call after the port is reopened)."""
        self._buffer.clear()
        self._garbage.clear()

    def _flush_garbage(self, events: list[Em4100Event]) -> None:
        if self._garbage:
            self._reject(events, "bytes outside a frame", bytes(self._garbage))
            self._garbage.clear()

    def _reject(self, events: list[Em4100Event], reason: str, raw: bytes) -> None:
        self.frames_rejected += 1
        events.append(FrameRejected(reason, raw))

    def _decode(self, frame: bytes) -> Em4100Event:
        body = frame[1:13]
        if frame[13] != ETX:
            self.frames_rejected += 1
            return FrameRejected(f"missing ETX (got 0x{frame[13]:02X})", frame)
        if not all(b in _HEX for b in body):
            self.frames_rejected += 1
            return FrameRejected("non-hex character in frame", frame)
        data = bytes.fromhex(body[:10].decode())
        checksum = int(body[10:12], 16)
        expected = 0
        for b in data:
            expected ^= b
        if checksum != expected:
            self.frames_rejected += 1
            return FrameRejected(
                f"bad checksum: frame says 0x{checksum:02X}, data gives 0x{expected:02X}", frame
            )
        self.frames_ok += 1
        return TagFrame("em4100:" + data.hex().upper())


class TapConfirmer:
    """Turns a stream of decoded frames into confirmed taps (sans-IO; time passed in).

    A tag is reported once ``confirm_frames`` consecutive frames carried it (a rejected frame
    in between breaks the run), and not again while the same tag keeps arriving with gaps
    shorter than ``hold_gap_s`` (a held fob, even with a corrupt frame in the middle).
    """

    def __init__(self, hold_gap_s: float = 0.25, confirm_frames: int = 2) -> None:
        if confirm_frames < 1:
            raise ValueError("confirm_frames must be at least 1")
        self.hold_gap_s = hold_gap_s
        self.confirm_frames = confirm_frames
        self._tag: str | None = None
        self._run = 0
        self._last = 0.0
        self._reported = False
        self.unconfirmed = 0  # frames whose tag was dropped without a matching neighbour

    def frame(self, tag: str, now: float) -> str | None:
        """A good frame for ``tag`` at monotonic ``now``: the tag if this confirms a tap."""
        if tag == self._tag and now - self._last < self.hold_gap_s:
            self._run += 1
        else:
            if self._tag is not None and not self._reported:
                self.unconfirmed += 1
            self._tag, self._run, self._reported = tag, 1, False
        self._last = now
        if not self._reported and self._run >= self.confirm_frames:
            self._reported = True
            return tag
        return None

    def rejected(self, now: float) -> None:
        """A corrupt frame arrived: the next good frame does not pair with the previous."""
        if now - self._last >= self.hold_gap_s:
            self.reset()
        else:
            self._run = 0

    def reset(self) -> None:
        """Forget the current hold (the port was reopened)."""
        if self._tag is not None and not self._reported:
            self.unconfirmed += 1
        self._tag, self._run, self._reported = None, 0, False
