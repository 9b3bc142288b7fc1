"""Central's MQTT side: event ingest on a shared subscription, acks, plan and status topics.

Central consumes ``$share/central/homecall/v1/gw/+/events`` and ``.../+/status`` so ingest
scales by adding workers (a short non-shared subscription at each connect picks up retained
statuses). paho's callbacks only enqueue; one worker
thread takes messages in batches (a batch's statuses in one transaction, see
:mod:`central.ingest.statuses`), validates each (a bad payload is logged with its reason
and kept in ``rejected_messages``, never crashing ingest), stores the batch in one
transaction, and only then acknowledges the MQTT deliveries (manual PUBACK) and publishes
each touched gateway's ``ack`` (highest contiguous seq durably stored, plus the highest seq
held). Every ``status`` a gateway publishes is answered with an ``ack`` too, so a gateway
that just started (or replaced a damaged journal) learns where central stands before it
publishes new seqs. Gap tombstones (:class:`~homecall.wire.EventGap`) on the events topic
are stored as placeholders (see :mod:`central.ingest.events` for how events are stored).
While central is not connected to the broker it logs so, with the broker's address and the
reason, every ``broker_report_s`` seconds until it is. Plans are signed with central's
Ed25519 key (when configured) and published retained on ``gw/{id}/plan``; on every
(re)connect the current plan of every gateway is published again, so a broker that lost
its retained messages gets them back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from central.ingest.events import StoreResult
from central.ingest.rejects import Rejected
from central.ingest.statuses import StatusRecord
from central.settings import CentralSettings
from central.store import Store
from homecall.clock import Clock
from homecall.plan import GatewayPlan, read_key_file, sign_plan
from homecall.wire import (
    ALL_STATUS_SUBSCRIPTION,
    MAX_PLAN_MESSAGE_BYTES,
    SHARED_EVENTS_SUBSCRIPTION,
    SHARED_STATUS_SUBSCRIPTION,
    TOPIC_ROOT,
    AckMessage,
    Channel,
    CommandMessage,
    EventEnvelope,
    EventGap,
    StatusMessage,
    WireError,
    implausible_time,
    parse_topic,
    topic,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
#: Non-shared, only while sweeping retained events after a connect.
ALL_EVENTS_SWEEP = f"{TOPIC_ROOT}/+/events"


@dataclass(frozen=True, slots=True)
class _Republish:
    """Worker job: publish every gateway's current plan again (after a (re)connect)."""


@dataclass(frozen=True, slots=True)
class _Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool = False


