"""The reconnecting device driver every gateway driver is built on: one thread, one link.

:class:`ReconnectingDriver` owns the life of one device link: a thread that opens it, runs a
session on it until it breaks, closes it and opens it again with jittered exponential
back-off (:class:`gateway.backoff.Backoff`). It also owns the fault model the three drivers
share: a set of named fault reasons (``unplugged``, ``silent``, ``tamper``, ``battery_low``);
the first time a reason appears one :class:`~homecall.observations.DeviceFault` goes to the
sink, and when the last one clears one :class:`~homecall.observations.DeviceRecovered`. A
session that ends with a link error is not a fault by itself: the fault is a reopen that
fails (so a glitch that the next open cures stays silent, and a pulled cable is reported at
once). Link timing (hold gaps, heartbeat silence, debounce) reads the injected ``monotonic``
function, real monotonic seconds by default; observation times come from the injected
domain clock. ``stop()`` returns only once the thread has ended, or raises.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Generic, Literal, TypeVar

from gateway import GatewayError
from gateway.backoff import Backoff
from homecall.clock import Clock
from homecall.observations import DeviceFault, DeviceName, DeviceRecovered, Observation
from homecall.wire import DeviceStatus

log = logging.getLogger(__name__)

LinkT = TypeVar("LinkT")
DeviceState = Literal["ok", "fault", "absent", "disabled"]

#: The fault that means "the link cannot be opened" (cable out, device gone, wrong path).
UNPLUGGED = "unplugged"


def path_is_missing(path: str) -> bool:
    """True for a filesystem path (not a pyserial URL such as ``loop://`` nor an nfcpy
    search path such as ``tty:AMA0:pn532`` or ``usb``) that does not exist."""
    if "://" in path or path.startswith(("tty:", "usb", "com:", "udp")):
        return False
    return not os.path.exists(path)


class DriverError(GatewayError):
    """A device driver was used wrongly (started twice, or did not stop)."""


class ReconnectingDriver(ABC, Generic[LinkT]):
    """One device on one link, reopened for as long as the driver runs (module docstring)."""

    #: Which device this is in observations (``DeviceFault.device``).
    device: ClassVar[DeviceName]
    #: ``DeviceStatus.kind``.
    kind: ClassVar[str]
    #: Exceptions from ``_connect`` that mean "not there (yet)": fault, back off, retry.
    open_error_types: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    #: Exceptions from ``_session`` that mean "the link broke": close and reopen.
    link_error_types: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    #: Whether a successful open clears ``unplugged`` (a driver that must first hear the
    #: device speak clears it itself, from its session).
    clear_unplugged_on_open: ClassVar[bool] = True

    def __init__(
        self,
        path: str,
        clock: Clock,
        sink: Callable[[Observation], None],
        *,
        name: str,
        reconnect_base_s: float = 0.05,
        reconnect_max_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self.sink = sink
        self.name = name
        self.reconnect_max_s = reconnect_max_s
        self.monotonic = monotonic
        self.backoff = Backoff(reconnect_base_s, reconnect_max_s, floor_s=0.01, rng=rng)
        self.faults: set[str] = set()
        self.connects = 0
        self.link_failures = 0
        self.last_frame: datetime | None = None
        self.firmware: str | None = None
        self._lock = threading.Lock()
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public API -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the driver's thread (it opens the link itself, retrying until it can); a
        second call while it runs does nothing."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"driver-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the link; returns once the thread has ended.

        Raises :class:`DriverError` if the thread is still running after ``timeout_s``
        (a blocked read that ignored the wake-up): the caller learns it, rather than a
        port silently left open.
        """
        self._stop.set()
        thread = self._thread
        if thread is None:
            return
        self._wake()
        thread.join(timeout_s)
        if thread.is_alive():
            raise DriverError(f"{self.name}: driver thread did not stop within {timeout_s} s")
        self._thread = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def status(self) -> DeviceStatus:
        """What an installer sees: absent while the link is down, fault with the reasons."""
        with self._lock:
            faults = sorted(self.faults)
            connected = self._connected
        if not connected or UNPLUGGED in faults:
            state: DeviceState = "absent"
        elif faults:
            state = "fault"
        else:
            state = "ok"
        return DeviceStatus(
            name=self.name,
            kind=self.kind,
            state=state,
            detail=", ".join(faults) if faults else self._detail(),
            firmware=self.firmware,
            last_frame=self.last_frame,
        )

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def open_problem(self, err: BaseException) -> str:
        """Why the link cannot be opened, in one line that names the path."""
        if path_is_missing(self.path):
            return f"serial device {self.path} does not exist (unplugged, or the wrong name?)"
        return f"cannot open {self.path}: {err}"

    # -- the fault model ------------------------------------------------------------------
    def _fault(self, reason: str) -> None:
        """Raise fault ``reason`` (once: repeats while it stands are ignored)."""
        with self._lock:
            if reason in self.faults:
                return
            self.faults.add(reason)
        log.warning("%s: fault %s (%s)", self.name, reason, self.path)
        self.sink(DeviceFault(self.device, reason, self.clock.now()))

    def _clear(self, reason: str) -> None:
        """Clear fault ``reason``; when none is left the device has recovered."""
        with self._lock:
            if reason not in self.faults:
                return
            self.faults.discard(reason)
            recovered = not self.faults
        log.info("%s: %s cleared (%s)", self.name, reason, self.path)
        if recovered:
            self.sink(DeviceRecovered(self.device, self.clock.now()))

    # -- what a concrete driver supplies ---------------------------------------------------
    @abstractmethod
    def _connect(self) -> LinkT:
        """Open the link (raise one of ``open_error_types`` if the device is not there)."""

    @abstractmethod
    def _session(self, link: LinkT) -> None:
        """Use the open link until ``self._stop`` is set (return) or it breaks (raise)."""

    @abstractmethod
    def _disconnect(self, link: LinkT) -> None:
        """Close the link; must not raise."""

    def _wake(self) -> None:
        """Interrupt a blocking read so that ``stop()`` is prompt (optional)."""

    def _detail(self) -> str | None:
        """``DeviceStatus.detail`` when there is no fault."""
        return None

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                link = self._connect()
            except self.open_error_types as err:
                if UNPLUGGED not in self.faults:
                    log.warning("%s: %s", self.name, self.open_problem(err))
                self._fault(UNPLUGGED)
                self._stop.wait(self.backoff.next_delay())
                continue
            self.backoff.reset()
            self.connects += 1
            with self._lock:
                self._connected = True
            if self.clear_unplugged_on_open:
                self._clear(UNPLUGGED)
            try:
                self._session(link)
            except self.link_error_types as err:
                self.link_failures += 1
                log.warning("%s: link to %s lost: %s", self.name, self.path, err)
                broke = True
            except Exception:  # a bug must not end the thread: a dead driver loses every tap
                self.link_failures += 1
                log.exception("%s: driver error on %s; reopening", self.name, self.path)
                broke = True
            else:
                broke = False
            finally:
                with self._lock:
                    self._connected = False
                self._disconnect(link)
            if broke:  # a link that opens and breaks at once must not spin
                self._stop.wait(self.backoff.next_delay())
