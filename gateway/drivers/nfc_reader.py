"""Driver for the 13.56 MHz NFC reader (PN532 class) through nfcpy's own drivers.

One thread owns one nfcpy ``ContactlessFrontend`` for the life of the process. It polls
for ISO 14443 type A targets one short ``sense`` at a time (a few milliseconds each), so
``stop()`` returns promptly; a tag found is activated, its NDEF message read if it has one
(Type 2 cards, Type 4 phones in host card emulation), a signed carer token in it verified
offline, and one :class:`~homecall.observations.TagRead` handed to ``sink`` per tap (a tag
held on the reader is reported once, again only after it has left the field).

Paths: nfcpy search paths (``tty:AMA0:pn532``, ``tty:USB0:pn532``, ``usb``, ``usb:054c``)
go to ``ContactlessFrontend.open``; anything else is taken as a serial device path (a
``/dev/serial/by-id`` link or a simulator's pty link) and opened through nfcpy's TTY
transport and pn532 driver directly, because nfcpy's ``tty:NAME`` form only looks in
``/dev``. A PN532 that dies mid-command surfaces as ``termios.error`` (not an OSError),
an ``OSError`` or an nfcpy error: the frontend is closed and reopened with back-off, with
one :class:`DeviceFault` while it cannot be reopened and one :class:`DeviceRecovered`
once it is. nfcpy's own loggers are capped at INFO because its debug output prints UIDs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from gateway.drivers.carer_token import check_carer_token
from homecall.clock import Clock
from homecall.observations import DeviceFault, DeviceRecovered, Observation, TagRead
from homecall.tags import TagError, canonical_tag, redact
from homecall.wire import DeviceStatus

log = logging.getLogger(__name__)

_NFCPY_SEARCH_PREFIXES = ("tty:", "usb", "com:", "udp")


class NfcReaderDriver:
    """The gateway's view of one NFC reader (see module docstring)."""

    def __init__(
        self,
        path: str,
        clock: Clock,
        sink: Callable[[Observation], None],
        *,
        token_public_key: bytes | None = None,
        name: str = "nfc",
        poll_interval_s: float = 0.04,
        reconnect_max_s: float = 2.0,
    ) -> None:
        self.path = path
        self.clock = clock
        self.sink = sink
        self.token_public_key = token_public_key
        self.name = name
        self.poll_interval_s = poll_interval_s
        self.reconnect_max_s = reconnect_max_s
        self.firmware: str | None = None
        self.last_frame: datetime | None = None
        self.reads = 0
        self.opens = 0
        self.link_errors = 0
        self.token_rejections: dict[str, int] = {}
        self._fault_reason: str | None = None
        self._open_now = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        nfc_log = logging.getLogger("nfc")
        if nfc_log.level == logging.NOTSET or nfc_log.level < logging.INFO:
            nfc_log.setLevel(logging.INFO)  # nfcpy's DEBUG lines show UIDs

    # -- public API -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"nfc-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    def status(self) -> DeviceStatus:
        with self._lock:
            if self._fault_reason is not None or not self._open_now:
                state: Literal["ok", "fault", "absent", "disabled"] = "absent"
            else:
                state = "ok"
            return DeviceStatus(
                name=self.name,
                kind="nfc",
                state=state,
                detail=self._fault_reason,
                firmware=self.firmware,
                last_frame=self.last_frame,
            )

    # -- faults ---------------------------------------------------------------------------
    def _fault(self, reason: str) -> None:
        with self._lock:
            if self._fault_reason is not None:
                return
            self._fault_reason = reason
        log.warning("%s: fault %s (%s)", self.name, reason, self.path)
        self.sink(DeviceFault("nfc", reason, self.clock.now()))

    def _recovered(self) -> None:
        with self._lock:
            if self._fault_reason is None:
                return
            self._fault_reason = None
        log.info("%s: reader back on %s", self.name, self.path)
        self.sink(DeviceRecovered("nfc", self.clock.now()))

    # -- nfcpy ----------------------------------------------------------------------------
    def _open(self) -> Any:
        import nfc
        import nfc.clf.pn532
        import nfc.clf.transport

        if self.path.startswith(_NFCPY_SEARCH_PREFIXES):
            clf = nfc.ContactlessFrontend()
            if not clf.open(self.path):
                raise OSError(errno.ENODEV, f"no reader on {self.path}")
            return clf
        transport = nfc.clf.transport.TTY(self.path)
        try:
            device = nfc.clf.pn532.init(transport)
        except BaseException:
            with contextlib.suppress(Exception):
                transport.tty.close()
            raise
        device._path = self.path
        clf = nfc.ContactlessFrontend()
        clf.device = device
        return clf

    @staticmethod
    def _close(clf: Any) -> None:
        device = clf.device
        with contextlib.suppress(Exception):
            clf.close()  # polite: cancel, reset baud rate, power down
        if clf.device is not None or device is not None:
            chipset = getattr(device, "chipset", None)
            transport = getattr(chipset, "transport", None)
            tty = getattr(transport, "tty", None)
            if tty is not None:
                with contextlib.suppress(Exception):
                    tty.close()
            clf.device = None

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                clf = self._open()
            except Exception as err:  # OSError, termios.error, nfcpy errors: not there yet
                log.debug("%s: cannot open %s: %s", self.name, self.path, err)
                self._fault("unplugged")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
                continue
            backoff = 0.05
            self.opens += 1
            self.firmware = getattr(clf.device, "chipset_name", None) or None
            with self._lock:
                self._open_now = True
            self._recovered()
            try:
                self._poll(clf)
            except Exception as err:  # a dying PN532 raises termios.error, OSError, ...
                self.link_errors += 1
                log.warning("%s: reader link error on %s: %s", self.name, self.path, err)
            finally:
                with self._lock:
                    self._open_now = False
                self._close(clf)

    def _poll(self, clf: Any) -> None:
        import nfc.clf

        held: str | None = None
        while not self._stop.is_set():
            target = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1)
            self.last_frame = self.clock.now()
            if target is None:
                held = None
                self._stop.wait(self.poll_interval_s)
                continue
            try:
                tag_id = canonical_tag("nfc:" + bytes(target.sdd_res).hex())
            except TagError:
                log.info("%s: ignoring target with an odd UID length", self.name)
                self._stop.wait(self.poll_interval_s)
                continue
            if tag_id == held:
                self._stop.wait(self.poll_interval_s)
                continue
            at = self.clock.now()
            message = self._read_ndef(clf, target)
            check = check_carer_token(message, self.token_public_key, at)
            if check.reason not in ("ok", "absent"):
                self.token_rejections[check.reason] = self.token_rejections.get(check.reason, 0) + 1
                log.warning(
                    "%s: carer token on %s rejected: %s", self.name, redact(tag_id), check.reason
                )
            held = tag_id
            self.reads += 1
            self.sink(TagRead(tag_id, at, source="nfc", carer_token=check.carer_id))

    def _read_ndef(self, clf: Any, target: Any) -> bytes | None:
        import nfc.clf
        import nfc.tag

        try:
            tag = nfc.tag.activate(clf, target)
            if tag is None or tag.ndef is None:
                return None
            return bytes(tag.ndef.octets)
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as err:
            log.info("%s: NDEF read failed (%s); using the UID alone", self.name, err)
            return None
