"""Emulation of the sensor hub's firmware on a pty, byte for byte (``docs/hub-protocol.md``).

This module owns the simulated hub: its state (named door contacts, key safe, tamper,
battery), its frame encoder and CRC (written here, independently of the gateway's parser),
its heartbeat and its answers to the gateway's commands; and the faults real homes produce.
The scenario player and the tests drive it through this API::

    hub = SimulatedHub(link_path, hub_id="hub-sim-1", clock=clock, doors=("front", "back"))
    hub.start()                       # plug in: HELLO, then a heartbeat every heartbeat_s
    hub.door("front", True)           # DOOR frame (bounce=3 adds 3 chatter pairs first)
    hub.keysafe(True); hub.button("no_reply"); hub.tamper(True); hub.battery(3100)
    hub.unplug(); hub.replug()        # yank / reinsert the cable (HELLO on power-up)
    hub.garbage(b"\\x00\\xff"); hub.corrupt_next(); hub.flood(5000); hub.hang(); hub.resume()
    hub.feedback_log                  # [FeedbackEntry], what the gateway told the LED/buzzer
    hub.stop()

State changes made while unplugged are kept (the reed switch still moves) and are reported
when the gateway asks for the full state after reconnecting. Heartbeats are sent every
``heartbeat_s`` *real* seconds: link liveness is a property of the wire, not of the scenario
timeline, so a 600x demo clock neither floods the port nor starves it. ``clock`` only
stamps the feedback log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from firmware_sim import SimulatorError
from firmware_sim.pty_device import PtyDevice
from homecall.clock import Clock

PROTOCOL = 1


class HubSimError(SimulatorError):
    """Misuse of the simulated hub (unknown door, bad value)."""


def _crc16(data: bytes) -> int:
    # CRC-16/CCITT-FALSE, table-driven as the firmware does it (independent of the gateway).
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        value = i << 8
        for _ in range(8):
            value = ((value << 1) ^ 0x1021) if value & 0x8000 else (value << 1)
        table.append(value & 0xFFFF)
    return table


_TABLE = _make_table()


def encode_frame(seq: int, *fields: str) -> bytes:
    """One hub frame ``$SSSS,FIELD,...*CCCC\r\n`` as the firmware sends it."""
    body = f"{seq & 0xFFFF:04X},{','.join(fields)}".encode("ascii")
    return b"$%s*%04X\r\n" % (body, _crc16(body))


@dataclass(frozen=True)
class FeedbackEntry:
    """One LED or buzzer command the hub obeyed."""

    kind: str  # "led" | "buzz"
    colour: str | None
    pattern: str | None
    duration_ms: int
    count: int
    at: datetime | None  # clock time when received (None without a clock)
    mono: float  # time.monotonic() when received

    def signal(self) -> str:
        """Short form for assertions: ``led:green:solid`` or ``buzz:short`` / ``buzz:long``."""
        if self.kind == "led":
            return f"led:{(self.colour or '').lower()}:{(self.pattern or '').lower()}"
        return "buzz:short" if self.duration_ms <= 300 else "buzz:long"


class SimulatedHub:
    """A sensor hub on a pty. Thread-safe; every method returns immediately."""

    def __init__(
        self,
        link_path: str | Path,
        *,
        hub_id: str = "hub-sim-1",
        firmware: str = "1.3.0",
        clock: Clock | None = None,
        doors: Iterable[str] = ("front",),
        keysafes: Iterable[str] = ("keysafe",),
        heartbeat_s: float = 2.0,
        battery_mv: int = 3900,
    ) -> None:
        self.hub_id = hub_id
        self.firmware = firmware
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.doors: dict[str, bool] = dict.fromkeys(doors, False)
        self.keysafes: dict[str, bool] = dict.fromkeys(keysafes, False)
        self.tampered = False
        self.battery_mv = battery_mv
        self.feedback_log: list[FeedbackEntry] = []
        self.commands_seen: list[str] = []
        self.frames_sent = 0
        self._pty = PtyDevice(link_path, on_receive=self._on_receive)
        self._lock = threading.RLock()
        self._seq = 0
        self._rx = bytearray()
        self._hung = False
        self._corrupt_next = 0
        self._boot = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def link_path(self) -> Path:
        return self._pty.link_path

    @property
    def plugged(self) -> bool:
        return self._pty.plugged

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat_loop, name="sim-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._pty.unplug()

    def plug(self) -> None:
        """Power up on a fresh pty: reset the sequence counter and announce ourselves."""
        with self._lock:
            self._seq = 0
            self._rx.clear()
            self._boot = time.monotonic()
            self._pty.plug()
            self._send("HELLO", self.hub_id, self.firmware, str(PROTOCOL))

    def unplug(self) -> None:
        # Not under self._lock: the pty's reader thread may be waiting for it in
        # _on_receive, and unplug joins that thread.
        self._pty.unplug()

    def replug(self) -> None:
        self._pty.unplug()
        self.plug()

    # -- what happens in the home ---------------------------------------------------------
    def door(self, sensor: str = "front", open: bool = True, *, bounce: int = 0) -> None:
        """Move a door contact; ``bounce`` extra open/closed pairs chatter before it settles."""
        self._contact("DOOR", self.doors, sensor, open, bounce)

    def keysafe(self, open: bool = True, sensor: str | None = None, *, bounce: int = 0) -> None:
        name = sensor or next(iter(self.keysafes), "keysafe")
        self._contact("KEYSAFE", self.keysafes, name, open, bounce)

    def _contact(
        self, kind: str, table: dict[str, bool], sensor: str, is_open: bool, bounce: int
    ) -> None:
        with self._lock:
            table[sensor] = is_open
            for _ in range(bounce):
                self._send(kind, sensor, "OPEN" if is_open else "CLOSED")
                self._send(kind, sensor, "CLOSED" if is_open else "OPEN")
                time.sleep(0.002)
            self._send(kind, sensor, "OPEN" if is_open else "CLOSED")

    def button(self, name: str = "no_reply") -> None:
        with self._lock:
            self._send("BUTTON", name)

    def tamper(self, active: bool = True) -> None:
        with self._lock:
            self.tampered = active
            self._send("TAMPER", "ON" if active else "OFF")

    def battery(self, millivolts: int) -> None:
        if not 0 <= millivolts <= 20000:
            raise HubSimError(f"battery {millivolts} mV out of range")
        with self._lock:
            self.battery_mv = millivolts
            self._send("BATT", str(millivolts))

    # -- faults ---------------------------------------------------------------------------
    def garbage(self, data: bytes) -> None:
        """Line noise: raw bytes straight onto the wire."""
        self._pty.write(data)

    def corrupt_next(self, frames: int = 1) -> None:
        """The next ``frames`` frames go out with a wrong CRC (they still use a seq number)."""
        with self._lock:
            self._corrupt_next += frames

    def partial(self, text: str = "$00") -> None:
        """Half a frame, as when the cable is pulled mid-write."""
        self._pty.write(text.encode("ascii"))

    def flood(self, n: int, kind: str = "HB") -> None:
        """Send ``n`` frames back to back (heartbeats by default, or BUTTON)."""
        with self._lock:
            chunk = bytearray()
            for _ in range(n):
                args = [str(self._uptime())] if kind == "HB" else ["flood"]
                chunk += self._frame(kind, *args)
                if len(chunk) > 4096:
                    self._pty.write(bytes(chunk))
                    chunk.clear()
            if chunk:
                self._pty.write(bytes(chunk))

    def hang(self) -> None:
        """Firmware hang: the port stays open but nothing is sent or answered."""
        self._hung = True

    def resume(self) -> None:
        self._hung = False

    # -- helpers for tests ----------------------------------------------------------------
    def feedback_signals(self) -> list[str]:
        return [entry.signal() for entry in self.feedback_log]

    # -- wire -----------------------------------------------------------------------------
    def _uptime(self) -> int:
        return int(time.monotonic() - self._boot)

    def _frame(self, *fields: str) -> bytes:
        body = f"{self._seq:04X},{','.join(fields)}".encode("ascii")
        self._seq = (self._seq + 1) & 0xFFFF
        crc = _crc16(body)
        if self._corrupt_next:
            self._corrupt_next -= 1
            crc ^= 0x5A5A
        self.frames_sent += 1
        return b"$%s*%04X\r\n" % (body, crc)

    def _send(self, *fields: str) -> None:
        with self._lock:
            if self._hung:
                return
            # A frame produced while unplugged is lost, as on a real wire; the counter moved.
            self._pty.write(self._frame(*fields))

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if self._pty.plugged:
                self._send("HB", str(self._uptime()))

    def _on_receive(self, data: bytes) -> None:
        with self._lock:
            self._rx += data
            while True:
                end = self._rx.find(b"\n")
                if end < 0:
                    if len(self._rx) > 256:
                        self._rx.clear()
                    return
                line = bytes(self._rx[:end]).strip()
                del self._rx[: end + 1]
                start = line.rfind(b"$")
                if start >= 0:
                    self._command(line[start + 1 :])

    def _command(self, raw: bytes) -> None:
        body, _, crc_text = raw.rpartition(b"*")
        try:
            crc_ok = _crc16(body) == int(crc_text, 16)
            fields = body.decode("ascii").split(",")
        except (ValueError, UnicodeDecodeError):
            return
        if len(fields) < 2:
            return
        ref = fields[0]
        if not crc_ok:
            self._send("NAK", ref, "crc")
            return
        name, args = fields[1], fields[2:]
        self.commands_seen.append(name)
        if self._hung:
            return
        at = self.clock.now() if self.clock is not None else None
        if name == "LED" and len(args) == 3 and args[2].isdigit():
            self.feedback_log.append(
                FeedbackEntry("led", args[0], args[1], int(args[2]), 1, at, time.monotonic())
            )
            self._send("ACK", ref)
        elif name == "BUZZ" and len(args) == 2 and args[0].isdigit() and args[1].isdigit():
            self.feedback_log.append(
                FeedbackEntry("buzz", None, None, int(args[0]), int(args[1]), at, time.monotonic())
            )
            self._send("ACK", ref)
        elif name == "PING":
            self._send("PONG", ref)
        elif name == "STATE":
            self._send_state()
        else:
            self._send("NAK", ref, "unknown")

    def _send_state(self) -> None:
        self._send("HELLO", self.hub_id, self.firmware, str(PROTOCOL))
        count = 0
        for sensor, is_open in self.doors.items():
            self._send("DOOR", sensor, "OPEN" if is_open else "CLOSED")
            count += 1
        for sensor, is_open in self.keysafes.items():
            self._send("KEYSAFE", sensor, "OPEN" if is_open else "CLOSED")
            count += 1
        self._send("TAMPER", "ON" if self.tampered else "OFF")
        self._send("BATT", str(self.battery_mv))
        self._send("SYNC", str(count + 2))

    def __enter__(self) -> SimulatedHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
