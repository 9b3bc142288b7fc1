"""Supervision in the central process: gateway liveness and backup detection, run by
APScheduler, woken at the next deadline, from state in the database.

This module owns :class:`Supervisor`. Each run (:meth:`Supervisor.run_once`) reads the rows of
the gateways that are due (past their offline deadline, offline, or with a clock not known to
be good: an online gateway on time is not read at all), their plan history, stored events and
central's own raises, and applies the pure
rules of :mod:`central.supervision.liveness` (3 missed heartbeats: offline; ``gateway_offline``
raised, critical while a visit window is open) and :mod:`central.supervision.backup` (the
gateway's own rules engine over the facts central holds, raising ``visit_late``,
``visit_missed``, ``departure_missing`` and ``double_up_incomplete`` with
``raised_by="central"`` only while the gateway is offline, unheard of, or its clock is bad),
and escalation (:mod:`central.alerts.escalation`: an alert nobody took within its
severity's time goes to the next tier, as a lifecycle move by the system).
Nothing is kept in memory between runs, so a central restart loses nothing: the next run
rebuilds the same state from the database. The run returns the next deadline; the scheduler
sleeps until then (scaled by a simulated clock's speed), or until a gateway's ``status``
arrives (ingest wakes it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from central.alerts import AlertDeskError
from central.alerts.actors import SYSTEM
from central.alerts.escalation import EscalationPolicy, due_escalation, next_escalation
from central.ingest.alerts import Raise, record_of
from central.notify.delivery import WebhookSender
from central.reports.retention import purge_expired
from central.store import Store
from central.supervision.backup import (
    BackupHousehold,
    GatewayCondition,
    ObservedEvent,
    PlanChange,
)
from central.supervision.dedupe import AlertKey
from central.supervision.leader import RETRY_S as LEADER_RETRY_S
from central.supervision.leader import JobsLeader
from central.supervision.liveness import (
    DEFAULT_HEARTBEAT_S,
    MISSED_HEARTBEATS,
    GatewayLiveness,
    LivenessState,
    OfflineReason,
    offline_deadline,
    offline_severity,
)
from homecall.clock import Clock, parse_utc
from homecall.plan import GatewayPlan

log = logging.getLogger("homecall.central.supervision")

#: The longest the scheduler sleeps (real seconds) even with no deadline in sight.
MAX_SLEEP_S = 30.0
#: A run slower than this is logged: offline detection is late by as much.
SLOW_RUN_S = 2.0
_JOB = "supervise"


def _time(value: str | None) -> datetime | None:
    return parse_utc(value) if value else None


def liveness_of(row: Any, speed: float = 1.0) -> GatewayLiveness:
    """A gateway's liveness as the database holds it. A gateway's heartbeat interval is in
    real seconds; ``speed`` (a simulated clock's rate) turns it into clock seconds."""
    status = json.loads(row.status) if row.status else {}
    state: LivenessState = (
        "online" if row.state == "online" else "offline" if row.state == "offline"
        else "unknown")
    reason: OfflineReason | None = None
    if state == "offline":  # the last status received says which: its last will, or silence
        reason = "last_will" if status.get("state") == "offline" else "missed_heartbeats"
    return GatewayLiveness(
        gateway_id=row.id, state=state, last_seen=_time(row.last_seen), offline_reason=reason,
        heartbeat_s=float(status.get("heartbeat_s") or DEFAULT_HEARTBEAT_S) * speed,
        clock_ok=status.get("clock_ok"), boot_id=status.get("boot_id"),
        offline_since=_time(row.offline_since), caught_up_at=_time(row.caught_up_at),
    )


class Supervisor:
    """Runs liveness and backup detection for every gateway, at each deadline."""

    def __init__(self, store: Store, clock: Clock, *,
                 policy: EscalationPolicy | None = None,
                 leader: JobsLeader | None = None, retention_years: int = 2,
                 hearing: Callable[[], datetime | None] | None = None) -> None:
        self.store = store
        #: Since when (clock time) central has been connected to the broker without a break,
        #: or None while it is not: heartbeats central cannot receive are not missed ones.
        #: None here: always hearing (tests that drive the store directly).
        self.hearing = hearing
        #: the daily retention purge runs on the first run of each (clock) day
        self.retention_years = retention_years
        self._retention_done_on: date | None = None
        self.clock = clock
        #: With several processes: only the one holding the lead runs the jobs.
        self.leader = leader
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()  # one run at a time
        self._schedule_lock = threading.Lock()
        self._stopping = False
        self._woken = False  # a wake arrived since the current run started
        self.runs = 0
        # Read once per run (see run_once), for every gateway at once.
        self._offline_alerted: dict[str, datetime] = {}
        self._planned: set[str] = set()
        self.policy = policy or EscalationPolicy()
        self.webhooks = WebhookSender(store, clock)
        #: clock seconds per real second (heartbeats are real-time intervals)
        self.speed = float(getattr(clock, "speed", 1.0))

    # ------------------------------------------------------------------ scheduling
    def start(self) -> None:
        self._stopping = False
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per run is noise
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler.start()
        self.wake()

    def stop(self) -> None:
        # No job may re-arm itself once shutdown starts: APScheduler's shutdown holds its
        # job-store lock while it waits for a running job, and add_job needs that lock.
        with self._schedule_lock:
            self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.leader is not None:
            self.leader.release()

    def wake(self, *_: object) -> None:
        """Run as soon as possible (a gateway's liveness changed, or on start). A wake that
        comes while a run is under way makes the next run start as soon as that one ends
        (the run's own rescheduling must not push it back to the next deadline)."""
        self._schedule(datetime.now(UTC), woken=True)

    def _schedule(self, real_at: datetime, *, woken: bool = False,
                  unless_woken: bool = False) -> None:
        with self._schedule_lock:
            if woken:
                self._woken = True
            elif unless_woken and self._woken:
                real_at = datetime.now(UTC)
            if self._scheduler is None or self._stopping:
                return
            self._scheduler.add_job(self._run_and_reschedule, "date", run_date=real_at, id=_JOB,
                                    replace_existing=True, misfire_grace_time=None)

    def _run_and_reschedule(self) -> None:
        with self._schedule_lock:
            self._woken = False  # this run sees everything stored before it starts
        if self.leader is not None and not self._leads():
            self._schedule(datetime.now(UTC) + timedelta(seconds=LEADER_RETRY_S))
            return
        try:
            deadline = self.run_once()
        except Exception:  # a bad run must not stop supervision: log it, try again soon
            log.exception("supervision run failed")
            deadline = None
        sleep = MAX_SLEEP_S
        if deadline is not None:
            seconds_until = getattr(self.clock, "real_seconds_until", None)
            if seconds_until is not None:
                sleep = min(sleep, max(0.0, float(seconds_until(deadline))))
            else:
                sleep = min(sleep, max(0.0, (deadline - self.clock.now()).total_seconds()))
        self._schedule(datetime.now(UTC) + timedelta(seconds=sleep), unless_woken=True)

    def _leads(self) -> bool:
        assert self.leader is not None
        try:
            return self.leader.check()
        except Exception:  # the database is away: nobody can run the jobs; try again
            log.exception("could not check the jobs lead")
            return False

    # ------------------------------------------------------------------ one run
    def run_once(self) -> datetime | None:
        """Check every gateway that is due now; returns the next deadline (scenario time) or
        None."""
        with self._lock:
            self.runs += 1
            started = time.monotonic()
            now = self.clock.now()
            upcoming: list[datetime] = []
            # Only the gateways that are due or need backup: the rest are online and on time.
            rows = self.store.supervision_rows(due_at=now)
            next_offline = self.store.next_offline_deadline(now)
            if next_offline is not None:
                upcoming.append(next_offline)
            # Two queries for the whole fleet instead of two per offline gateway: a regional
            # outage takes thousands offline at once.
            self._offline_alerted = self.store.latest_alert_times("gateway_offline")
            self._planned = self.store.gateways_with_plans()
            upcoming += self._gateways(rows, now)
            upcoming += self._escalate()
            if self._retention_done_on != now.date():
                try:
                    purge_expired(self.store, now, self.retention_years)
                    self._retention_done_on = now.date()
                except Exception:
                    log.exception("retention purge failed")
            try:
                next_delivery = self.webhooks.deliver_due()
            except Exception:
                log.exception("webhook delivery failed")
                next_delivery = None
            if next_delivery is not None:
                upcoming.append(next_delivery)
            took = time.monotonic() - started
            if took > SLOW_RUN_S:
                log.warning("supervision run over %d gateways took %.1f s", len(rows), took)
            return min(upcoming, default=None)

    def _escalate(self) -> list[datetime]:
        """Escalate every alert not taken within its severity's time, through the lifecycle
        as the system (audited, and recorded in ``escalations``); returns when the next is
        due. The policy is the organisation's; until organisations land it is the default."""
        upcoming: list[datetime] = []
        policies = self.store.policies_by_gateway()  # organisations that set their own
        for row in self.store.awaiting_acknowledgement():
            record = record_of(row)
            now = self.clock.now()
            policy = policies.get(row.gateway_id, self.policy)
            command = due_escalation(record, policy, now)
            if command is not None:
                try:
                    record = self.store.move_alert(int(row.id), command, SYSTEM, now)
                except AlertDeskError:
                    continue  # moved meanwhile (taken, resolved): nothing to escalate
                log.info("alert %s escalated to %s", row.id, command.tier)
            step = next_escalation(record, policy)
            if step is not None:
                upcoming.append(step.due_at)
        return upcoming

    def _gateways(self, rows: list[Any], now: datetime) -> list[datetime]:
        """Liveness, ``gateway_offline`` and backup detection for the due gateways; returns
        their next deadlines. The writes a regional outage multiplies (marking thousands
        offline, raising their ``gateway_offline``) are batched, not a transaction each."""
        upcoming: list[datetime] = []
        checked: list[tuple[Any, GatewayLiveness]] = []
        silent: list[tuple[str, datetime]] = []
        for row in rows:
            try:
                live, deadline = self._liveness(row)
            except Exception:
                log.exception("supervision of gateway %s failed", row.id)
                continue
            if live is None:
                continue  # central cannot hear the broker: nothing to conclude
            if not live.needs_backup and deadline is not None and now < deadline:
                # Online with a good clock: the gateway raises its own alerts, and nothing
                # central holds can change until its offline deadline (a status that changes
                # its liveness wakes this run), so its plans and events are not read. At
                # 10,000 gateways this is what keeps a run to one query.
                upcoming.append(deadline)
                continue
            if deadline is not None and now >= deadline:
                silent.append((row.id, deadline))
            elif deadline is not None:
                upcoming.append(deadline)
            checked.append((row, live))
        if silent:
            self.store.mark_offline_many(silent, last_seen={
                row.id: row.last_seen for row, _ in checked if row.last_seen})
            if len(silent) <= 20:
                for gateway_id, since in silent:
                    log.info("gateway %s offline: no heartbeat since %s", gateway_id,
                             since.isoformat())
            else:
                log.warning("%d gateways offline at once: no heartbeat for three intervals",
                            len(silent))
            fresh = self.store.supervision_rows_of([gateway_id for gateway_id, _ in silent])
            checked = [(fresh[row.id], liveness_of(fresh[row.id], self.speed))
                       if row.id in fresh else (row, live) for row, live in checked]
        histories: dict[str, list[tuple[datetime, GatewayPlan]]] = {}
        offline_raises: list[Raise] = []
        for row, live in checked:
            try:
                history = self.store.plan_history(row.id) if row.id in self._planned else []
                histories[row.id] = history
                last_alerted = self._offline_alerted.get(row.id)
                if live.state == "offline" and live.offline_since is not None and (
                        last_alerted is None or last_alerted < live.offline_since):
                    offline_raises.append(Raise(
                        side="central", gateway_id=row.id, type="gateway_offline",
                        severity=offline_severity(history[-1][1] if history else None, now),
                        raised_at=live.offline_since,
                        data={"reason": live.offline_reason or "last_will",
                              "raised_by": "central"}))
            except Exception:
                log.exception("supervision of gateway %s failed", row.id)
        if offline_raises:
            self.store.raise_many_by_central(offline_raises, self.clock.now())
        for row, live in checked:
            planned = histories.get(row.id)
            if not planned:
                continue
            try:
                upcoming += self._backup(row.id, planned, live, now)
            except Exception:
                log.exception("backup detection for gateway %s failed", row.id)
        return upcoming

    def _liveness(self, row: Any) -> tuple[GatewayLiveness | None, datetime | None]:
        """The gateway's liveness and offline deadline; (None, None) while central itself is
        not connected to the broker."""
        live = liveness_of(row, self.speed)
        deadline = offline_deadline(live)
        if deadline is not None and self.hearing is not None:
            # Central's own link to the broker counts too: while it is down nobody's
            # heartbeats arrive, and after it comes back each gateway gets three heartbeats
            # from then before it counts as silent (no offline storm from central's outage).
            since = self.hearing()
            if since is None:
                return None, None  # not connected; a reconnect wakes the run
            grace = since + timedelta(seconds=live.heartbeat_s * MISSED_HEARTBEATS)
            deadline = max(deadline, grace)
        return live, deadline

    def _backup(self, gateway_id: str, history: list[tuple[datetime, GatewayPlan]],
                live: GatewayLiveness, now: datetime) -> list[datetime]:
        """Central's backup rules for one gateway with a plan: raise what is due."""
        household = self._household(gateway_id, history, live, now)
        for due in household.due(now):
            alert_id, result = self.store.raise_by_central(Raise(
                side="central", gateway_id=gateway_id, type=due.type,
                severity=due.severity, raised_at=due.time, visit_id=due.visit_id,
                service_user_id=due.service_user_id, carer_id=due.carer_id, data=due.data,
            ), self.clock.now())  # received_at: when it is stored, not when the run began
            log.info("central raised %s for %s visit %s (alert %s, %s)", due.type,
                     gateway_id, due.visit_id, alert_id, result)
        next_due = household.next_deadline()
        return [] if next_due is None else [next_due]

    def _household(self, gateway_id: str, history: list[tuple[datetime, Any]],
                   live: GatewayLiveness, now: datetime) -> BackupHousehold:
        since, first = history[0]
        household = BackupHousehold(gateway_id, first, since=since,
                                    needs_backup=live.needs_backup)
        for at, plan in history[1:]:
            household.observe(PlanChange(plan=plan, at=at))
        event_rows, raised = self.store.backup_facts(gateway_id)
        for r in event_rows:
            trusted = bool(r.clock_ok)
            received = parse_utc(r.received_at)
            household.observe(ObservedEvent(
                type=r.type, time=parse_utc(r.time) if trusted else received,
                received_at=received, visit_id=r.visit_id, service_user_id=r.service_user_id,
                carer_id=r.carer_id, clock_ok=trusted, time_trusted=trusted, seq=int(r.seq),
                data=json.loads(r.data),
            ))
        household.mark_raised_by_central({
            AlertKey.of(gateway_id, r.visit_id, r.type, r.carer_id): parse_utc(r.received_at)
            for r in raised if r.received_at
        })
        household.observe(GatewayCondition.from_liveness(live, now))
        return household
