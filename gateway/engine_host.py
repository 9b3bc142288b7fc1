"""The engine host: runs the pure rules engine for the core thread and makes each step
durable, so a failed journal commit loses nothing.

A batch of :class:`CoreInput` (device observations, deadline wake-ups, clock changes, plans)
is stepped on a *copy* of the engine state; the events, the numbered engine inputs that
produced them and, after a plan change, a new snapshot are committed to the journal in one
transaction, and only when that commit succeeds does the host adopt the new state, plan and
deadline. When it fails (any SQLite error: a full or read-only card, an I/O error) the state
stays as it was, the inputs are held in order, the carer's tap gets the fault pattern, and
the held inputs are stepped and committed again after a jittered back-off; a
``journal_fault`` event (recorded with the held inputs once the journal takes writes again)
and a ``journal_recovered`` event say what happened. Because ``step`` is pure, stepping a
held input later gives the same outputs it would have given at once.

After a restart the state is the last snapshot replayed with the inputs journalled since
(see ``gateway/rules/codec.py``). A tag read reaches the engine, and so the journal, only as
its household-salted pseudonym (``homecall.tags.pseudonym``): no UID is written to disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.backoff import Backoff
from gateway.delivery.journal import Journal, JournalError, NewEvent, Snapshot
from gateway.feedback import tap_outcome
from gateway.plan_intake import PlanAccepted
from gateway.rules import HouseholdState, initial_state, step
from gateway.rules.codec import InputCodecError, decode_input, encode_input
from gateway.rules.inputs import EngineInput, PlanUpdate
from gateway.rules.outputs import RuleOutput
from homecall.clock import Clock
from homecall.observations import TagRead
from homecall.plan import GatewayPlan, PlanError
from homecall.tags import pseudonym, set_redaction_salt
from homecall.wire import ALERT_SEVERITY, EventEnvelope, EventType

log = logging.getLogger(__name__)

#: Engine inputs between state snapshots at most (a snapshot also follows every heartbeat).
SNAPSHOT_EVERY = 2000


@dataclass(frozen=True, slots=True)
class CoreInput:
    """One unit of core work: ``events`` to record, then (``engine``) one engine step with
    ``item`` (None: a deadline wake-up), or a ``plan`` to put in force."""

    now: datetime
    events: tuple[NewEvent, ...] = ()
    engine: bool = False
    item: EngineInput | None = None
    plan: PlanAccepted | None = None

    @property
    def is_tap(self) -> bool:
        return isinstance(self.item, TagRead)


@dataclass
class _Fault:
    since: datetime
    since_mono: float
    event: NewEvent
    attempts: int = 0


@dataclass
class _Draft:
    """The host's state as a batch is stepped, adopted only when the commit succeeds."""

    state: HouseholdState
    plan: GatewayPlan | None
    plan_source: str
    input_n: int
    deadline: datetime | None
    events: list[NewEvent] = field(default_factory=list)
    inputs: list[tuple[int, str]] = field(default_factory=list)
    plan_changed: bool = False


