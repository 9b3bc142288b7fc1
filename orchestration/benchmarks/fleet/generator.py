"""The load generator: :class:`Fleet` drives N :class:`~.gateway.SimGateway` paho-mqtt
clients on one asyncio loop (paho's socket callbacks register each socket with the loop; no
thread per client). It connects them within a CONNECT budget and reconnects them, publishes
their birth, heartbeats and Poisson events, honours central's acks (and resends everything
unacked when acks stop advancing), and stops a sample without DISCONNECT (socket closed, or
left open and silent). :class:`Counters` tally what was sent and acked, with each event's
publish-to-ack lag; :func:`source_addresses` spreads connections over loopback addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from homecall.wire import Channel, topic
from orchestration.benchmarks.fleet.gateway import (
    KEEPALIVE_S,
    SESSION_EXPIRY_S,
    WINDOW,
    SimGateway,
)


@dataclass
class Counters:
    connect_failed: int = 0
    disconnects: int = 0
    published: int = 0
    resent: int = 0
    acks: int = 0
    heartbeats: int = 0
    heartbeats_skipped: int = 0  # rounds the generator was too busy to send
    lags: list[float] = field(default_factory=list)
    acked_events: int = 0


# -- the fleet ---------------------------------------------------------------------------------
class Fleet:
    """N simulated gateways on one asyncio loop."""

    def __init__(self, args: argparse.Namespace, port: int, passwords: dict[str, str],
                 central_password: str, http_port: int) -> None:
        self.args = args
        self.port = port
        self.http_port = http_port
        self.http_headers: dict[str, str] = {}  # central's API needs a login
        self.rng = random.Random(args.seed)
        self.gateways = [SimGateway(gid, pw, heartbeat_s=args.heartbeat)
                         for gid, pw in passwords.items()]
        self.by_id = {g.gateway_id: g for g in self.gateways}
        self.central_password = central_password
        self.counters = Counters()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._waiting_connack: set[SimGateway] = set()
        self.sources = source_addresses(len(self.gateways), args.source_addresses)
        self.running = False  # heartbeats and events flow
        self.live = list(self.gateways)  # not stopped
        self._pending_resend: set[SimGateway] = set()
        self._tasks: set[asyncio.Future[None]] = set()

    # paho <-> asyncio glue: paho tells us when its socket opens/closes and wants writing
    def _attach(self, client: mqtt.Client) -> None:
        assert self.loop is not None
        loop = self.loop

        def opened(c: mqtt.Client, userdata: Any, sock: Any) -> None:
            loop.add_reader(sock, c.loop_read)

        def closed(c: mqtt.Client, userdata: Any, sock: Any) -> None:
            loop.remove_reader(sock)
            loop.remove_writer(sock)

        def want_write(c: mqtt.Client, userdata: Any, sock: Any) -> None:
            loop.add_writer(sock, c.loop_write)

        def written(c: mqtt.Client, userdata: Any, sock: Any) -> None:
            loop.remove_writer(sock)

        client.on_socket_open = opened
        client.on_socket_close = closed
        client.on_socket_register_write = want_write
        client.on_socket_unregister_write = written

    def _make_client(self, gw: SimGateway) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"gw-{gw.gateway_id}",
            protocol=mqtt.MQTTv5,
            userdata=gw,
        )
        client.username_pw_set(gw.gateway_id, gw.password)
        client.will_set(topic(gw.gateway_id, Channel.STATUS), gw.status("offline"), qos=1,
                        retain=True)
        client.max_inflight_messages_set(WINDOW)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._attach(client)
        return client

    def _connect(self, gw: SimGateway, index: int) -> None:
        client = gw.client = self._make_client(gw)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        self._waiting_connack.add(gw)
        try:
            client.connect("127.0.0.1", self.port, keepalive=KEEPALIVE_S,
                           bind_address=self.sources[index % len(self.sources)],
                           clean_start=False, properties=properties)
        except OSError as err:
            self.counters.connect_failed += 1
            self._waiting_connack.discard(gw)
            if self._slots is not None:
                self._slots.release()
            if self.counters.connect_failed <= 5:
                print(f"connect {gw.gateway_id} failed: {err}", file=sys.stderr)

    # paho callbacks (run inside loop_read, on the loop's thread)
    def _on_connect(self, client: mqtt.Client, gw: SimGateway, flags: Any, reason_code: Any,
                    props: Any) -> None:
        if gw in self._waiting_connack:
            self._waiting_connack.discard(gw)
            if self._slots is not None:
                self._slots.release()
        if reason_code.is_failure:
            self.counters.connect_failed += 1
            return
        gw.connected = True
        gw.connack_at = gw.connack_at or time.monotonic()
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe([(topic(gw.gateway_id, ch), 1)
                          for ch in (Channel.ACK, Channel.PLAN, Channel.CMD)])
        client.publish(topic(gw.gateway_id, Channel.STATUS), gw.status(), qos=1, retain=True)
        # after a reconnect: everything central has not acked goes again
        self._resend(gw)

    def _on_disconnect(self, client: mqtt.Client, gw: SimGateway, flags: Any, reason_code: Any,
                       props: Any) -> None:
        gw.connected = False
        if gw.stopped_at is None:
            self.counters.disconnects += 1
            assert self.loop is not None
            self.loop.call_later(self.rng.uniform(0.2, 2.0), self._reconnect, gw)

    def _reconnect(self, gw: SimGateway) -> None:
        task = asyncio.ensure_future(self._reconnect_bounded(gw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect_bounded(self, gw: SimGateway) -> None:
        """Reconnect within the CONNECT budget (a blocking connect to a full listen queue
        would stall every gateway on the loop)."""
        if self._slots is None or gw.stopped_at is not None or gw.client is None:
            return
        await self._slots.acquire()
        if gw.connected or gw.stopped_at is not None:
            self._slots.release()
            return
        self._waiting_connack.add(gw)
        try:
            gw.client.reconnect()
        except OSError:
            self._waiting_connack.discard(gw)
            self._slots.release()
            assert self.loop is not None
            self.loop.call_later(self.rng.uniform(1.0, 5.0), self._reconnect, gw)

    def _on_message(self, client: mqtt.Client, gw: SimGateway, message: mqtt.MQTTMessage) -> None:
        if not message.topic.endswith("/ack"):
            return  # plan / cmd: nothing to do for a load generator
        try:
            seq = int(json.loads(message.payload)["seq"])
        except (ValueError, KeyError, TypeError):
            return
        now = time.monotonic()
        self.counters.acks += 1
        gw.first_ack_at = gw.first_ack_at or now
        if seq > gw.acked:
            gw.acked = seq
            gw.last_progress = now
        while gw.unacked and gw.unacked[0][0] <= seq:
            _, _, sent_at = gw.unacked.popleft()
            self.counters.lags.append(now - sent_at)
            self.counters.acked_events += 1
        if not gw.unacked:
            self._pending_resend.discard(gw)

    # publishing
    def publish_event(self, gw: SimGateway, seq: int, payload: bytes) -> None:
        now = time.monotonic()
        if not gw.unacked:
            gw.last_progress = now  # the ack timer starts with the first outstanding event
        gw.unacked.append((seq, payload, now))
        self._pending_resend.add(gw)
        if gw.connected and gw.client is not None:
            gw.client.publish(topic(gw.gateway_id, Channel.EVENTS), payload, qos=1)
            self.counters.published += 1

    def _resend(self, gw: SimGateway) -> None:
        if gw.client is None or not gw.connected:
            return
        events_topic = topic(gw.gateway_id, Channel.EVENTS)
        for _, payload, _ in gw.unacked:
            gw.client.publish(events_topic, payload, qos=1)
            self.counters.resent += 1
        gw.last_progress = time.monotonic()

    # periodic work
    async def heartbeats(self) -> None:
        """Each gateway's status every ``--heartbeat`` s, their phases spread evenly over
        ``tick`` buckets. Scheduled by the clock: a late loop sends every bucket that fell
        due, so the offered rate holds however busy the machine is."""
        tick = 0.1
        buckets = max(1, round(self.args.heartbeat / tick))
        index = 0
        due = time.monotonic()
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not self.running:
                due = time.monotonic() + tick
                continue
            while due <= time.monotonic():
                behind = time.monotonic() - due
                if behind > self.args.heartbeat:
                    # the generator itself cannot keep up: skip a round, and say so
                    self.counters.heartbeats_skipped += len(self.gateways)
                    due += self.args.heartbeat
                    continue
                for gw in self.gateways[index::buckets]:
                    if gw.connected and gw.stopped_at is None and gw.client is not None:
                        gw.client.publish(topic(gw.gateway_id, Channel.STATUS), gw.status(),
                                          qos=1, retain=True)
                        self.counters.heartbeats += 1
                index = (index + 1) % buckets
                due += tick
                await asyncio.sleep(0)  # let the sockets be read and written in between

    async def events(self) -> None:
        """Poisson arrivals over the whole fleet (= one Poisson stream per gateway), scheduled
        by the clock: arrivals that fell due while the loop was busy are all sent."""
        next_at = time.monotonic()
        while True:
            rate = len(self.live) / self.args.event_interval
            if not self.running or rate <= 0:
                await asyncio.sleep(0.05)
                next_at = time.monotonic()
                continue
            now = time.monotonic()
            stamp = datetime.now(UTC)
            burst = 0
            while next_at <= now:
                gw = self.rng.choice(self.live)
                seq, payload = gw.next_event(self.rng, stamp)
                self.publish_event(gw, seq, payload)
                next_at += self.rng.expovariate(rate)
                burst += 1
                if burst % 50 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(min(0.05, next_at - now))

    async def ack_watch(self) -> None:
        """Resend everything above the last ack when acks stop advancing (as the outbox)."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for gw in list(self._pending_resend):
                if gw.stopped_at is not None:
                    self._pending_resend.discard(gw)
                elif gw.unacked and now - gw.last_progress > self.args.ack_timeout:
                    self._resend(gw)

    async def keepalive(self) -> None:
        """paho's keep-alive and retry housekeeping, a slice of the fleet at a time."""
        slices = 10
        index = 0
        while True:
            await asyncio.sleep(1.0)
            for gw in self.gateways[index::slices]:
                if gw.client is not None and gw.stopped_at is None:
                    gw.client.loop_misc()
            index = (index + 1) % slices

    # phases
    async def connect_all(self, timeout_s: float) -> dict[str, Any]:
        self._slots = asyncio.Semaphore(self.args.connect_concurrency)
        start = time.monotonic()
        for index, gw in enumerate(self.gateways):
            await self._slots.acquire()
            self._connect(gw, index)
        deadline = start + timeout_s
        while time.monotonic() < deadline and (
            self._waiting_connack
            or any(g.first_ack_at is None for g in self.gateways if g.connack_at is not None)
        ):
            await asyncio.sleep(0.05)
        connected = [g for g in self.gateways if g.connack_at is not None]
        known = [g for g in self.gateways if g.first_ack_at is not None]
        return {
            "connected": len(connected),
            "connect_failed": self.counters.connect_failed,
            "all_connack_s": round(max((g.connack_at or start) for g in connected) - start, 2)
            if connected else None,
            "central_first_ack": len(known),
            "all_first_ack_s": round(max((g.first_ack_at or start) for g in known) - start, 2)
            if known else None,
        }

    def pick_sample(self, count: int) -> list[SimGateway]:
        return self.rng.sample([g for g in self.gateways if g.connected], count)

    def stop_sample(self, sample: list[SimGateway], mode: str) -> None:
        """Stop these gateways without DISCONNECT, recording when each stopped."""
        assert self.loop is not None
        stopped = set(sample)
        self.live = [g for g in self.live if g not in stopped]
        for gw in sample:
            client = gw.client
            sock = client.socket() if client is not None else None
            gw.stopped_at = time.monotonic()
            gw.connected = False
            if not isinstance(sock, socket.socket):
                continue
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
            if mode == "close":
                # as if the process died: the kernel closes the socket, no DISCONNECT
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            else:
                gw.held_socket = sock  # open, unread, silent: only keep-alive notices


def source_addresses(gateways: int, wanted: int | None) -> list[str]:
    count = wanted if wanted is not None else max(1, -(-gateways // 20000))
    if count <= 1:
        return [""]  # the kernel picks 127.0.0.1's ephemeral ports
    base = ipaddress.IPv4Address("127.0.1.1")
    return [str(base + i) for i in range(count)]