class Ingest:
    """Owns central's MQTT session."""

    def __init__(self, settings: CentralSettings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        #: clock seconds per real second (a scaled clock's speed): heartbeats are real time
        self._speed = float(getattr(clock, "speed", 1.0))
        self._queue: queue.SimpleQueue[_Received | _Republish | None] = queue.SimpleQueue()
        key_path = getattr(settings, "signing_key_path", None)
        self._signing_key = read_key_file(key_path) if key_path else None
        self._worker: threading.Thread | None = None
        self.connected = threading.Event()
        self._connected_at: datetime | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._refused: str | None = None  # why the broker last refused central, if it did
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.gap_seqs = 0
        #: Called with the gateway id after a stored status changed what central knows of
        #: its liveness (state or heartbeat interval): supervision wakes on it.
        self.status_listeners: list[Callable[[str], None]] = []
        self._client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.mqtt_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if settings.mqtt_user:
            self._client.username_pw_set(settings.mqtt_user, settings.mqtt_password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.max_inflight_messages_set(1000)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._sweep_mid: int | None = None

    def hearing_since(self) -> datetime | None:
        """Since when (clock time) central has been connected to the broker without a
        break; None while it is not (supervision does not count heartbeats it cannot hear)."""
        return self._connected_at if self.connected.is_set() else None

    def queue_depth(self) -> int:
        """Messages received and not yet stored (for ``/metrics``)."""
        return self._queue.qsize()

    # -- paho callbacks: enqueue / subscribe only ------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            log.error("broker refused central: %s", reason_code)
            return
        self._refused = None
        sock = client.socket()
        if isinstance(sock, socket.socket):  # acks go out at once, not behind Nagle
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Events and statuses both come on shared subscriptions: with N ingest workers the
        # broker deals each message to one of them. Retain-as-published on the events: a
        # retained event (from a broker without HomeCall's policy) arrives flagged and is
        # kept aside. Shared subscriptions get no retained messages on subscribe, so a short
        # non-shared subscription sweeps up retained statuses (every gateway's last word) and
        # events once per connect; it is unsubscribed again when its SUBACK arrives (the
        # retained messages follow the SUBACK).
        flagged = SubscribeOptions(qos=1, retainAsPublished=True)
        client.subscribe([(SHARED_EVENTS_SUBSCRIPTION, flagged),
                          (SHARED_STATUS_SUBSCRIPTION, SubscribeOptions(qos=1))])
        _, self._sweep_mid = client.subscribe([(ALL_EVENTS_SWEEP, SubscribeOptions(qos=1)),
                                               (ALL_STATUS_SUBSCRIPTION,
                                                SubscribeOptions(qos=1))])
        self._queue.put(_Republish())
        self._connected_at = self.clock.now()
        self.connected.set()
        log.info("central connected to broker")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        if mid == self._sweep_mid:  # retained messages follow the SUBACK: stop there
            client.unsubscribe([ALL_EVENTS_SWEEP, ALL_STATUS_SUBSCRIPTION])

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        self.connected.clear()
        self._connected_at = None

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(_Received(message.topic, bytes(message.payload), message.mid, message.qos,
                                  bool(message.retain)))

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 7 * 24 * 3600
        self._client.connect_async(
            self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30,
            clean_start=False, properties=properties,
        )
        self._client.loop_start()
        self._worker = threading.Thread(target=self._work, name="central-ingest", daemon=True)
        self._worker.start()
        self._watcher = threading.Thread(target=self._watch_broker, name="central-broker-watch",
                                         daemon=True)
        self._watcher.start()

    def _watch_broker(self) -> None:
        """Log, until connected, that the broker is unreachable: where, and why."""
        address = f"{self.settings.mqtt_host}:{self.settings.mqtt_port}"
        was_down = False
        while not self._stopping.wait(self.settings.broker_report_s):
            if self.connected.is_set():
                if was_down:
                    log.info("broker %s reachable again; central connected", address)
                was_down = False
                continue
            was_down = True
            reason = self._refused or probe_broker(self.settings.mqtt_host,
                                                   self.settings.mqtt_port)
            log.warning("broker %s unreachable: %s (retrying)", address,
                        reason or "no MQTT session yet")

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()

    # -- publishing (called from API handlers and the worker) ------------------------------
    def publish_plan(self, plan: GatewayPlan) -> None:
        if self._signing_key is not None:
            plan = sign_plan(plan, self._signing_key)
        payload = plan.to_bytes()
        if len(payload) > MAX_PLAN_MESSAGE_BYTES:  # the broker would disconnect central
            log.error("plan v%d for %s is %d bytes, over %d: not published", plan.version,
                      plan.gateway_id, len(payload), MAX_PLAN_MESSAGE_BYTES)
            return
        self._client.publish(topic(plan.gateway_id, Channel.PLAN), payload, qos=1, retain=True)

    def _republish_plans(self) -> None:
        for gateway_id in self.store.gateway_ids():
            current = self.store.current_plan(gateway_id)
            if current is not None:
                self.publish_plan(current[1])

    def publish_ack(self, gateway_id: str, seq: int | None = None) -> None:
        contiguous, highest = self.store.position(gateway_id)
        self._send_ack(gateway_id, contiguous if seq is None else seq, highest)

    def _send_ack(self, gateway_id: str, seq: int, highest: int) -> None:
        ack = AckMessage(seq=seq, max_seq=highest)
        self._client.publish(topic(gateway_id, Channel.ACK), ack.to_bytes(), qos=1)

    def publish_command(self, gateway_id: str, command: CommandMessage) -> None:
        self._client.publish(topic(gateway_id, Channel.CMD), command.to_bytes(), qos=1)

    # -- worker ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Republish):
                try:
                    self._republish_plans()
                except Exception:
                    log.exception("republishing plans failed")
                continue
            batch = [item]
            stop = False
            while len(batch) < self.settings.ingest_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if isinstance(nxt, _Republish):
                    self._queue.put(nxt)
                    break
                batch.append(nxt)
            try:
                self._handle(batch)
            except Exception:
                log.exception("ingest batch of %d failed; deliveries left unacked", len(batch))
            if stop:
                return

    def _handle(self, batch: list[_Received]) -> None:
        now = self.clock.now()
        events: list[tuple[str, EventEnvelope]] = []
        gaps: list[EventGap] = []
        rejects: list[Rejected] = []
        statuses: list[tuple[StatusRecord, _Received]] = []
        for received in batch:
            try:
                gateway_id, channel = parse_topic(received.topic)
                if channel is Channel.STATUS:
                    if received.payload:  # an empty one clears a retained status
                        statuses.append((_status_record(gateway_id, received.payload),
                                         received))
                    continue
                if channel is not Channel.EVENTS:
                    raise WireError(f"central does not consume {channel.value!r}")
                if not received.payload:
                    continue  # an empty message clears a retained one: nothing to ingest
                if received.retain:
                    self._clear_retained(received)
                    raise WireError("retained message on an events topic: kept aside as "
                                    "suspect, not ingested, and cleared from the broker")
                if _is_gap(received.payload):
                    gap = EventGap.from_bytes(received.payload)
                    if gap.gateway_id != gateway_id:
                        raise WireError(f"gap names gateway {gap.gateway_id!r} but came on "
                                        f"{gateway_id!r}'s topic")
                    gaps.append(gap)
                    continue
                event = EventEnvelope.from_bytes(received.payload)
                if event.gateway_id != gateway_id:
                    raise WireError(
                        f"event names gateway {event.gateway_id!r} but came on "
                        f"{gateway_id!r}'s topic"
                    )
                if not event.verify_hash():
                    raise WireError(f"event seq {event.seq}: hash does not match its content")
                if event.clock_ok:
                    implausible = implausible_time(event.time, now)
                    if implausible is not None:
                        raise WireError(f"event seq {event.seq}: implausible {implausible}")
                events.append((gateway_id, event))
            except WireError as err:
                rejects.append(Rejected(received.topic, str(err), received.payload))
        came_online = self._store_statuses(statuses, now, rejects)
        touched: dict[str, int] = {}
        highest: dict[str, int] = {}
        if gaps:
            gap_result, failed_gaps = self._store_isolated(
                gaps, lambda part: self.store.store_gaps(part, now))
            self.gap_seqs += gap_result.stored
            touched.update(gap_result.acks)
            highest.update(gap_result.highest)
            rejects.extend(Rejected(topic(g.gateway_id, Channel.EVENTS), reason, g.to_bytes())
                           for g, reason in failed_gaps)
        if events:
            result, failed_events = self._store_isolated(
                events, lambda part: self.store.store_events(part, now))
            self.stored += result.stored
            self.duplicates += result.duplicates
            touched.update(result.acks)
            highest.update(result.highest)
            rejects.extend(Rejected(topic(gw, Channel.EVENTS), reason, e.to_bytes())
                           for (gw, e), reason in failed_events)
        # The stored events are committed: ack them before writing what was set aside, so a
        # batch full of poison does not hold up the good events beside it.
        for gateway_id, seq in touched.items():
            if gateway_id in highest:  # read in the storing transaction: no second query
                self._send_ack(gateway_id, seq, highest[gateway_id])
            else:
                self.publish_ack(gateway_id, seq)
        # An online status is answered with where central stands, so a (re)started gateway
        # learns it before it publishes new seqs.
        for gateway_id, (contiguous, held) in came_online.items():
            if gateway_id not in touched:
                self._send_ack(gateway_id, contiguous, held)
        if rejects:
            # One line per batch, not per message: a flood must not flood the log too.
            log.warning("rejected %d message(s), kept in rejected_messages; first on %s: %s",
                        len(rejects), rejects[0].topic, rejects[0].reason[:300])
            self.rejected += len(rejects)
            self.store.reject_many(rejects, now)
        # Only now, with everything durably stored (or kept aside), release the deliveries.
        for received in batch:
            if received.qos > 0:
                self._client.ack(received.mid, received.qos)

    def _store_isolated(
        self, items: list[_T], store: Callable[[list[_T]], StoreResult]
    ) -> tuple[StoreResult, list[tuple[_T, str]]]:
        """Store ``items`` in one transaction; if that fails, one by one, so a message the
        store cannot take is set aside (returned with the reason) and never rolls back the
        valid messages beside it."""
        try:
            return store(items), []
        except Exception as err:
            if len(items) == 1:
                log.warning("storage refused a message: %s", err)
                return StoreResult(0, 0, 0, {}), [(items[0], _storage_reason(err))]
            log.warning("storing a batch of %d failed (%s); storing one by one",
                        len(items), _storage_reason(err))
        stored = duplicates = conflicts = 0
        acks: dict[str, int] = {}
        highest: dict[str, int] = {}
        failed: list[tuple[_T, str]] = []
        for item in items:
            try:
                result = store([item])
            except Exception as err:
                log.warning("storage refused a message: %s", err)
                failed.append((item, _storage_reason(err)))
                continue
            stored += result.stored
            duplicates += result.duplicates
            conflicts += result.conflicts
            acks.update(result.acks)
            highest.update(result.highest)
        return StoreResult(stored, duplicates, conflicts, acks, highest), failed

    def _clear_retained(self, received: _Received) -> None:
        """Clear a retained message on an events topic (an empty retained publish)."""
        log.warning("retained message on %s: clearing it", received.topic)
        self._client.publish(received.topic, b"", qos=1, retain=True)

    def _store_statuses(self, statuses: list[tuple[StatusRecord, _Received]],
                        now: datetime, rejects: list[Rejected]) -> dict[str, tuple[int, int]]:
        """Store a batch's statuses in one transaction (one by one if that fails, setting
        aside what storage refuses); wake the listeners for gateways whose liveness changed.
        Returns the position of each gateway whose last status said ``online``."""
        if not statuses:
            return {}
        records = [record for record, _ in statuses]
        try:
            outcomes = self.store.record_statuses(records, now, self._speed)
        except Exception as err:
            log.warning("storing %d status(es) failed (%s); storing one by one",
                        len(records), _storage_reason(err))
            outcomes = {}
            for record, received in statuses:
                try:
                    outcomes.update(self.store.record_statuses([record], now, self._speed))
                except Exception as one_err:
                    rejects.append(Rejected(received.topic, _storage_reason(one_err),
                                            received.payload))
        for outcome in outcomes.values():
            if outcome.changed:
                for listener in self.status_listeners:
                    listener(outcome.gateway_id)
        return {gid: outcome.position for gid, outcome in outcomes.items()
                if outcome.state == "online"}


def _status_record(gateway_id: str, payload: bytes) -> StatusRecord:
    status = StatusMessage.from_bytes(payload)
    if status.gateway_id != gateway_id:
        raise WireError(f"status names {status.gateway_id!r} but came on "
                        f"{gateway_id!r}'s topic")
    return StatusRecord(gateway_id, status.model_dump_json(), status.state,
                        caught_up=status.clock_ok is True and status.backlog == 0,
                        clock_ok=status.clock_ok, heartbeat_s=status.heartbeat_s)


def probe_broker(host: str, port: int, timeout: float = 2.0) -> str | None:
    """``None`` if something accepts TCP connections at ``host:port``; otherwise why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__


def _storage_reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"storage failed: {type(err).__name__}: {text[:300]}"


def _is_gap(payload: bytes) -> bool:
    if b'"gap"' not in payload:
        return False
    try:
        body = json.loads(payload)
    except ValueError:
        return False
    return isinstance(body, dict) and "gap" in body
