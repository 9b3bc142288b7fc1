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
once it is (all from :class:`~gateway.drivers.base.ReconnectingDriver`). nfcpy's own
loggers are capped at INFO because its debug output prints UIDs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from gateway.drivers.base import ReconnectingDriver
from gateway.drivers.carer_token import check_carer_token
from homecall.clock import Clock
from homecall.observations import Observation, TagRead
from homecall.tags import TagError, canonical_tag, redact

log = logging.getLogger(__name__)

_NFCPY_SEARCH_PREFIXES = ("tty:", "usb", "com:", "udp")


class NfcReaderDriver(ReconnectingDriver[Any]):
    """The gateway's view of one NFC reader (see module docstring)."""

    device = "nfc"
    kind = "nfc"
    # nfcpy surfaces a missing or dying PN532 as OSError, termios.error or its own errors.
    open_error_types = (Exception,)
    link_error_types = (Exception,)

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
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(path, clock, sink, name=name, reconnect_max_s=reconnect_max_s,
                         monotonic=monotonic, rng=rng)
        self.token_public_key = token_public_key
        self.poll_interval_s = poll_interval_s
        self.reads = 0
        self.token_rejections: dict[str, int] = {}
        nfc_log = logging.getLogger("nfc")
        if nfc_log.level == logging.NOTSET or nfc_log.level < logging.INFO:
            nfc_log.setLevel(logging.INFO)  # nfcpy's DEBUG lines show UIDs

    @property
    def opens(self) -> int:
        """How many times the frontend was opened."""
        return self.connects

    @property
    def link_errors(self) -> int:
        """How many sessions ended with a link error."""
        return self.link_failures

    # -- nfcpy ----------------------------------------------------------------------------
    def _connect(self) -> Any:
        clf = self._open()
        self.firmware = getattr(clf.device, "chipset_name", None) or None
        return clf

    def _disconnect(self, link: Any) -> None:
        self._close(link)

    def _session(self, link: Any) -> None:
        self._poll(link)

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
