"""The core thread: the one place the gateway's state changes.

Drivers, paho-mqtt and the wake-up scheduler each run threads of their own and only
:meth:`CoreLoop.post` a message here. The loop takes messages in batches of up to
:data:`BATCH_MAX` and gives each kind its own path: device observations, deadline wake-ups
and plans become :class:`~gateway.engine_host.CoreInput` units that the engine host steps
and commits as one unit (or holds, when the journal fails); what central sends (acks, its
position, plans, commands) goes through :class:`~gateway.central_link.CentralLink`; a
:class:`Heartbeat` publishes the status. A failure on one path is logged and cannot take
another's work with it. After each batch the outbox publishes what was committed, and the
reader's LED and buzzer tell the carer what happened to each tap, in the order of the taps.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.central_link import CentralLink
from gateway.delivery.journal import JournalError
from gateway.delivery.outbox import Connected, Outbox, OutboxMessage
from gateway.engine_host import CoreInput, EngineHost
from gateway.feedback import READER_DEVICES
from gateway.telemetry import telemetry_events
from homecall.clock import Clock
from homecall.observations import ButtonPress, ContactChange, DeviceFault, Observation, TagRead

log = logging.getLogger(__name__)

#: Most messages the core takes in one batch (one journal transaction, one fsync).
BATCH_MAX = 512


@dataclass(frozen=True, slots=True)
class Tick:
    """Wake the engine: a deadline may be due."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Publish the status."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Journal what has arrived, then leave."""


class CoreLoop:
    """Takes the posted messages in batches and gives each kind its own path."""

    def __init__(self, host: EngineHost, link: CentralLink, outbox: Outbox, clock: Clock,
                 hub: Callable[[], Any]) -> None:
        self.host = host
        self.link = link
        self.outbox = outbox
        self.clock = clock
        self._hub = hub
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: Publishes the status; returns the core inputs it found (a clock change).
        self.heartbeat: Callable[[], list[CoreInput]] = lambda: []
        self._journal_read_failing = False

    def post(self, item: Any) -> None:
        """Thread-safe hand-off from drivers, paho and the scheduler to the core thread."""
        self.inbox.put(item)

    def quiet(self) -> bool:
        """Nothing waits for the core."""
        return self.inbox.empty()

    def run(self) -> None:
        """Serve the inbox until a :class:`Stop` arrives (what came with it is handled)."""
        while True:
            wait = self.host.seconds_to_retry()
            try:
                item = self.inbox.get(timeout=1.0 if wait is None else min(1.0, wait))
            except queue.Empty:
                if self.host.retry_due():
                    self.host.retry()
                if self.outbox.has_settled:  # a quiet second: the routine PUBACKs and acks
                    self._process([])
                self.pump()
                continue
            batch = [item]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            stop = any(isinstance(i, Stop) for i in batch)
            self._process([i for i in batch if not isinstance(i, Stop)])
            if stop:
                return

    def _process(self, batch: list[Any]) -> None:
        units: list[CoreInput] = []
        taps: list[int] = []  # indices into units of taps awaiting feedback
        signals: list[tuple[int, str]] = []  # (unit index, outcome) shown once journalled
        for item in batch:
            try:
                if isinstance(item, Observation):
                    if isinstance(item, TagRead):
                        taps.append(len(units))
                    elif isinstance(item, ButtonPress) and item.name == "no_reply":
                        signals.append((len(units), "no_reply"))
                    elif isinstance(item, DeviceFault) and item.device in READER_DEVICES:
                        signals.append((len(units), "fault"))  # the reader carers tap broke
                    units.append(self._observation(item))
                elif isinstance(item, Tick):
                    units.append(CoreInput(self.clock.now(), engine=True))
                elif isinstance(item, Heartbeat):
                    units += self.heartbeat()
                elif isinstance(item, OutboxMessage.__args__):
                    reported = self.link.last_command
                    units += self.link.handle(item)
                    if isinstance(item, Connected) or self.link.last_command is not reported:
                        # central answers where it stands / sees the command's result now
                        units += self.heartbeat()
                else:
                    log.error("core: ignored unknown message %r", item)
            except Exception:  # one bad message must not take the rest of the batch
                log.exception("core: %s failed", type(item).__name__)
        outcomes = self.commit(units)
        self.pump()
        hub = self._hub()
        if hub is not None:
            shown = [(index, "fault" if outcomes is None else outcomes[index]) for index in taps]
            shown += [(index, "fault" if outcomes is None else outcome)
                      for index, outcome in signals]
            for _, outcome in sorted(shown):
                if outcome:
                    # A tap that could not be journalled must not look recorded to the carer.
                    hub.feedback(outcome)
        self._apply_settled()
        self.host.snapshot_if_due()

    def _apply_settled(self) -> None:
        """Apply what paho set aside without waking the core (routine PUBACKs and acks).
        It runs after the batch's events are journalled and published and the carer has
        seen the outcome, so an ack's delete never stands between a tap and the broker.
        (Acks are cumulative and a PUBACK is matched by its message id: applying them a
        batch later changes nothing else.)"""
        settled = self.outbox.take_settled()
        if not settled:
            return
        for message in settled:
            try:
                more = self.link.handle(message)
            except Exception:
                log.exception("core: %s failed", type(message).__name__)
                continue
            if more:
                self.commit(more)
        self.pump()

    def commit(self, units: list[CoreInput]) -> list[str] | None:
        """Step and journal ``units`` as one; the tap outcomes, or None if it failed."""
        try:
            return self.host.commit(units)
        except Exception:
            log.exception("core: committing %d input(s) failed", len(units))
            return None

    def pump(self) -> None:
        """Hand what was committed to the outbox and let it publish."""
        try:
            self.outbox.pump(self.host.take_fresh())
            self._journal_read_failing = False
        except JournalError as err:
            if not self._journal_read_failing:
                log.error("outbox cannot read the journal (retrying): %s", err)
            self._journal_read_failing = True

    def _observation(self, item: Observation) -> CoreInput:
        events = tuple(telemetry_events(item, self.clock.monotonic()))
        if isinstance(item, (TagRead, ContactChange, ButtonPress)):
            return CoreInput(item.at, events, engine=True, item=item)
        return CoreInput(item.at, events)
