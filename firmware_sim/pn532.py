"""A PN532 NFC reader on a pty, good enough for nfcpy's own unmodified ``pn532`` driver.

This module owns the simulated reader: the PN532 host frame codec (normal, extended, ACK
and error frames, written here independently of nfcpy), the chip commands nfcpy sends
(GetFirmwareVersion, SAMConfiguration, SetSerialBaudrate, Diagnose line test,
SetParameters, RFConfiguration, Read/WriteRegister, InListPassiveTarget,
InCommunicateThru, PowerDown), and the cards in its field: an NFC Forum Type 2 Tag
(Ultralight-like memory with a capability container and an NDEF TLV, READ with CRC_A) and
a Type 4A Tag as a phone's host card emulation presents it (RATS/ATS, ISO-DEP I-blocks,
NDEF application v2 with CC file E103 and NDEF file E104). API for the scenario player::

    reader = SimulatedPn532(link_path, clock=clock)
    reader.start()                                       # plug in
    reader.present_card(bytes.fromhex("5A11223344556677"[:14]), ndef=b"...", hold_s=0.5)
    reader.present_phone(ndef_message, uid=None, hold_s=0.5)  # random 08xxxxxx UID
    reader.remove()                                      # take the card away now
    reader.unplug(); reader.replug(); reader.garbage(b"\\xff\\x00")
    reader.stop()

``hold_s`` is real seconds (``float("inf")`` is a stuck tag); a read through nfcpy takes a
few tens of milliseconds, so anything from 0.2 s up is a realistic tap. Card UIDs may be
4, 7 or 10 bytes. NTAG version probing is not emulated: for a UID starting with 0x04
(NXP) nfcpy sends GET_VERSION, the card stays mute as an Ultralight would, and nfcpy
re-senses it and reads it as a generic Type 2 tag (one extra round trip).
``commands_seen`` lists the chip command codes received.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim import SimulatorError
from firmware_sim.pty_device import PtyDevice
from homecall.clock import Clock

ACK = b"\x00\x00\xff\x00\xff\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
FIRMWARE = bytes([0x32, 0x01, 0x06, 0x07])  # PN532 v1.6, supports ISO A/B and FeliCa
NDEF_AID_V2 = bytes.fromhex("D2760000850101")
NDEF_AID_V1 = bytes.fromhex("D2760000850100")
ATS = bytes.fromhex("0578807002")  # FSCI 8 (256 bytes), FWI 7, no SFGT


class Pn532SimError(SimulatorError):
    """Misuse of the simulated reader (bad UID, NDEF too large)."""


def crc_a(data: bytes) -> bytes:
    """ISO/IEC 14443-3 CRC_A (init 0x6363, reflected poly 0x8408), low byte first."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return bytes([crc & 0xFF, (crc >> 8) & 0xFF])


def encode_frame(payload: bytes) -> bytes:
    """PN532 information frame (normal, or extended above 254 bytes)."""
    dcs = (-sum(payload)) & 0xFF
    if len(payload) < 255:
        length = len(payload)
        return b"\x00\x00\xff" + bytes([length, (-length) & 0xFF]) + payload + bytes([dcs, 0])
    hi, lo = len(payload) >> 8, len(payload) & 0xFF
    lcs = (-(hi + lo)) & 0xFF
    return b"\x00\x00\xff\xff\xff" + bytes([hi, lo, lcs]) + payload + bytes([dcs, 0])


