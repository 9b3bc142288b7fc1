"""The simulated RDM6300-class 125 kHz reader: EM4100 frames on a pty.

This module has its own frame encoder (it never imports the gateway's parser), so a test
passes only if the gateway really decodes what a reader sends. While a tag is in the field the
reader repeats its frame, as the real module does: an EM4100 fob sends its 64-bit code over
and over at 125 kHz / 64 (one code every 32.8 ms) and the module reports each one it decodes.
Even a brisk tap keeps the fob in the field for a tenth of a second or more, so a tap here is
never fewer than ``MIN_TAP_FRAMES`` frames, one ``REPEAT_INTERVAL_S`` apart.
"""

from __future__ import annotations

import re
import threading
import time

from firmware_sim import SimulatorError
from firmware_sim.pty_device import PtyDevice

_ID_RE = re.compile(r"[0-9A-Fa-f]{10}")
#: Real-time period of the repeated frame while a tag is held: one EM4100 code at RF/64.
REPEAT_INTERVAL_S = 0.033
#: Frames sent by the briefest tap (about 100 ms in the field).
MIN_TAP_FRAMES = 3


def flip_bits(frame: bytes, bits: list[int]) -> bytes:
    """``frame`` with the given bit positions (0 = LSB of byte 0) inverted: line noise."""
    out = bytearray(frame)
    for bit in bits:
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def encode_frame(tag_hex: str, *, corrupt_checksum: bool = False) -> bytes:
    """Encode a 10-hex-digit EM4100 id (version byte + 32-bit id) as a reader frame."""
    if not _ID_RE.fullmatch(tag_hex):
        raise SimulatorError(f"EM4100 id must be 10 hex digits, got {tag_hex!r}")
    raw = bytes(int(tag_hex[i : i + 2], 16) for i in range(0, 10, 2))
    checksum = raw[0] ^ raw[1] ^ raw[2] ^ raw[3] ^ raw[4]
    if corrupt_checksum:
        checksum ^= 0x5A
    return b"\x02" + tag_hex.upper().encode("ascii") + f"{checksum:02X}".encode("ascii") + b"\x03"


def tag_hex_of(tag: str) -> str:
    """``em4100:0F00A1B2C3`` → ``0F00A1B2C3``."""
    kind, _, value = tag.partition(":")
    if kind.lower() != "em4100":
        raise SimulatorError(f"not an EM4100 tag: {tag!r}")
    return value


class SimulatedRfidReader:
    """An RDM6300 on a pty: ``tap`` emits frames for as long as the tag is held."""

    def __init__(self, link_path: str) -> None:
        self.device = PtyDevice(link_path)
        self._lock = threading.Lock()

    @property
    def link_path(self) -> str:
        return str(self.device.link_path)

    def start(self) -> None:
        self.device.plug()

    def stop(self) -> None:
        self.device.unplug()

    def tap(self, tag: str, hold_real_s: float = 0.0, *, min_frames: int = MIN_TAP_FRAMES,
            frames: list[bytes] | None = None) -> int:
        """Present a tag; its frame repeats every REPEAT_INTERVAL_S while it is held, at least
        ``min_frames`` times. ``frames`` replaces the frames sent (in order, e.g. with noise
        in some), the way a reader passes on what it decoded. Returns frames written."""
        frame = encode_frame(tag_hex_of(tag))
        planned = list(frames) if frames is not None else []
        sent = 0
        with self._lock:
            deadline = time.monotonic() + max(0.0, hold_real_s)
            index = 0
            while True:
                data = planned[index] if index < len(planned) else frame
                if self.device.write(data):
                    sent += 1
                index += 1
                done_planned = index >= len(planned)
                if (done_planned and index >= min_frames
                        and time.monotonic() + REPEAT_INTERVAL_S > deadline):
                    break
                time.sleep(REPEAT_INTERVAL_S)
        return sent

    def send_raw(self, data: bytes) -> bool:
        with self._lock:
            return self.device.write(data)

    def unplug(self) -> None:
        self.device.unplug()

    def replug(self) -> None:
        self.device.replug()
