"""The gateway daemon: wires drivers → rules engine → journal → outbox, on one core thread.

Drivers, paho-mqtt and APScheduler all run threads of their own; none of them touches
state. Each only posts a message to the core queue. The core thread takes messages in
batches, steps the rules engine, commits every resulting event (with the engine state that
produced it) to the journal in one transaction, then lets the outbox publish and tells the
reader's LED/buzzer what happened. APScheduler's only job is to wake the core at the engine's
``next_deadline`` (and for the heartbeat); the engine decides everything about time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import queue
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import GatewayError
from gateway.delivery.journal import Journal, JournalError, NewEvent
from gateway.delivery.outbox import (
    BrokerSettings,
    Connected,
    Incoming,
    Outbox,
    OutboxMessage,
    PositionKnown,
)
from gateway.feedback import READER_DEVICES, tap_outcome
from gateway.rules import HouseholdState, initial_state, step
from gateway.rules.codec import InputCodecError, decode_input, encode_input
from gateway.rules.inputs import ClockStatus, EngineInput, PlanUpdate
from gateway.rules.outputs import RuleOutput
from homecall.clock import Clock, SystemClock, clock_from_spec
from homecall.observations import (
    BatteryReading,
    ButtonPress,
    ContactChange,
    DeviceFault,
    DeviceRecovered,
    Observation,
    TagRead,
    TamperChange,
)
from homecall.plan import GatewayPlan, PlanDocument, PlanError, read_key_file, verify_plan
from homecall.wire import (
    ALERT_SEVERITY,
    Channel,
    CommandMessage,
    DeviceStatus,
    EventEnvelope,
    EventType,
    StatusMessage,
    WireError,
    validate_gateway_id,
)

log = logging.getLogger(__name__)

_BATCH_MAX = 512
#: Engine inputs between state snapshots at most (a snapshot also follows every heartbeat).
_SNAPSHOT_EVERY = 2000


@dataclass
class GatewayConfig:
    gateway_id: str
    journal_path: Path
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    rfid_path: str | None = None
    hub_path: str | None = None
    nfc_path: str | None = None
    plan_file: Path | None = None
    clock_ok: str = "auto"  # auto | yes | no
    heartbeat_s: float = 10.0
    journal_sync: str = "FULL"
    device_state_file: Path | None = None
    token_public_key: bytes | None = None
    plan_public_key: bytes | None = None  # central's key; plans from central must verify
    journal_budget_bytes: int | None = None  # shed low-value telemetry above this
    journal_max_bytes: int | None = None  # hard cap (SQLite max_page_count): "disk full"


@dataclass(frozen=True, slots=True)
class _Tick:
    pass


@dataclass(frozen=True, slots=True)
class _Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


def detect_clock_ok(clock: Clock, mode: str) -> bool:
    """Is the wall clock known good? ``yes``/``no`` force it (tests, or a site whose NTP the
    gateway cannot see); ``auto``: a simulated clock is, a real one must be synchronised as
    systemd-timesyncd (its ``synchronized`` flag file), chrony (``chronyc tracking`` leap
    status Normal) or ``timedatectl`` (NTPSynchronized=yes) reports. Events recorded while
    it is not carry ``clock_ok: false`` with their monotonic time and boot id, so central
    can re-time them once a later event of the same boot has a good clock."""
    if mode in ("yes", "no"):
        return mode == "yes"
    if not isinstance(clock, SystemClock):
        return True
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    import subprocess

    checks = (
        (["chronyc", "-n", "tracking"], lambda out: "Leap status     : Normal" in out),
        (["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
         lambda out: out.strip() == "yes"),
    )
    for command, verdict in checks:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=2)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and verdict(out.stdout):
            return True
    return False


def _release_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc keeps them after a burst otherwise)."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


def read_boot_id(clock: Clock) -> str:
    if isinstance(clock, SystemClock):
        with contextlib.suppress(OSError):
            return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    return uuid.uuid4().hex


class GatewayDaemon:
    """One home's gateway."""

    def __init__(self, config: GatewayConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.gateway_id = validate_gateway_id(config.gateway_id)
        self.boot_id = read_boot_id(clock)
        self.clock_ok = detect_clock_ok(clock, config.clock_ok)
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.journal = Journal(
            config.journal_path, self.gateway_id, self.boot_id, synchronous=config.journal_sync,
            budget_bytes=config.journal_budget_bytes, max_bytes=config.journal_max_bytes,
            clock=clock,
        )
        self._held: list[NewEvent] = []  # events the journal could not take (disk full)
        self._held_inputs: list[tuple[int, str]] = []
        # Engine inputs since the last snapshot: journalled with the events they produce, so
        # a tap costs a small row rather than a full state save (see gateway/rules/codec.py).
        self._inputs: list[tuple[int, str]] = []
        self._input_n = 0
        self._snapshot_upto = 0
        self._snapshot_extra: dict[str, str] = {}  # e.g. a new plan, saved with the next one
        self._snapshot_wanted = False
        self._fresh: list[EventEnvelope] = []  # journalled, not yet offered to the outbox
        self._rejected_plan: str | None = None  # sha256 of the last plan payload rejected
        self._clock_checked = time.monotonic()
        self.outbox = Outbox(self.gateway_id, self.journal, config.broker, self.post)
        self.drivers: list[Any] = []
        self.hub: Any = None
        self.plan: GatewayPlan | None = None
        self.state: HouseholdState = self._restore_state()
        self.next_deadline: datetime | None = None
        self._scheduler: Any = None
        self._stopped = threading.Event()
        self.ready = threading.Event()

    # -- plumbing --------------------------------------------------------------------------
    def post(self, item: Any) -> None:
        """Thread-safe hand-off from drivers, paho and the scheduler to the core thread."""
        self.inbox.put(item)

    def _restore_state(self) -> HouseholdState:
        plan_text = self.journal.get_state("plan")
        self._plan_source = self.journal.get_state("plan_source") or "central"
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
        self._input_n = replay[-1][0] if replay else upto
        self._snapshot_upto = upto
        return state

    def _make_drivers(self) -> None:
        cfg = self.config
        if cfg.rfid_path:
            from gateway.drivers.rfid_reader import RfidReaderDriver

            self.drivers.append(RfidReaderDriver(cfg.rfid_path, self.clock, self.post))
        if cfg.hub_path:
            from gateway.drivers.sensor_hub import SensorHubDriver

            self.hub = SensorHubDriver(cfg.hub_path, self.clock, self.post)
            self.drivers.append(self.hub)
        if cfg.nfc_path:
            from gateway.drivers.nfc_reader import NfcReaderDriver

            self.drivers.append(
                NfcReaderDriver(
                    cfg.nfc_path, self.clock, self.post, token_public_key=cfg.token_public_key
                )
            )

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        # Hand the GIL over sooner (default 5 ms): a tap waiting on the driver or paho thread
        # should not queue behind a burst of core work.
        sys.setswitchinterval(0.0005)
        from apscheduler.executors.pool import ThreadPoolExecutor

        self._make_drivers()
        if self.hub is None:
            log.warning("no feedback device configured (no sensor hub): carers get no light "
                        "or sound at the door")
        plan_events: list[NewEvent] = []
        if self.config.plan_file is not None and self.plan is None:
            plan_events = self._apply_plan_bytes(self.config.plan_file.read_bytes(), source="file")

        # Jobs only post to the core queue: one worker thread is enough (default: up to 10).
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=1)}
        )
        self._scheduler.add_job(
            self.post,
            "interval",
            args=[_Heartbeat()],
            seconds=self.config.heartbeat_s,
            id="heartbeat",
        )
        self._scheduler.start()
        started = [NewEvent(EventType.GATEWAY_STARTED, self.clock.now(), self.clock.monotonic(),
                            data={"boot_id": self.boot_id, "clock_ok": self.clock_ok}),
                   *plan_events]
        damage = self.journal.damage
        if damage is not None:
            started.append(NewEvent(
                EventType.JOURNAL_DAMAGED, self.clock.now(), self.clock.monotonic(),
                severity=None,
                data={"reason": damage.reason, "kept_as": damage.kept_as,
                      "salvaged_last_seq": damage.salvaged_last_seq,
                      "recovered": damage.recovered},
            ))
        # Tell the engine the clock's state, fire anything that fell due while we were down
        # (journalled like any other outputs), then arm the next deadline.
        now = self.clock.now()
        started += self._to_new_events(self._engine(ClockStatus(self.clock_ok), now))
        started += self._to_new_events(self._engine(None, now))
        self._journal_append(started, inputs=self._take_inputs())
        self.outbox.pump(self._take_fresh())
        for driver in self.drivers:
            driver.start()
        self.outbox.start()
        self.ready.set()
        log.info("gateway %s running (journal %s)", self.gateway_id, self.config.journal_path)
        try:
            self._core_loop()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.post(_Stop())

    def _shutdown(self) -> None:
        for driver in self.drivers:
            try:
                driver.stop()
            except Exception as err:  # one stuck driver must not keep the journal open
                log.error("stopping driver %s: %s", getattr(driver, "name", "?"), err)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        self._snapshot()
        self.outbox.stop(StatusMessage(gateway_id=self.gateway_id, state="offline",
                                       time=self.clock.now(), boot_id=self.boot_id))
        self.journal.close()
        self._stopped.set()

    # -- the core thread -------------------------------------------------------------------
    def _core_loop(self) -> None:
        while True:
            try:
                item = self.inbox.get(timeout=1.0)
            except queue.Empty:
                if self._held:
                    self._journal_append([])
                self.outbox.pump(self._take_fresh())
                continue
            batch = [item]
            while len(batch) < _BATCH_MAX:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            if any(isinstance(i, _Stop) for i in batch):
                # Journal whatever arrived with the stop request, then leave.
                self._process([i for i in batch if not isinstance(i, _Stop)])
                return
            try:
                self._process(batch)
            except Exception:  # the core thread must outlive any one bad batch
                log.exception("core: batch of %d failed", len(batch))

    def _process(self, batch: list[Any]) -> None:
        pending: list[NewEvent] = []
        feedback: list[str] = []
        for item in batch:
            if isinstance(item, (TagRead, ContactChange, ButtonPress)):
                pending.extend(self._telemetry(item))
                outputs = self._engine(item, item.at)
                pending.extend(self._to_new_events(outputs))
                if isinstance(item, TagRead):
                    feedback.append(tap_outcome(outputs))
                elif isinstance(item, ButtonPress) and item.name == "no_reply":
                    feedback.append("no_reply")
            elif isinstance(item, (TamperChange, BatteryReading, DeviceFault, DeviceRecovered)):
                pending.extend(self._telemetry(item))
                if isinstance(item, DeviceFault) and item.device in READER_DEVICES:
                    feedback.append("fault")  # the reader the carer taps is broken
            elif isinstance(item, _Tick):
                outputs = self._engine(None, self.clock.now())
                pending.extend(self._to_new_events(outputs))
            elif isinstance(item, _Heartbeat):
                pending.extend(self._heartbeat())
            elif isinstance(item, OutboxMessage.__args__):
                incoming = self.outbox.handle(item)
                if isinstance(incoming, Incoming):
                    pending.extend(self._on_incoming(incoming))
                elif isinstance(incoming, PositionKnown):
                    pending.extend(self._on_position(incoming))
                if isinstance(item, Connected):
                    pending.extend(self._heartbeat())  # central answers: where it stands
            else:
                log.error("core: ignored unknown message %r", item)
        journalled = True
        if pending or self._inputs or self._held or self._held_inputs:
            journalled = self._journal_append(pending, inputs=self._take_inputs())
        # Only now, with the events of every input journalled, may a snapshot cover them.
        if self._snapshot_wanted or self._input_n - self._snapshot_upto >= _SNAPSHOT_EVERY:
            self._snapshot()
        self.outbox.pump(self._take_fresh())
        if self.hub is not None:
            for outcome in feedback:
                if outcome:
                    # A tap that could not be journalled must not look recorded to the carer.
                    self.hub.feedback(outcome if journalled else "fault")

    def _journal_append(self, events: list[NewEvent], state: dict[str, str] | None = None,
                        inputs: list[tuple[int, str]] | None = None) -> bool:
        """Journal ``events`` after any held back earlier. On a full disk the events are held
        in memory and retried (every second and with every batch); nothing is thrown away."""
        events = [*self._held, *events]
        inputs = [*self._held_inputs, *(inputs or [])]
        try:
            self._fresh += self.journal.append(
                events, clock_ok=self.clock_ok, state=state, inputs=inputs
            )
        except JournalError as err:
            if len(self._held) != len(events):
                log.critical("journal write failed, %d event(s) held in memory: %s",
                             len(events), err)
            self._held = events
            self._held_inputs = inputs
            return False
        self._held_inputs = []
        if self._held:
            log.warning("journal writable again: %d held event(s) journalled", len(self._held))
        self._held = []
        return True

    def _on_position(self, known: PositionKnown) -> list[NewEvent]:
        if not known.lost or self.journal.damage is not None:
            return []
        return [NewEvent(
            EventType.JOURNAL_DAMAGED, self.clock.now(), self.clock.monotonic(),
            data={"reason": "journal behind central (replaced or lost its tail)",
                  "lost": [list(r) for r in known.lost], "renumbered_by": known.shifted_by},
        )]

    def _engine(self, item: EngineInput | None, now: datetime) -> list[RuleOutput]:
        self.state, outputs, deadline = step(self.state, item, now)
        if not isinstance(item, PlanUpdate):  # a plan update is followed by a snapshot
            self._input_n += 1
            self._inputs.append((self._input_n, encode_input(item, now)))
        if deadline != self.next_deadline:
            self.next_deadline = deadline
            self._arm(deadline)
        return outputs

    def _arm(self, deadline: datetime | None) -> None:
        if self._scheduler is None:
            return
        if deadline is None:
            with contextlib.suppress(Exception):
                self._scheduler.remove_job("rules-deadline")
            return
        wait = max(0.0, self.clock.real_seconds_until(deadline))
        run_at = datetime.fromtimestamp(time.time() + wait, UTC)
        self._scheduler.add_job(
            self.post,
            "date",
            args=[_Tick()],
            run_date=run_at,
            id="rules-deadline",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _take_fresh(self) -> list[EventEnvelope]:
        fresh, self._fresh = self._fresh, []
        return fresh

    def _take_inputs(self) -> list[tuple[int, str]]:
        inputs, self._inputs = self._inputs, []
        return inputs

    def _snapshot(self) -> None:
        """Save the engine state as of the last input; the journalled inputs it covers go.

        Call only when every input's events are journalled (end of a batch, shutdown).
        """
        if self._held_inputs or (self._input_n == self._snapshot_upto and not self._snapshot_extra):
            return  # nothing new, or the journal is not taking writes right now
        state = {"engine": self.state.to_json(include_plan=False), **self._snapshot_extra}
        try:
            self.journal.snapshot(state, self._input_n)
        except JournalError as err:
            log.warning("engine snapshot deferred: %s", err)
            return
        self._snapshot_extra = {}
        self._snapshot_wanted = False
        self._snapshot_upto = self._input_n
        self._inputs.clear()  # covered by the snapshot

    def _to_new_events(self, outputs: list[RuleOutput]) -> list[NewEvent]:
        mono = self.clock.monotonic()
        return [
            NewEvent(
                type=o.type,
                time=o.time,
                mono=mono,
                severity=o.severity,
                visit_id=o.visit_id,
                service_user_id=o.service_user_id,
                carer_id=o.carer_id,
                data=o.data,
            )
            for o in outputs
        ]

    def _telemetry(self, item: Observation) -> list[NewEvent]:
        mono = self.clock.monotonic()
        if isinstance(item, ContactChange):
            kind = EventType.DOOR if item.kind == "door" else EventType.KEYSAFE
            state = "open" if item.open else "closed"
            return [NewEvent(kind, item.at, mono, data={"sensor": item.sensor, "state": state})]
        if isinstance(item, ButtonPress):
            return [NewEvent(EventType.BUTTON, item.at, mono, data={"name": item.name})]
        if isinstance(item, TamperChange):
            return [NewEvent(EventType.TAMPER, item.at, mono, data={"active": item.active})]
        if isinstance(item, BatteryReading):
            return [NewEvent(EventType.BATTERY, item.at, mono, data={"mv": item.millivolts})]
        if isinstance(item, DeviceFault):
            return [NewEvent(EventType.DEVICE_FAULT, item.at, mono,
                             severity=ALERT_SEVERITY[EventType.DEVICE_FAULT],
                             data={"device": item.device, "reason": item.reason})]
        if isinstance(item, DeviceRecovered):
            return [NewEvent(EventType.DEVICE_RECOVERED, item.at, mono,
                             data={"device": item.device})]
        return []

    # -- plan and commands -----------------------------------------------------------------
    def _on_incoming(self, incoming: Incoming) -> list[NewEvent]:
        if incoming.channel is Channel.PLAN:
            if not incoming.payload:
                return []
            return self._apply_plan_bytes(incoming.payload, source="central")
        if incoming.channel is Channel.CMD:
            try:
                command = CommandMessage.from_bytes(incoming.payload)
            except WireError as err:
                log.warning("ignored bad command: %s", err)
                return []
            log.info("command from central: %s", command.command)
            if command.command == "identify" and self.hub is not None:
                self.hub.feedback("accepted")
            return []
        return []

    def _apply_plan_bytes(self, payload: bytes, source: str) -> list[NewEvent]:
        now = self.clock.now()
        mono = self.clock.monotonic()
        try:
            plan = _parse_plan(payload, self.gateway_id)
            if source == "central" and self.config.plan_public_key is not None:
                verify_plan(plan, self.config.plan_public_key)
        except PlanError as err:
            digest = hashlib.sha256(payload).hexdigest()
            if digest == self._rejected_plan:
                return []  # the same retained plan again (after a reconnect): reported once
            self._rejected_plan = digest
            log.error("rejected plan from %s (keeping version %s): %s", source,
                      self.plan.version if self.plan else None, err)
            return [NewEvent(EventType.PLAN_REJECTED, now, mono,
                             data={"reason": str(err), "source": source, "sha256": digest,
                                   "in_force": self.plan.version if self.plan else None})]
        if (
            source == "central"
            and self.plan is not None
            and self._plan_source == "central"  # a plan from a file never outranks central's
            and plan.version <= self.plan.version
        ):
            return []
        self.plan = plan
        outputs = self._engine(PlanUpdate(plan), now)
        # The plan and the engine state that follows it are saved together (end of this
        # batch), so a replay of journalled inputs never crosses a plan change.
        self._plan_source = source
        self._snapshot_extra["plan"] = plan.model_dump_json()
        self._snapshot_extra["plan_source"] = source
        self._snapshot_wanted = True
        log.info("plan version %d in force (%d visits) from %s", plan.version, len(plan.visits),
                 source)
        return [NewEvent(EventType.PLAN_APPLIED, now, mono,
                         data={"version": plan.version, "visits": len(plan.visits),
                               "source": source}), *self._to_new_events(outputs)]

    def _heartbeat(self) -> list[NewEvent]:
        """Publish the status; re-check the clock (its change is an engine input)."""
        events: list[NewEvent] = []
        if self.config.clock_ok == "auto" and time.monotonic() - self._clock_checked > 60:
            self._clock_checked = time.monotonic()
            synced = detect_clock_ok(self.clock, "auto")
            if synced != self.clock_ok:
                log.warning("wall clock %s", "synchronised" if synced else "no longer in sync")
                self.clock_ok = synced
                events += self._to_new_events(self._engine(ClockStatus(synced), self.clock.now()))
        self._snapshot_wanted = True
        if self.inbox.empty():
            _release_free_memory()  # a quiet moment after a burst: keep the footprint small
        devices: list[DeviceStatus] = [d.status() for d in self.drivers]
        status = StatusMessage(
            gateway_id=self.gateway_id,
            state="online",
            time=self.clock.now(),
            boot_id=self.boot_id,
            clock_ok=self.clock_ok,
            backlog=self.journal.backlog,
            last_seq=self.journal.last_seq,
            plan_version=self.plan.version if self.plan else None,
            heartbeat_s=self.config.heartbeat_s,
            devices=devices,
        )
        self.outbox.publish_status(status)
        if self.config.device_state_file is not None:
            from gateway.devices_cli import write_device_states

            try:
                write_device_states(self.config.device_state_file, self.drivers)
            except OSError as err:
                log.warning("cannot write device state file: %s", err)
        return events


def _parse_plan(payload: bytes, gateway_id: str) -> GatewayPlan:
    try:
        plan = GatewayPlan.from_bytes(payload)
    except PlanError as first:
        try:
            document = PlanDocument.parse(payload)
        except PlanError:
            raise first from None
        plan = document.for_gateway(version=1, tag_salt=f"local-{gateway_id}")
    if plan.gateway_id != gateway_id:
        raise PlanError(f"plan is for gateway {plan.gateway_id!r}, this is {gateway_id!r}")
    return plan


# -- command line --------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", required=True, help="gateway id ([a-z0-9-]{3,64})")
    parser.add_argument("--journal", required=True, type=Path, help="journal SQLite file")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--mqtt-user", help="broker username (default: the gateway id)")
    parser.add_argument("--mqtt-password-file", type=Path, help="file holding the password")
    parser.add_argument("--rfid", help="125 kHz reader serial path or pyserial URL")
    parser.add_argument("--hub", help="sensor hub serial path or pyserial URL")
    parser.add_argument("--nfc", help="NFC reader: tty:AMA0:pn532, usb, or a pty path")
    parser.add_argument("--plan", type=Path, help="plan file to use until central sends one")
    parser.add_argument("--clock", default=os.environ.get("HOMECALL_CLOCK", "system"),
                        help="'system' or 'scaled:START:SPEED:ANCHOR' (env HOMECALL_CLOCK)")
    parser.add_argument("--clock-ok", choices=["auto", "yes", "no"], default="auto")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds (real time)")
    parser.add_argument("--journal-sync", choices=["FULL", "NORMAL", "EXTRA"], default="FULL")
    parser.add_argument("--device-state-file", type=Path,
                        help="where `homecall gateway devices` reads device health "
                             "(default: devices.json beside the journal)")
    parser.add_argument("--token-public-key", type=Path, help="central's carer-token public key")
    parser.add_argument("--plan-public-key", type=Path,
                        help="central's Ed25519 public key (raw or hex) that plans must be signed "
                             "with (default: --token-public-key; unset: plans are not checked)")
    parser.add_argument("--journal-budget", type=int, metavar="BYTES",
                        help="shed low-value telemetry when the journal holds more than this")
    parser.add_argument("--journal-max-bytes", type=int, metavar="BYTES",
                        help="hard journal size cap (SQLite max_page_count), as a full disk")
    parser.add_argument("--reconnect-max", type=float, default=60.0, metavar="S",
                        help="cap of the jittered exponential reconnect back-off (seconds)")


def run(args: argparse.Namespace) -> int:
    password = args.mqtt_password_file.read_text().strip() if args.mqtt_password_file else None
    config = GatewayConfig(
        gateway_id=args.id,
        journal_path=args.journal,
        broker=BrokerSettings(
            host=args.mqtt_host,
            port=args.mqtt_port,
            username=args.mqtt_user or (args.id if password else None),
            password=password,
            reconnect_base_s=min(1.0, args.reconnect_max),
            reconnect_max_s=args.reconnect_max,
        ),
        rfid_path=args.rfid,
        hub_path=args.hub,
        nfc_path=args.nfc,
        plan_file=args.plan,
        clock_ok=args.clock_ok,
        heartbeat_s=args.heartbeat,
        journal_sync=args.journal_sync,
        device_state_file=args.device_state_file or args.journal.parent / "devices.json",
        token_public_key=args.token_public_key.read_bytes() if args.token_public_key else None,
        journal_budget_bytes=args.journal_budget,
        journal_max_bytes=args.journal_max_bytes,
    )
    plan_key = args.plan_public_key or args.token_public_key
    try:
        config.plan_public_key = read_key_file(plan_key) if plan_key else None
    except (PlanError, OSError) as err:
        log.error("plan public key: %s", err)
        return 2
    try:
        daemon = GatewayDaemon(config, clock_from_spec(args.clock))
    except (GatewayError, WireError) as err:
        log.error("%s", err)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())
    daemon.run()
    return 0
