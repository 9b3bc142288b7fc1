"""Sans-IO codec for the sensor hub's serial protocol (``docs/hub-protocol.md``).

This module owns the gateway's side of the hub wire format and nothing else: bytes go in
(:meth:`HubProtocol.feed`) and typed events come out; commands go in
(:meth:`HubProtocol.encode`) and bytes come out. It never touches a port, a socket, a thread
or a clock (the contact debouncer beside it, :mod:`gateway.protocols.contact_debounce`,
takes time from its caller). The frame is an ASCII line ``$SSSS,TYPE[,ARG...]*CCCC\\n``:
``SSSS`` a 16-bit hex sequence number, ``CCCC`` the CRC-16/CCITT-FALSE of the bytes
between ``$`` and ``*``. Anything that is not a whole valid frame is reported as a
:class:`FrameError` and skipped; the parser resynchronises on the next ``$`` so one bad byte
never costs more than its own frame.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from gateway import GatewayError

PROTOCOL_VERSION = 1
MAX_FRAME = 128  # bytes from '$' to '\n' inclusive; longer is garbage
SEQ_MODULO = 0x10000

_ARG_RE = re.compile(rb"[A-Za-z0-9_.\-]{1,32}")
_HEX4_RE = re.compile(rb"[0-9A-F]{4}")


class HubProtocolError(GatewayError):
    """A command that cannot be encoded (bad argument)."""


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor (the
    standard library's ``binascii.crc_hqx`` computes exactly this, in C)."""
    return binascii.crc_hqx(data, crc)


# -- events (hub -> gateway) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    seq: int
    hub_id: str
    firmware: str
    protocol: int


@dataclass(frozen=True, slots=True)
class Contact:
    """State of a door contact (``kind="door"``) or the key-safe reed (``"keysafe"``)."""

    seq: int
    kind: Literal["door", "keysafe"]
    sensor: str
    open: bool


@dataclass(frozen=True, slots=True)
class Tamper:
    seq: int
    active: bool


@dataclass(frozen=True, slots=True)
class Button:
    seq: int
    name: str


@dataclass(frozen=True, slots=True)
class Battery:
    seq: int
    millivolts: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    seq: int
    uptime_s: int


@dataclass(frozen=True, slots=True)
class Ack:
    """The hub accepted command ``ref`` (the gateway's sequence number)."""

    seq: int
    ref: int


@dataclass(frozen=True, slots=True)
class Nak:
    seq: int
    ref: int
    reason: str


@dataclass(frozen=True, slots=True)
class Pong:
    seq: int
    ref: int


@dataclass(frozen=True, slots=True)
class Sync:
    """End of a full-state report: ``count`` state frames were sent since its HELLO."""

    seq: int
    count: int


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes that were not a valid frame (``reason``: crc, syntax, too_long, unknown)."""

    reason: str
    length: int


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Frames were lost between two valid frames: ``lost`` = got - expected (mod 2^16)."""

    expected: int
    got: int
    lost: int


HubFrame = Hello | Contact | Tamper | Button | Battery | Heartbeat | Ack | Nak | Pong | Sync
HubEvent = HubFrame | FrameError | SequenceGap


# -- commands (gateway -> hub) ------------------------------------------------------------

LedColour = Literal["GREEN", "AMBER", "RED", "OFF"]
LedPattern = Literal["SOLID", "BLINK"]


@dataclass(frozen=True, slots=True)
class Led:
    colour: LedColour
    pattern: LedPattern = "SOLID"
    duration_ms: int = 1500


@dataclass(frozen=True, slots=True)
class Buzz:
    duration_ms: int
    count: int = 1


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class RequestState:
    """Ask the hub for HELLO + every state frame + SYNC."""


HubCommand = Led | Buzz | Ping | RequestState

FeedbackOutcome = Literal["accepted", "unplanned", "rejected", "fault"]


def __getattr__(name: str) -> object:
    """``FEEDBACK``: the older four-outcome view of the carer feedback table, which now lives
    in :mod:`gateway.feedback` (one table; imported lazily, that module imports this one)."""
    if name == "FEEDBACK":
        from gateway.feedback import pattern

        return {old: pattern(old) for old in ("accepted", "unplanned", "rejected", "fault")}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_fields(command: HubCommand) -> list[str]:
    if isinstance(command, Led):
        if command.colour not in ("GREEN", "AMBER", "RED", "OFF"):
            raise HubProtocolError(f"unknown LED colour {command.colour!r}")
        if command.pattern not in ("SOLID", "BLINK"):
            raise HubProtocolError(f"unknown LED pattern {command.pattern!r}")
        if not 0 <= command.duration_ms <= 60000:
            raise HubProtocolError("LED duration must be 0..60000 ms")
        return ["LED", command.colour, command.pattern, str(command.duration_ms)]
    if isinstance(command, Buzz):
        if not 0 <= command.duration_ms <= 10000 or not 1 <= command.count <= 10:
            raise HubProtocolError("buzzer: duration 0..10000 ms, count 1..10")
        return ["BUZZ", str(command.duration_ms), str(command.count)]
    if isinstance(command, Ping):
        return ["PING"]
    if isinstance(command, RequestState):
        return ["STATE"]
    raise HubProtocolError(f"not a hub command: {command!r}")


def encode_frame(seq: int, fields: Iterable[str]) -> bytes:
    """Build one frame from already-validated fields (used by :meth:`HubProtocol.encode`)."""
    body = f"{seq % SEQ_MODULO:04X}," + ",".join(fields)
    raw = body.encode("ascii")
    return b"$" + raw + b"*" + f"{crc16_ccitt(raw):04X}".encode() + b"\n"


