"""The MQTT outbox: publishes journalled events to the broker until central acks them.

paho-mqtt runs its network loop on its own thread; every paho callback here only hands a
small message to the core thread: posted to the daemon's queue (``post``), which wakes the
core, or, for routine news nothing waits on while events only trickle (an accepted PUBACK,
an ack once central's position is known), set aside for the core's next batch or its next
quiet second (:meth:`Outbox.take_settled`). The core thread calls
:meth:`Outbox.handle` with those messages and :meth:`Outbox.pump` after journalling, and
only the core thread publishes. Delivery is judged by central's ``ack`` (highest contiguous
seq durably stored), not by the broker's PUBACK: on every (re)connect, and whenever acks stop
advancing for ``ack_timeout_s``, everything above the last ack is sent again; central stores
idempotently on (gateway_id, seq). Each resend that brings no ack doubles that wait (with
jitter, up to :data:`ACK_WAIT_MAX_S`) until an ack advances or the session is new: a
central that is slow under a flood is not sent the whole fleet's backlog again every few
seconds. MQTT 5 reason codes are checked on every PUBACK: 0x87
(not authorised) and any other code >= 0x80 mean *not delivered*; 0x10 (no matching
subscribers) is fine; a refused event stays in the journal and is retried after a jittered
back-off. After an outage the newest unsent *alerts* are published first, then the backlog
in seq order (central stores by seq and acks the highest contiguous seq, so the order of
arrival does not matter to it). At most ``window`` events are in flight.

Reconnects use a jittered exponential back-off (:class:`Backoff`, "full jitter"): paho's own
``reconnect_delay_set`` doubles without jitter, so on every disconnect or failed attempt the
next delay is drawn here and handed to paho as both its minimum and maximum (the only thing
a paho callback does besides posting to the core queue). A street of gateways that lost the
same broker therefore does not reconnect in lock-step. While events wait in the journal the
cap is low (``reconnect_waiting_max_s``, 2 s), so the broker is found within seconds of its
return; an idle gateway backs off to ``reconnect_max_s``.

Until central has said how far it got (the first ``ack``, which central also sends in reply
to every ``status``), only events the journal held when it was opened are published; the
journal then reconciles its provisional events with central's position (see
:meth:`Journal.reconcile`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import GatewayError
from gateway.backoff import Backoff
from gateway.delivery.journal import Journal
from gateway.delivery.messages import (
    BrokerSettings,
    Connected,
    Disconnected,
    Incoming,
    OutboxMessage,
    PositionKnown,
    PublishResult,
)
from homecall.wire import (
    AckMessage,
    Channel,
    EventEnvelope,
    StatusMessage,
    WireError,
    topic,
)

log = logging.getLogger(__name__)

__all__ = ["Backoff", "BrokerSettings", "Connected", "Disconnected", "Incoming", "Outbox",
           "OutboxError", "OutboxMessage", "PositionKnown", "PublishResult"]

NO_MATCHING_SUBSCRIBERS = 0x10
#: At most this many events in flight counts as a trickle (single taps): then routine PUBACKs
#: and acks are set aside rather than waking the core. In a burst they wake it as they come,
#: so the in-flight window drains as fast as the broker answers.
TRICKLE = 8
#: The longest the outbox waits for an ack before resending, after resends that brought none.
ACK_WAIT_MAX_S = 60.0
NOT_AUTHORIZED = 0x87


class OutboxError(GatewayError):
    """The outbox cannot be configured."""


def _no_delay(client: mqtt.Client) -> None:
    """Send each publish at once: paho leaves Nagle on, which holds a small packet up to
    ~40 ms behind an unacknowledged one."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Outbox:
    """Owns the gateway's MQTT session; publishes from the journal; tracks central's acks."""

    def __init__(
        self,
        gateway_id: str,
        journal: Journal,
        settings: BrokerSettings,
        post: Callable[[Any], None],
        *,
        window: int = 256,
        ack_timeout_s: float = 5.0,
    ) -> None:
        self.gateway_id = gateway_id
        self.journal = journal
        self.settings = settings
        self.post = post
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        #: How long acks may stall before everything unacked is sent again; doubles (with
        #: jitter) after each resend that brings no ack, back to ``ack_timeout_s`` on one.
        self.ack_wait_s = ack_timeout_s
        self.connected = False
        self._sent_upto = journal.acked_seq
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._early: set[int] = set()  # alerts published ahead of the in-order stream
        self._last_progress = time.monotonic()
        self._retry_after = 0.0
        self._denial_backoff = Backoff(base_s=1.0, cap_s=settings.reconnect_max_s)
        self._reconnect_backoff = Backoff(base_s=settings.reconnect_base_s,
                                          cap_s=settings.reconnect_max_s)
        self.denied = 0  # events the broker refused (PUBACK >= 0x80)
        self.logins_refused = 0  # connections the broker refused (CONNACK >= 0x80)
        self.published = 0
        self.reconnects = 0
        #: Routine news from paho that need not wake the core while events only trickle
        #: (:data:`TRICKLE`): an accepted PUBACK, an ack once central's position is known.
        #: Appended by paho's thread (a deque's append is atomic), taken by the core after
        #: its next batch or within a second (:meth:`take_settled`): at 50 taps a second the
        #: core wakes once a tap instead of once for the tap, its PUBACK and its ack.
        self._settled: deque[OutboxMessage] = deque()
        self._client = self._make_client()

    # -- paho setup (callbacks only post) --------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"gw-{self.gateway_id}",
            protocol=mqtt.MQTTv5,
        )
        if self.settings.username is not None:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self.settings.tls_ca or self.settings.tls_cert:
            client.tls_set(
                ca_certs=self.settings.tls_ca,
                certfile=self.settings.tls_cert,
                keyfile=self.settings.tls_key,
            )
        client.will_set(
            topic(self.gateway_id, Channel.STATUS),
            StatusMessage(gateway_id=self.gateway_id, state="offline").to_bytes(),
            qos=1,
            retain=True,
        )
        client.max_inflight_messages_set(self.window)
        client.max_queued_messages_set(0)
        self._next_reconnect_delay(client)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        if reason_code.is_failure:
            self._next_reconnect_delay(client)
            self.post(Disconnected(f"connect refused: {reason_code}"))
            return
        self._reconnect_backoff.reset()
        self._next_reconnect_delay(client)
        self.post(Connected(bool(getattr(flags, "session_present", False))))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._next_reconnect_delay(client)
        self.post(Disconnected("connect failed"))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, props: Any
    ) -> None:
        self._next_reconnect_delay(client)
        self.post(Disconnected(str(reason_code)))

    def _next_reconnect_delay(self, client: mqtt.Client) -> None:
        """Draw the next jittered delay and make it paho's only choice (paho's thread).
        While events wait in the journal the cap is ``reconnect_waiting_max_s``: a gateway
        with something to say retries often enough to find the broker within seconds."""
        waiting = self.journal.backlog > 0
        delay = self._reconnect_backoff.next_delay(
            self.settings.reconnect_waiting_max_s if waiting else None)
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, props: Any
    ) -> None:
        result = PublishResult(mid, int(getattr(reason_code, "value", reason_code)))
        if result.reason_code < 0x80 and len(self._inflight) <= TRICKLE:
            self._settled.append(result)  # a trickle of taps: nothing waits on this
        else:
            self.post(result)  # a refusal, or a burst the window must keep up with

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            channel = Channel(message.topic.rsplit("/", 1)[-1])
        except ValueError:
            return
        incoming = Incoming(channel, bytes(message.payload))
        if channel is Channel.ACK and self.journal.position_known \
                and len(self._inflight) <= TRICKLE:
            self._settled.append(incoming)  # acks are cumulative; only deletes wait on it
        else:
            self.post(incoming)  # the first ack (publishing waits on it), plans, commands

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 7 * 24 * 3600
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self, status: StatusMessage | None = None) -> None:
        if self.connected and status is not None:
            info = self._client.publish(
                topic(self.gateway_id, Channel.STATUS), status.to_bytes(), qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=1.0)
        self._client.disconnect()
        self._client.loop_stop()

    # -- core-thread API -------------------------------------------------------------------
    def take_settled(self) -> list[OutboxMessage]:
        """The routine PUBACKs and acks paho set aside since the last call, oldest first."""
        taken: list[OutboxMessage] = []
        while self._settled:
            taken.append(self._settled.popleft())
        return taken

    @property
    def has_settled(self) -> bool:
        return bool(self._settled)

    def handle(self, message: OutboxMessage) -> Incoming | PositionKnown | None:
        """Apply a message posted by a paho callback. Returns plan/cmd payloads to the caller,
        or :class:`PositionKnown` when central's first ack reconciled the journal."""
        if isinstance(message, Connected):
            self.connected = True
            _no_delay(self._client)
            self.reconnects += 1
            self._inflight.clear()
            self._early.clear()
            self._sent_upto = self.journal.acked_seq  # resend everything central has not acked
            self._last_progress = time.monotonic()
            self.ack_wait_s = self.ack_timeout_s
            for channel in (Channel.ACK, Channel.PLAN, Channel.CMD):
                self._client.subscribe(topic(self.gateway_id, channel), qos=1)
            log.info("connected to broker (session present: %s)", message.session_present)
        elif isinstance(message, Disconnected):
            if self.connected:
                log.warning("broker connection lost: %s", message.reason)
            elif message.reason.startswith("connect refused"):
                self.logins_refused += 1
                log.error("broker %s (check this gateway's identity); events stay in the "
                          "journal", message.reason)
            self.connected = False
            self._inflight.clear()
        elif isinstance(message, PublishResult):
            seq = self._inflight.pop(message.mid, None)
            if seq is not None and message.reason_code >= 0x80:
                self.denied += 1
                now = time.monotonic()
                # One back-off step per refused burst, not per refused event in it.
                delay = (self._retry_after - now if self._retry_after > now
                         else self._denial_backoff.next_delay())
                log.error(
                    "broker refused event seq %d (reason 0x%02X%s): kept in journal, "
                    "retrying in %.1fs",
                    seq,
                    message.reason_code,
                    " not authorised" if message.reason_code == NOT_AUTHORIZED else "",
                    delay,
                )
                self._sent_upto = min(self._sent_upto, seq - 1)
                self._early.clear()
                self._retry_after = now + delay
            elif seq is not None:
                self._denial_backoff.reset()
        elif isinstance(message, Incoming):
            if message.channel is Channel.ACK:
                return self._on_ack(message.payload)
            return message
        return None

    def _on_ack(self, payload: bytes) -> PositionKnown | None:
        try:
            ack = AckMessage.from_bytes(payload)
        except WireError as err:
            log.warning("ignored bad ack: %s", err)
            return None
        known: PositionKnown | None = None
        if not self.journal.position_known and ack.max_seq is not None:
            result = self.journal.reconcile(ack.seq, ack.max_seq)
            known = PositionKnown(result.shifted_by, result.lost)
            self._sent_upto = min(self._sent_upto, self.journal.acked_seq)
            self._early.clear()
        if ack.seq > self.journal.last_seq:
            log.error(
                "central acked seq %d beyond our last seq %d (journal replaced?)",
                ack.seq,
                self.journal.last_seq,
            )
        if self.journal.mark_acked(ack.seq):
            self._last_progress = time.monotonic()
            self.ack_wait_s = self.ack_timeout_s
            self._early = {s for s in self._early if s > ack.seq}
        return known

    def pump(self, fresh: Sequence[EventEnvelope] = ()) -> int:
        """Publish: newest unsent alerts first, then unacked events in seq order, within the
        in-flight window.

        ``fresh`` are events the caller has just journalled: when they are exactly the next
        ones to send (no backlog), they go out as they are, without reading them back.
        """
        if not self.connected:
            return 0
        now = time.monotonic()
        if now < self._retry_after:
            return 0
        upto = self.journal.publishable_seq
        if (
            self.journal.backlog
            and self._sent_upto >= upto
            and not self._inflight
            and now - self._last_progress > self.ack_wait_s
        ):
            log.info("no ack for %.0fs: resending from seq %d", self.ack_wait_s,
                     self.journal.acked_seq + 1)
            self._sent_upto = self.journal.acked_seq
            self._early.clear()
            self._last_progress = now
            self.ack_wait_s = min(ACK_WAIT_MAX_S, 2 * self.ack_wait_s * random.uniform(1.0, 1.25))
        room = self.window - len(self._inflight)
        if room <= 0 or self._sent_upto >= upto:
            return 0
        if self._sent_upto <= self.journal.acked_seq and not self._early:
            # Nothing was outstanding: the ack timer starts now. (Sending more while earlier
            # events are unacked must not restart it, or a steady stream of new events would
            # postpone the resend of a lost one forever.)
            self._last_progress = now
        sent = 0
        events_topic = topic(self.gateway_id, Channel.EVENTS)
        if (
            fresh
            and not self._early
            and fresh[0].seq == self._sent_upto + 1
            and fresh[-1].seq <= upto
            and len(fresh) <= room
        ):
            for envelope in fresh:
                if not self._send(events_topic, envelope.seq, envelope.to_bytes()):
                    break
                self._sent_upto = envelope.seq
                sent += 1
            self.published += sent
            return sent
        # Alerts jump the queue (newest first) when they are not next in line anyway.
        for entry in self.journal.pending_alerts(self._sent_upto + room, limit=room):
            if entry.seq in self._early:
                continue
            if not self._send(events_topic, entry.seq, entry.payload):
                break
            self._early.add(entry.seq)
            sent += 1
        room = self.window - len(self._inflight)
        if room > 0:
            for entry in self.journal.pending(self._sent_upto, limit=room):
                if entry.seq in self._early:
                    self._sent_upto = entry.seq
                    continue
                if not self._send(events_topic, entry.seq, entry.payload):
                    break
                self._sent_upto = entry.seq
                sent += 1
        self.published += sent
        return sent

    def _send(self, events_topic: str, seq: int, payload: bytes) -> bool:
        """Hand one event to paho (QoS 1) and track it as in flight; False if paho refused."""
        info = self._client.publish(events_topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        self._inflight[info.mid] = seq
        return True

    def publish_status(self, status: StatusMessage) -> None:
        if self.connected:
            self._client.publish(
                topic(self.gateway_id, Channel.STATUS), status.to_bytes(), qos=1, retain=True
            )

    @property
    def idle(self) -> bool:
        return not self._inflight and self._sent_upto >= self.journal.last_seq

    @property
    def inflight(self) -> int:
        return len(self._inflight)