def type2_memory(uid: bytes, ndef: bytes | None) -> bytes:
    """Tag memory of an Ultralight-like Type 2 Tag holding ``ndef`` in an NDEF TLV."""
    if len(uid) not in (4, 7, 10):
        raise Pn532SimError("an ISO 14443 UID has 4, 7 or 10 bytes")
    if len(uid) != 7:  # not an Ultralight layout; pages 0-2 only need to be readable
        uid = (uid + bytes(7))[:7]
    bcc0 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
    bcc1 = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
    tlv = b""
    if ndef is not None:
        size = len(ndef)
        tlv = b"\x03" + bytes([size]) if size < 255 else b"\x03\xff" + size.to_bytes(2, "big")
        tlv += ndef
    tlv += b"\xfe"
    data_size = max(48, (len(tlv) + 7) // 8 * 8)
    if data_size > 255 * 8:
        raise Pn532SimError("NDEF message too large for a Type 2 card")
    header = uid[:3] + bytes([bcc0]) + uid[3:] + bytes([bcc1, 0x48, 0, 0])
    cc = bytes([0xE1, 0x10, data_size // 8, 0x00])
    return header + cc + tlv.ljust(data_size, b"\x00")


@dataclass
class _Card:
    uid: bytes
    kind: str  # "tt2" | "tt4"
    until: float
    memory: bytes = b""  # tt2
    files: dict[bytes, bytes] = field(default_factory=dict)  # tt4

    @property
    def sens_res(self) -> bytes:
        return {4: b"\x00\x04", 7: b"\x00\x44", 10: b"\x00\x84"}[len(self.uid)]

    @property
    def sel_res(self) -> int:
        return 0x00 if self.kind == "tt2" else 0x20


class SimulatedPn532:
    """A PN532 on a pty. Thread-safe; every method returns immediately."""

    def __init__(self, link_path: str | Path, *, clock: Clock | None = None) -> None:
        self.clock = clock
        self.commands_seen: list[int] = []
        self.reads = 0  # how many times a card was activated by InListPassiveTarget
        self._pty = PtyDevice(link_path, on_receive=self._on_receive)
        self._lock = threading.RLock()
        self._rx = bytearray()
        self._card: _Card | None = None
        self._active: _Card | None = None
        self._selected: bytes | None = None
        self._registers: dict[int, int] = {}

    @property
    def link_path(self) -> Path:
        return self._pty.link_path

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._reset()
        self._pty.plug()

    def stop(self) -> None:
        self._pty.unplug()

    def unplug(self) -> None:
        self._pty.unplug()

    def replug(self) -> None:
        self._pty.unplug()
        self._reset()
        self._pty.plug()

    def _reset(self) -> None:
        with self._lock:
            self._rx.clear()
            self._active = None
            self._selected = None
            self._registers = {0x6302: 0x80, 0x6303: 0x80, 0x6305: 0x00, 0x6304: 0x80}

    # -- the field ------------------------------------------------------------------------
    def present_card(self, uid: bytes, ndef: bytes | None = None, hold_s: float = 0.5) -> None:
        """Hold a Type 2 card (7-byte UID, optional NDEF message bytes) to the reader."""
        memory = type2_memory(uid, ndef)
        with self._lock:
            self._card = _Card(bytes(uid), "tt2", time.monotonic() + hold_s, memory=memory)
            self._active = None

    def present_phone(self, ndef: bytes, uid: bytes | None = None, hold_s: float = 0.5) -> bytes:
        """Hold a phone (Type 4A host card emulation) with an NDEF message; returns its UID."""
        if uid is None:
            uid = b"\x08" + os.urandom(3)  # ISO 14443-3 random UID, as phones present
        if len(uid) not in (4, 7):
            raise Pn532SimError("a phone presents a 4- or 7-byte UID")
        cc = bytes.fromhex("000F2000F000F00406E104080000FF")
        files = {b"\xe1\x03": cc, b"\xe1\x04": len(ndef).to_bytes(2, "big") + ndef}
        with self._lock:
            self._card = _Card(bytes(uid), "tt4", time.monotonic() + hold_s, files=files)
            self._active = None
        return bytes(uid)

    def remove(self) -> None:
        with self._lock:
            self._card = None
            self._active = None

    def _present(self) -> _Card | None:
        card = self._card
        if card is not None and time.monotonic() >= card.until:
            self._card = card = None
            self._active = None
        return card

    # -- faults ---------------------------------------------------------------------------
    def garbage(self, data: bytes) -> None:
        self._pty.write(data)

    # -- host frames ----------------------------------------------------------------------
    def _on_receive(self, data: bytes) -> None:
        with self._lock:
            self._rx += data
            while True:
                frame = self._next_frame()
                if frame is None:
                    return
                if frame:
                    self._command(frame)

    def _next_frame(self) -> bytes | None:
        """Return the next frame's payload (TFI onwards), b"" for ACK/NACK/junk, None = wait."""
        buf = self._rx
        start = buf.find(b"\x00\xff")
        if start < 0:
            if len(buf) > 1:
                del buf[:-1]
            return None
        del buf[:start]
        if len(buf) < 4:
            return None
        if buf[2] in (0x00, 0xFF) and buf[3] == (0xFF if buf[2] == 0x00 else 0x00):
            del buf[:4]  # ACK (00 FF) or NACK (FF 00): the host cancelling or acknowledging
            return b""
        if buf[2] == 0xFF and buf[3] == 0xFF:
            if len(buf) < 7:
                return None
            length = buf[4] << 8 | buf[5]
            if (buf[4] + buf[5] + buf[6]) & 0xFF:
                del buf[:2]
                return b""
            head = 7
        else:
            length = buf[2]
            if (buf[2] + buf[3]) & 0xFF:
                del buf[:2]
                return b""
            head = 4
        if len(buf) < head + length + 1:
            return None
        payload = bytes(buf[head : head + length])
        dcs = buf[head + length]
        del buf[: head + length + 1]
        if (sum(payload) + dcs) & 0xFF or not payload or payload[0] != 0xD4:
            self._pty.write(ERROR_FRAME)
            return b""
        return payload

    def _reply(self, code: int, data: bytes = b"") -> None:
        self._pty.write(ACK + encode_frame(bytes([0xD5, code + 1]) + data))

    def _command(self, payload: bytes) -> None:
        if len(payload) < 2:
            return
        code, data = payload[1], payload[2:]
        self.commands_seen.append(code)
        if code == 0x00:  # Diagnose: only the communication line test is emulated
            self._reply(code, data if data[:1] == b"\x00" else b"\x00")
        elif code == 0x02:
            self._reply(code, FIRMWARE)
        elif code == 0x04:  # GetGeneralStatus: no error, field off, no target
            self._reply(code, b"\x00\x00\x00\x00")
        elif code in (0x10, 0x12, 0x14):  # SetSerialBaudrate, SetParameters, SAMConfiguration
            self._reply(code)
        elif code == 0x32:  # RFConfiguration; item 1 bit 0 = RF field on
            if data[:1] == b"\x01" and len(data) > 1 and not data[1] & 0x01:
                self._active = None  # field off: every card resets
            self._reply(code)
        elif code == 0x06:  # ReadRegister
            values = bytearray()
            for i in range(0, len(data) - 1, 2):
                address = data[i] << 8 | data[i + 1]
                # CIU_FIFOData still holding SENS_REQ (0x26) means "no card answered".
                values.append(0x26 if address == 0x6339 else self._registers.get(address, 0))
            self._reply(code, bytes(values))
        elif code == 0x08:  # WriteRegister
            for i in range(0, len(data) - 2, 3):
                self._registers[data[i] << 8 | data[i + 1]] = data[i + 2]
            self._reply(code)
        elif code == 0x4A:
            self._reply(code, self._in_list_passive_target(data))
        elif code == 0x42:
            self._reply(code, self._in_communicate_thru(data))
        elif code in (0x44, 0x52) or code == 0x16:  # InDeselect, InRelease
            self._active = None
            self._reply(code, b"\x00")
        else:
            self._pty.write(ACK + ERROR_FRAME)

    def _in_list_passive_target(self, data: bytes) -> bytes:
        if len(data) < 2 or data[1] != 0x00:
            return b"\x00"  # only 106 kbps type A cards live in this field
        card = self._present()
        if card is None:
            return b"\x00"
        wanted = bytes(data[2:])
        if wanted:
            uid = wanted[1:] if wanted[0] == 0x88 else wanted
            uid = uid[:3] + uid[4:] if len(uid) == 10 and uid[3] == 0x88 else uid
            if uid != card.uid:
                return b"\x00"
        self._active = card
        self._selected = None
        self.reads += 1
        return b"\x01\x01" + card.sens_res + bytes([card.sel_res, len(card.uid)]) + card.uid

    def _in_communicate_thru(self, data: bytes) -> bytes:
        card = self._present()
        if card is None or self._active is not card or not data:
            self._active = None
            return b"\x01"  # timeout: nobody answered
        if card.kind == "tt2":
            return self._tt2(card, data)
        return self._tt4(data)

    def _tt2(self, card: _Card, cmd: bytes) -> bytes:
        if cmd[0] == 0x30 and len(cmd) >= 2:
            page = cmd[1]
            pages = len(card.memory) // 4
            if page >= pages:
                return b"\x00\x00"  # NAK
            chunk = (card.memory + card.memory)[page * 4 : page * 4 + 16]
            return b"\x00" + chunk + crc_a(chunk)
        self._active = None  # unsupported command: a Type 2 tag goes mute
        return b"\x01"

    def _tt4(self, block: bytes) -> bytes:
        pcb = block[0]
        if pcb == 0xE0:  # RATS
            return b"\x00" + ATS
        if pcb & 0xE2 == 0x02:  # I-block
            return b"\x00" + bytes([pcb & 0x03]) + self._apdu(block[1:])
        if pcb & 0xF6 == 0xB2:  # R(NAK): presence check
            return b"\x00" + bytes([0xA2 | (pcb & 0x01)])
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            self._active = None
            return b"\x00" + bytes([pcb])
        return b"\x01"

    def _apdu(self, apdu: bytes) -> bytes:
        card = self._active
        if len(apdu) < 4 or card is None:
            return b"\x67\x00"
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xA4 and p1 == 0x04:
            return b"\x90\x00" if body in (NDEF_AID_V2, NDEF_AID_V1) else b"\x6a\x82"
        if ins == 0xA4 and p1 == 0x00:
            if body in card.files:
                self._selected = body
                return b"\x90\x00"
            return b"\x6a\x82"
        if ins == 0xB0:
            if self._selected is None:
                return b"\x69\x86"
            content = card.files[self._selected]
            offset = p1 << 8 | p2
            le = apdu[4] if len(apdu) > 4 else 0
            le = le or 256
            return content[offset : offset + le] + b"\x90\x00"
        return b"\x6d\x00"

    def __enter__(self) -> SimulatedPn532:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