@dataclass
class HubStats:
    frames: int = 0
    bytes: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    seq_gaps: int = 0
    frames_lost: int = 0


@dataclass
class HubProtocol:
    """One connection's parser and encoder state. Not thread-safe: one owner thread."""

    stats: HubStats = field(default_factory=HubStats)
    _buf: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    _expected_seq: int | None = None
    _tx_seq: int = 0

    def reset(self) -> None:
        """Forget partial input and sequence expectations (call after a reconnect)."""
        self._buf.clear()
        self._in_frame = False
        self._expected_seq = None

    # -- outgoing -------------------------------------------------------------------------
    def encode(self, command: HubCommand) -> bytes:
        fields = _command_fields(command)
        frame = encode_frame(self._tx_seq, fields)
        self._tx_seq = (self._tx_seq + 1) % SEQ_MODULO
        return frame

    @property
    def last_sent_seq(self) -> int:
        return (self._tx_seq - 1) % SEQ_MODULO

    # -- incoming -------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[HubEvent]:
        """Consume bytes; return every complete event they finish, in order."""
        events: list[HubEvent] = []
        self.stats.bytes += len(data)
        for byte in data:
            if byte == 0x24:  # '$' always starts a frame, even inside a broken one
                if self._in_frame and self._buf:
                    events.append(self._error("syntax", len(self._buf)))
                self._buf.clear()
                self._in_frame = True
                continue
            if not self._in_frame:
                continue  # noise between frames: skipped silently (counted in bytes)
            if byte == 0x0A:  # '\n' ends a frame
                raw = bytes(self._buf)
                self._buf.clear()
                self._in_frame = False
                events.extend(self._frame(raw))
                continue
            if len(self._buf) >= MAX_FRAME:
                events.append(self._error("too_long", len(self._buf)))
                self._buf.clear()
                self._in_frame = False
                continue
            self._buf.append(byte)
        return events

    def _error(self, reason: str, length: int) -> FrameError:
        if reason == "crc":
            self.stats.crc_errors += 1
        else:
            self.stats.framing_errors += 1
        return FrameError(reason, length)

    def _frame(self, raw: bytes) -> list[HubEvent]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        body, star, crc_text = raw.rpartition(b"*")
        if not star or not _HEX4_RE.fullmatch(crc_text):
            return [self._error("syntax", len(raw))]
        if crc16_ccitt(body) != int(crc_text, 16):
            return [self._error("crc", len(raw))]
        parts = body.split(b",")
        if len(parts) < 2 or not _HEX4_RE.fullmatch(parts[0]):
            return [self._error("syntax", len(raw))]
        if not all(_ARG_RE.fullmatch(p) for p in parts[1:]):
            return [self._error("syntax", len(raw))]
        seq = int(parts[0], 16)
        args = [p.decode("ascii") for p in parts[1:]]
        frame = _decode(seq, args)
        if frame is None:
            return [self._error("unknown", len(raw))]
        events: list[HubEvent] = []
        if isinstance(frame, Hello):
            self._expected_seq = None  # hub (re)booted or resynced: its counter may restart
        if self._expected_seq is not None and seq != self._expected_seq:
            lost = (seq - self._expected_seq) % SEQ_MODULO
            self.stats.seq_gaps += 1
            self.stats.frames_lost += lost
            events.append(SequenceGap(self._expected_seq, seq, lost))
        self._expected_seq = (seq + 1) % SEQ_MODULO
        self.stats.frames += 1
        events.append(frame)
        return events


def _int(text: str, low: int, high: int) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def _hex16(text: str) -> int | None:
    return int(text, 16) if re.fullmatch(r"[0-9A-F]{4}", text) else None


_OPEN = {"OPEN": True, "CLOSED": False}
_ONOFF = {"ON": True, "OFF": False}


def _decode(seq: int, args: list[str]) -> HubFrame | None:
    kind, rest = args[0], args[1:]
    n = len(rest)
    if kind == "HELLO" and n == 3:
        proto = _int(rest[2], 0, 999)
        return None if proto is None else Hello(seq, rest[0], rest[1], proto)
    if kind in ("DOOR", "KEYSAFE") and n == 2 and rest[1] in _OPEN:
        return Contact(seq, "door" if kind == "DOOR" else "keysafe", rest[0], _OPEN[rest[1]])
    if kind == "TAMPER" and n == 1 and rest[0] in _ONOFF:
        return Tamper(seq, _ONOFF[rest[0]])
    if kind == "BUTTON" and n == 1:
        return Button(seq, rest[0])
    if kind == "BATT" and n == 1:
        mv = _int(rest[0], 0, 20000)
        return None if mv is None else Battery(seq, mv)
    if kind == "HB" and n == 1:
        up = _int(rest[0], 0, 2**32)
        return None if up is None else Heartbeat(seq, up)
    if kind in ("ACK", "PONG") and n == 1:
        ref = _hex16(rest[0])
        if ref is None:
            return None
        return Ack(seq, ref) if kind == "ACK" else Pong(seq, ref)
    if kind == "NAK" and n == 2:
        ref = _hex16(rest[0])
        return None if ref is None else Nak(seq, ref, rest[1])
    if kind == "SYNC" and n == 1:
        count = _int(rest[0], 0, 1000)
        return None if count is None else Sync(seq, count)
    return None
