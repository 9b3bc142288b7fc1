"""The simulated RDM6300-class 125 kHz reader: EM4100 frames on a pty.

This module has its own frame encoder (it never imports the gateway's parser), so a test
passes only if the gateway really decodes what a reader sends. While a tag is held the reader
repeats its frame, as the real module does.
"""

from __future__ import annotations

import re
import threading
import time

from firmware_sim import SimulatorError
from firmware_sim.pty_device import PtyDevice

_ID_RE = re.compile(r"[0-9A-Fa-f]{10}")
#: Real-time gap between repeated frames while a tag is held (RDM6300 repeats continuously).
REPEAT_INTERVAL_S = 0.02


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

    def tap(self, tag: str, hold_real_s: float = 0.0) -> int:
        """Present a tag; frames repeat every REPEAT_INTERVAL_S while held. Returns frames sent."""
        frame = encode_frame(tag_hex_of(tag))
        sent = 0
        with self._lock:
            deadline = time.monotonic() + max(0.0, hold_real_s)
            while True:
                if self.device.write(frame):
                    sent += 1
                if time.monotonic() + REPEAT_INTERVAL_S > deadline:
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