class EngineHost:
    """The rules state of one household, advanced only by committed steps."""

    def __init__(self, journal: Journal, clock: Clock, *, clock_ok: bool,
                 arm: Callable[[datetime | None], None],
                 retry_base_s: float = 0.25, retry_cap_s: float = 5.0) -> None:
        self.journal = journal
        self.clock = clock
        self.clock_ok = clock_ok
        self._arm = arm
        self._backoff = Backoff(base_s=retry_base_s, cap_s=retry_cap_s, floor_s=0.05)
        self._retry_at = 0.0
        self._held: list[CoreInput] = []
        self._fault: _Fault | None = None
        self._fresh: list[EventEnvelope] = []
        self.plan: GatewayPlan | None = None
        self.plan_source = "central"
        self.next_deadline: datetime | None = None
        self.snapshot_wanted = False
        self.local_salt = f"local-{journal.gateway_id}"  # tag salt while no plan is in force
        self.state, self.input_n = self._restore()
        set_redaction_salt(self.tag_salt(self.plan))
        self._snapshot_upto = int(self.journal.get_state("engine_upto") or 0)

    # -- restore ---------------------------------------------------------------------------
    def _restore(self) -> tuple[HouseholdState, int]:
        plan_text = self.journal.get_state("plan")
        self.plan_source = self.journal.get_state("plan_source") or "central"
        if plan_text:
            try:
                self.plan = GatewayPlan.from_bytes(plan_text)
            except PlanError as err:
                log.error("stored plan unreadable, waiting for a new one: %s", err)
        state_text = self.journal.get_state("engine")
        upto = int(self.journal.get_state("engine_upto") or 0)
        state = initial_state(self.plan, clock_ok=self.clock_ok)
        if state_text:
            try:
                state = HouseholdState.from_json(state_text, self.plan)
            except (ValueError, KeyError) as err:
                log.error("stored engine state unreadable, starting from the plan: %s", err)
        replay = self.journal.inputs_after(upto)
        for n, text in replay:
            try:
                item, now = decode_input(text)
                state, _, _ = step(state, item, now)
            except (InputCodecError, ValueError) as err:
                log.error("engine replay stopped at input %d: %s", n, err)
                break
        if replay:
            log.info("engine state rebuilt: snapshot + %d journalled input(s)", len(replay))
        return state, replay[-1][0] if replay else upto

    def tag_salt(self, plan: GatewayPlan | None) -> str:
        return plan.tag_salt if plan is not None else self.local_salt

    # -- committing ------------------------------------------------------------------------
    @property
    def faulted(self) -> bool:
        """True while inputs are held because the journal is not taking writes."""
        return bool(self._held)

    @property
    def held(self) -> int:
        return len(self._held)

    def commit(self, inputs: list[CoreInput]) -> list[str] | None:
        """Step and journal ``inputs`` as one unit. Returns the feedback outcome of each
        input ("accepted", "rejected", "unplanned" or ""), or None when they are held
        (the journal is failing) and must not look recorded to the carer."""
        if not inputs:
            return []
        if self._held:
            self._held.extend(inputs)
            if not self.retry_due():
                return None
            outcomes = self.retry()
            return None if outcomes is None else outcomes[-len(inputs):]
        try:
            return self._attempt(inputs, [], [])
        except JournalError as err:
            self._hold(inputs, err)
            return None

    def retry_due(self) -> bool:
        return bool(self._held) and time.monotonic() >= self._retry_at

    def seconds_to_retry(self) -> float | None:
        if not self._held:
            return None
        return max(0.0, self._retry_at - time.monotonic())

    def retry(self) -> list[str] | None:
        """Try the held inputs again (with the fault report before them and the recovery
        report after). Returns their outcomes once committed, None if still failing."""
        fault = self._fault
        if fault is None or not self._held:
            return []
        fault.attempts += 1
        recovered = NewEvent(
            EventType.JOURNAL_RECOVERED, self.clock.now(), self.clock.monotonic(),
            data={"held": len(self._held), "attempts": fault.attempts,
                  "down_s": round(self.clock.monotonic() - fault.since_mono, 3)},
        )
        try:
            outcomes = self._attempt(self._held, [fault.event], [recovered])
        except JournalError as err:
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            log.debug("journal still failing (%s); %d input(s) held, next try in %.2fs",
                      err, len(self._held), delay)
            return None
        log.warning("journal writable again after %d attempt(s): %d held input(s) journalled",
                    fault.attempts, len(self._held))
        self._held = []
        self._fault = None
        self._backoff.reset()
        return outcomes

    def _hold(self, inputs: list[CoreInput], err: JournalError) -> None:
        self._held = list(inputs)
        delay = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        now = self.clock.now()
        event = NewEvent(EventType.JOURNAL_FAULT, now, self.clock.monotonic(),
                         severity=ALERT_SEVERITY[EventType.JOURNAL_FAULT],
                         data={"reason": str(err)})
        self._fault = _Fault(since=now, since_mono=self.clock.monotonic(), event=event)
        log.critical("journal write failed, %d input(s) held in memory and retried: %s",
                     len(inputs), err)

    def _attempt(self, inputs: list[CoreInput], before: list[NewEvent],
                 after: list[NewEvent]) -> list[str]:
        draft = _Draft(self.state, self.plan, self.plan_source, self.input_n,
                       self.next_deadline, events=list(before))
        outcomes = [self._step(draft, unit) for unit in inputs]
        draft.events.extend(after)
        snapshot = None
        if draft.plan_changed:
            # The plan and the state that follows it are stored together: a replay of the
            # journalled inputs never crosses a plan change.
            values = {"engine": draft.state.to_json(include_plan=False),
                      "plan_source": draft.plan_source}
            if draft.plan is not None:
                values["plan"] = draft.plan.model_dump_json()
            snapshot = Snapshot(values, draft.input_n)
        self._fresh += self.journal.append(draft.events, clock_ok=self.clock_ok,
                                           inputs=draft.inputs, snapshot=snapshot)
        # Committed: adopt.
        self.state, self.input_n = draft.state, draft.input_n
        if draft.plan_changed:
            if draft.plan is not None and draft.plan is not self.plan:
                log.info("plan version %d in force (%d visits) from %s", draft.plan.version,
                         len(draft.plan.visits), draft.plan_source)
            self.plan, self.plan_source = draft.plan, draft.plan_source
            set_redaction_salt(self.tag_salt(self.plan))
            self._snapshot_upto = draft.input_n
        if draft.deadline != self.next_deadline:
            self.next_deadline = draft.deadline
            self._arm(draft.deadline)
        return outcomes

    def _step(self, draft: _Draft, unit: CoreInput) -> str:
        draft.events.extend(unit.events)
        if unit.plan is not None:
            return self._step_plan(draft, unit, unit.plan)
        if not unit.engine:
            return ""
        item = unit.item
        if isinstance(item, TagRead):
            # The engine (and so the journal, on replay) sees only the household-salted
            # pseudonym of the tag, never its UID.
            item = replace(item, tag=pseudonym(self.tag_salt(draft.plan), item.tag))
        try:
            state, outputs, deadline = step(draft.state, item, unit.now)
            encoded = encode_input(item, unit.now)
        except (ValueError, TypeError, KeyError):
            # A bug, not a fault of the journal: this one input is skipped, loudly.
            log.exception("rules engine failed on %s; input skipped", type(unit.item).__name__)
            return ""
        draft.state, draft.deadline = state, deadline
        draft.input_n += 1
        draft.inputs.append((draft.input_n, encoded))
        draft.events.extend(self._to_new_events(outputs))
        return tap_outcome(outputs) if unit.is_tap else ""

    def _step_plan(self, draft: _Draft, unit: CoreInput, accepted: PlanAccepted) -> str:
        plan = accepted.plan
        try:
            state, outputs, deadline = step(draft.state, PlanUpdate(plan), unit.now)
        except (ValueError, TypeError, KeyError) as err:
            log.error("plan version %d cannot be run (keeping version %s): %s", plan.version,
                      draft.plan.version if draft.plan else None, err)
            draft.events.append(NewEvent(
                EventType.PLAN_REJECTED, unit.now, self.clock.monotonic(),
                data={"reason": f"the rules engine cannot run it: {err}",
                      "source": accepted.source, "sha256": None,
                      "in_force": draft.plan.version if draft.plan else None}))
            return ""
        draft.state, draft.deadline = state, deadline
        draft.plan, draft.plan_source, draft.plan_changed = plan, accepted.source, True
        draft.events.append(NewEvent(
            EventType.PLAN_APPLIED, unit.now, self.clock.monotonic(),
            data={"version": plan.version, "visits": len(plan.visits),
                  "source": accepted.source}))
        draft.events.extend(self._to_new_events(outputs))
        return ""

    def _to_new_events(self, outputs: list[RuleOutput]) -> list[NewEvent]:
        mono = self.clock.monotonic()
        return [
            NewEvent(type=o.type, time=o.time, mono=mono, severity=o.severity,
                     visit_id=o.visit_id, service_user_id=o.service_user_id,
                     carer_id=o.carer_id, data=o.data)
            for o in outputs
        ]

    # -- snapshots and hand-over -----------------------------------------------------------
    def snapshot_if_due(self) -> None:
        """Save the engine state when asked (heartbeat) or after many inputs; the journalled
        inputs it covers go. Deferred while inputs are held or the journal refuses."""
        if self._held or self.input_n == self._snapshot_upto:
            return
        if not self.snapshot_wanted and self.input_n - self._snapshot_upto < SNAPSHOT_EVERY:
            return
        try:
            self.journal.snapshot(
                Snapshot({"engine": self.state.to_json(include_plan=False)}, self.input_n))
        except JournalError as err:
            log.warning("engine snapshot deferred: %s", err)
            return
        self.snapshot_wanted = False
        self._snapshot_upto = self.input_n

    def take_fresh(self) -> list[EventEnvelope]:
        """Events journalled since the last call, for the outbox."""
        fresh, self._fresh = self._fresh, []
        return fresh

