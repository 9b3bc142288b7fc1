"""What central says to the gateway, routed: acks and central's position go to the outbox and
journal; plans go through plan intake to the engine host; commands are obeyed.

Each message has its own path: a journal error while applying an ack leaves the events in the
journal for the next ack (acks are cumulative) and touches nothing else in the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.delivery.journal import Journal, JournalError, NewEvent
from gateway.delivery.outbox import Incoming, Outbox, OutboxMessage, PositionKnown
from gateway.engine_host import CoreInput, EngineHost
from gateway.plan_intake import PlanAccepted, PlanIntake, PlanRefused
from homecall.clock import Clock
from homecall.wire import Channel, CommandMessage, CommandResult, EventType, WireError

log = logging.getLogger(__name__)


class CentralLink:
    """Turns the outbox's messages from central into core inputs."""

    def __init__(self, outbox: Outbox, journal: Journal, host: EngineHost, intake: PlanIntake,
                 clock: Clock, hub: Callable[[], Any]) -> None:
        self.outbox = outbox
        self.journal = journal
        self.host = host
        self.intake = intake
        self.clock = clock
        self._hub = hub
        #: The result of central's last command, reported in the next status.
        self.last_command: CommandResult | None = None

    def handle(self, item: OutboxMessage) -> list[CoreInput]:
        try:
            incoming = self.outbox.handle(item)
        except JournalError as err:
            log.warning("ack not applied (the next one will be): %s", err)
            return []
        if isinstance(incoming, Incoming):
            return self._incoming(incoming)
        if isinstance(incoming, PositionKnown) and incoming.lost and self.journal.damage is None:
            now = self.clock.now()
            return [CoreInput(now, (NewEvent(
                EventType.JOURNAL_DAMAGED, now, self.clock.monotonic(),
                data={"reason": "journal behind central (replaced or lost its tail)",
                      "lost": [list(r) for r in incoming.lost],
                      "renumbered_by": incoming.shifted_by}),))]
        return []

    def _incoming(self, incoming: Incoming) -> list[CoreInput]:
        if incoming.channel is Channel.PLAN:
            return self.plan_payload(incoming.payload, "central") if incoming.payload else []
        if incoming.channel is Channel.CMD:
            try:
                command = CommandMessage.from_bytes(incoming.payload)
            except WireError as err:
                log.warning("ignored bad command: %s", err)
                return []
            log.info("command from central: %s", command.command)
            hub = self._hub()
            if hub is not None:  # identify: the hub shows its pattern
                hub.feedback("accepted")
                result, detail = "done", "the hub showed the identify pattern"
            else:
                result, detail = "failed", "no feedback device (hub) is configured"
            self.last_command = CommandResult(id=command.id, command=command.command,
                                              result=result, detail=detail,
                                              at=self.clock.now())
        return []

    def plan_payload(self, payload: bytes, source: str) -> list[CoreInput]:
        """A plan to put in force, or a ``plan_rejected`` report naming the plan that stays."""
        now = self.clock.now()
        in_force = self.host.plan
        verdict = self.intake.consider(payload, source, now, in_force, self.host.plan_source)
        if isinstance(verdict, PlanAccepted):
            return [CoreInput(now, plan=verdict)]
        if isinstance(verdict, PlanRefused):
            return [CoreInput(now, (NewEvent(
                EventType.PLAN_REJECTED, now, self.clock.monotonic(),
                data={"reason": verdict.reason, "source": verdict.source,
                      "sha256": verdict.sha256,
                      "in_force": in_force.version if in_force else None}),))]
        return []
