"""``homecall bench fleet``: N gateways on the real wire, in one asyncio process, against a real
Mosquitto and a real central.

Each simulated gateway is a paho-mqtt client driven by this process's asyncio loop (paho's
socket callbacks register its socket with the loop; no thread per client) and follows the wire
contract the real gateway follows: MQTT 5 with its own broker identity (user = gateway id, its
own password in the broker's password file, the per-gateway ACL), a retained ``offline``
last will, a retained ``online`` birth/heartbeat ``status`` every ``--heartbeat`` seconds,
hash-chained :class:`~homecall.wire.EventEnvelope` events with gap-free seqs, central's ``ack``
honoured (an event counts as ingested when an ack covers it) and everything above the last ack
sent again when acks stop advancing for ``--ack-timeout`` seconds. Central is only used through
its command line, its HTTP API and MQTT.

Phases, one after another:

* **connect**: all N gateways connect (at most ``--connect-concurrency`` CONNECTs waiting for
  their CONNACK, which keeps Mosquitto's listen backlog from overflowing) and publish their
  birth; reported: time until every CONNACK, and until central's first ack reached each.
* **steady**: ``--duration`` seconds of heartbeats and events (Poisson, one per
  ``--event-interval`` seconds per gateway on average); reported: events/s acked, ingest lag
  (publish to central's covering ack) p50/p99/max, broker/central/generator CPU and RSS.
* **stop**: ``--stop-sample`` gateways stop without DISCONNECT (``--stop-mode close``: the
  socket is closed, as when the gateway process dies; ``silent``: the socket is left open and
  unread, as when power or the line goes, so only the broker's keep-alive notices); the stop
  time of each is recorded, then the time the broker published its last will and the time
  central's ``/api/gateways`` showed it ``offline``. Central raising a ``gateway_offline``
  alert from missed heartbeats is measured from the same stop times once central has it.
* **flood**: every running gateway publishes ``--backlog`` events at once (as after a regional
  outage); reported: events/s ingested until the last ack, lag, CPU and RSS.

The last wills are watched by one more MQTT client on a thread of its own (central's identity),
connected before the gateways: its paho loop uses ``select()``, which cannot watch a descriptor
above 1023. Results are printed as JSON and kept in ``WORKDIR/results.json``; with
``--write-docs`` they replace this run's section of docs/benchmarks.md (one section per gateway
count, heartbeat and stop mode).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import platform
import random
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import TypeAdapter

from homecall.wire import (
    ALERT_SEVERITY,
    GENESIS_HASH,
    Channel,
    EventEnvelope,
    EventType,
    StatusMessage,
    chain_hash,
    topic,
)
from orchestration import OrchestrationError
from orchestration.benchmarks import DOCS, write_section

KEEPALIVE_S = 30  # the real gateway's default keep-alive
SESSION_EXPIRY_S = 7 * 24 * 3600  # as the real gateway asks for
WINDOW = 256  # in-flight publishes per gateway, as the real outbox

#: What a home's gateway mostly sends, with a weight: door and key safe telemetry, carers'
#: arrivals and departures, now and then an unknown tag (an alert, stored as one by central).
EVENT_MIX: tuple[tuple[EventType, int], ...] = (
    (EventType.DOOR, 40),
    (EventType.KEYSAFE, 20),
    (EventType.ARRIVAL, 15),
    (EventType.DEPARTURE, 15),
    (EventType.BUTTON, 5),
    (EventType.UNKNOWN_TAG, 5),
)

_TIME = TypeAdapter(datetime)


class FleetError(OrchestrationError):
    """The fleet bench could not set up or run."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateways", type=int, default=1000, help="simulated gateways (N)")
    parser.add_argument("--heartbeat", type=float, default=10.0,
                        help="seconds between status heartbeats (the gateway's default 10)")
    parser.add_argument("--event-interval", type=float, default=60.0,
                        help="mean seconds between events of one gateway in the steady phase")
    parser.add_argument("--duration", type=float, default=60.0, help="steady phase, seconds")
    parser.add_argument("--stop-sample", type=int, default=None,
                        help="gateways stopped without DISCONNECT (default 1%%, at least 5)")
    parser.add_argument("--stop-mode", choices=["close", "silent"], default="close",
                        help="close: socket closed (process died); silent: socket left open "
                             "and unread (power/line gone; the broker's keep-alive notices)")
    parser.add_argument("--stop-wait", type=float, default=None,
                        help="seconds to watch the stopped sample (default 3 heartbeats + "
                             "1.5 keep-alives + 10)")
    parser.add_argument("--backlog", type=int, default=20,
                        help="events each gateway publishes at once in the flood phase (0: skip)")
    parser.add_argument("--ack-timeout", type=float, default=5.0,
                        help="resend everything unacked when acks stop for this long")
    parser.add_argument("--connect-concurrency", type=int, default=64,
                        help="CONNECTs awaiting CONNACK at once")
    parser.add_argument("--source-addresses", type=int, default=None,
                        help="loopback source addresses to spread connections over "
                             "(127.0.1.1 ...; default: one per 20,000 gateways)")
    parser.add_argument("--no-persistence", action="store_true",
                        help="run Mosquitto without persistence (default: as deployed)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


# -- /proc sampling --------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _open_fds(pid: int) -> int:
    with contextlib.suppress(OSError):
        return len(os.listdir(f"/proc/{pid}/fd"))
    return -1


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


class Sampler:
    """CPU (% of one core) and peak RSS of named processes over a phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.peak: dict[str, float] = {}
        self.fds: dict[str, int] = {}  # peak open files over the whole run

    def begin(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.peak = {name: _rss_mb(pid) for name, pid in self.pids.items()}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                self.peak[name] = max(self.peak.get(name, 0.0), _rss_mb(pid))
                self.fds[name] = max(self.fds.get(name, 0), _open_fds(pid))

    def end(self) -> dict[str, dict[str, float]]:
        self.sample()
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        out: dict[str, dict[str, float]] = {}
        for name, pid in self.pids.items():
            cpu = (_cpu_seconds(pid) - self._start[name]) / elapsed * 100
            out[name] = {"cpu_pct": round(cpu, 1), "rss_peak_mb": round(self.peak[name], 1)}
        return out


# -- one simulated gateway -------------------------------------------------------------------
@dataclass(eq=False)
class SimGateway:
    """The delivery state of one simulated gateway (its journal, in memory)."""

    gateway_id: str
    password: str
    #: the interval its status announces (central's offline deadline is three of them)
    heartbeat_s: float = 10.0
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    client: mqtt.Client | None = None
    seq: int = 0
    prev_hash: str = GENESIS_HASH
    acked: int = 0
    #: (seq, payload, first publish time) of every event not yet covered by an ack
    unacked: deque[tuple[int, bytes, float]] = field(default_factory=deque)
    last_progress: float = 0.0
    connected: bool = False
    connack_at: float | None = None
    first_ack_at: float | None = None
    stopped_at: float | None = None
    will_seen_at: float | None = None
    central_offline_at: float | None = None
    #: central's gateway_offline alert for it: when stored (monotonic, from its received_at)
    central_alert_at: float | None = None
    held_socket: socket.socket | None = None

    def next_event(self, rng: random.Random, now: datetime) -> tuple[int, bytes]:
        """Seal the next event of this gateway's hash chain (the bytes central verifies)."""
        self.seq += 1
        event_type = rng.choices([t for t, _ in EVENT_MIX], [w for _, w in EVENT_MIX])[0]
        severity = ALERT_SEVERITY.get(event_type)
        data: dict[str, Any] = {}
        if event_type in (EventType.DOOR, EventType.KEYSAFE):
            data = {"open": bool(self.seq % 2)}
        elif event_type is EventType.UNKNOWN_TAG:
            data = {"tag": "em4100:#" + secrets.token_hex(4)}
        body: dict[str, Any] = {
            "v": 1,
            "id": uuid.uuid4().hex,
            "gateway_id": self.gateway_id,
            "seq": self.seq,
            "type": event_type.value,
            "time": _TIME.dump_python(now, mode="json"),
            "mono": round(time.monotonic(), 6),
            "boot_id": self.boot_id,
            "clock_ok": True,
            "severity": severity.value if severity else None,
            "visit_id": None,
            "service_user_id": None,
            "carer_id": None,
            "data": data,
            "prev_hash": self.prev_hash,
        }
        body["hash"] = self.prev_hash = chain_hash(self.prev_hash, body)
        return self.seq, json.dumps(body, separators=(",", ":")).encode()

    def status(self, state: str = "online") -> bytes:
        if state == "offline":
            return StatusMessage(gateway_id=self.gateway_id, state="offline").to_bytes()
        return StatusMessage(
            gateway_id=self.gateway_id, state="online", time=datetime.now(UTC),
            boot_id=self.boot_id, clock_ok=True, backlog=len(self.unacked), last_seq=self.seq,
            plan_version=None, heartbeat_s=self.heartbeat_s,
        ).to_bytes()


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
        self.sources = _source_addresses(len(self.gateways), args.source_addresses)
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


def _source_addresses(gateways: int, wanted: int | None) -> list[str]:
    count = wanted if wanted is not None else max(1, -(-gateways // 20000))
    if count <= 1:
        return [""]  # the kernel picks 127.0.0.1's ephemeral ports
    base = ipaddress.IPv4Address("127.0.1.1")
    return [str(base + i) for i in range(count)]


class Monitor:
    """Watches the ``status`` of the gateways about to stop (central's identity, its own client
    id) on a thread of its own, so a busy generator loop does not delay the time it records:
    when did the broker publish each one's last will."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="fleet-monitor", protocol=mqtt.MQTTv5)
        self.client.username_pw_set("central", fleet.central_password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.ready = threading.Event()
        self.subscribed = threading.Event()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any) -> None:
        self.ready.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any,
                      props: Any) -> None:
        self.subscribed.set()

    async def start(self) -> None:
        self.client.connect("127.0.0.1", self.fleet.port, keepalive=60)
        self.client.loop_start()
        if not await asyncio.to_thread(self.ready.wait, 60):
            raise FleetError("the status monitor could not connect to the broker")

    async def watch(self, gateways: list[SimGateway]) -> None:
        """Subscribe to these gateways' status (not all N: that would be N/heartbeat msgs/s)."""
        self.subscribed.clear()
        self.client.subscribe([(topic(g.gateway_id, Channel.STATUS), 1) for g in gateways])
        if not await asyncio.to_thread(self.subscribed.wait, 60):
            raise FleetError("the broker did not confirm the status monitor's subscription")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if b'"offline"' not in message.payload:
            return
        gw = self.fleet.by_id.get(message.topic.split("/")[-2])
        if gw is not None and gw.stopped_at is not None and gw.will_seen_at is None:
            gw.will_seen_at = time.monotonic()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- running it --------------------------------------------------------------------------------
def _raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (Mosquitto, started after, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _read_sysctl(name: str) -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().split("\n")[0].strip()
    return "?"


def _listen_backlog(port: int) -> str:
    """The listen queue length Mosquitto asked for (``ss -ltn``: Send-Q of the listener)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=5).stdout.split()
        if len(out) >= 3:
            return out[2]
    return "?"


def _lag_summary(lags: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(lags, 50) * 1000, 1),
        "p99_ms": round(_percentile(lags, 99) * 1000, 1),
        "max_ms": round(max(lags) * 1000, 1) if lags else float("nan"),
    }


async def _http_get(port: int, path: str, timeout_s: float = 120.0,
                    headers: dict[str, str] | None = None) -> Any:
    """GET from central's API (``headers``: the stack admin's bearer token)."""
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=timeout_s,
                                 headers=headers) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.json()


async def _offline_alerts(fleet: Fleet, stopped_ids: set[str]) -> None:
    """Note when central stored a ``gateway_offline`` alert for each stopped gateway (the
    alert's ``received_at``, on this machine's clock, turned into monotonic time)."""
    import httpx

    from homecall.clock import parse_utc

    cursor: str | None = None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fleet.http_port}", timeout=120,
                                 headers=fleet.http_headers) as http:
        while True:
            params = {"type": "gateway_offline", "limit": "500"}
            if cursor:
                params["cursor"] = cursor
            response = await http.get("/api/alerts", params=params)
            response.raise_for_status()
            offset = time.monotonic() - time.time()
            for alert in response.json():
                gw = fleet.by_id.get(alert["gateway"])
                if gw is None or alert["gateway"] not in stopped_ids or not alert["received_at"]:
                    continue
                stored_at = parse_utc(alert["received_at"]).timestamp() + offset
                if gw.central_alert_at is None and gw.stopped_at is not None \
                        and stored_at >= gw.stopped_at:  # not one from an earlier run
                    gw.central_alert_at = stored_at
            cursor = response.headers.get("x-next-cursor")
            if not cursor:
                return


async def _drive(fleet: Fleet, sampler: Sampler) -> dict[str, Any]:
    args = fleet.args
    fleet.loop = asyncio.get_running_loop()
    results: dict[str, Any] = {}
    monitor = Monitor(fleet)
    monitor_error = None
    try:
        # before the gateways: paho's own loop uses select(), which cannot watch a descriptor
        # above 1023, and N gateway sockets come first otherwise
        await monitor.start()
    except FleetError as err:
        monitor_error = str(err)

    async def sample_forever() -> None:
        while True:
            await asyncio.sleep(1.0)
            sampler.sample()

    background = [asyncio.create_task(coro) for coro in (
        fleet.heartbeats(), fleet.events(), fleet.ack_watch(), fleet.keepalive(),
        sample_forever())]
    try:
        # connect
        sampler.begin()
        cpu0 = time.process_time()
        t0 = time.monotonic()
        results["connect"] = await fleet.connect_all(timeout_s=max(60.0, len(fleet.gateways) / 50))
        results["connect"]["generator_cpu_s"] = round(time.process_time() - cpu0, 1)
        results["connect"]["resources"] = sampler.end()
        print(f"connect: {json.dumps(results['connect'])}", file=sys.stderr)

        # steady
        fleet.running = True
        sampler.begin()
        cpu0, t0 = time.process_time(), time.monotonic()
        acked0, lags0 = fleet.counters.acked_events, len(fleet.counters.lags)
        published0, hb0 = fleet.counters.published, fleet.counters.heartbeats
        skipped0, disconnects0 = fleet.counters.heartbeats_skipped, fleet.counters.disconnects
        await asyncio.sleep(args.duration)
        elapsed = time.monotonic() - t0
        results["steady"] = {
            "seconds": round(elapsed, 1),
            "events_published": fleet.counters.published - published0,
            "events_acked_per_s": round((fleet.counters.acked_events - acked0) / elapsed, 1),
            "events_offered_per_s": round(len(fleet.gateways) / args.event_interval, 1),
            "heartbeats_per_s": round((fleet.counters.heartbeats - hb0) / elapsed, 1),
            "heartbeats_offered_per_s": round(len(fleet.gateways) / args.heartbeat, 1),
            "heartbeats_skipped_by_generator": fleet.counters.heartbeats_skipped - skipped0,
            "disconnects": fleet.counters.disconnects - disconnects0,
            "lag": _lag_summary(fleet.counters.lags[lags0:]),
            "unacked_at_end": sum(len(g.unacked) for g in fleet.gateways),
            "generator_cpu_pct": round((time.process_time() - cpu0) / elapsed * 100, 1),
            "resources": sampler.end(),
        }
        print(f"steady: {json.dumps(results['steady'])}", file=sys.stderr)

        # stop a sample
        count = args.stop_sample if args.stop_sample is not None else max(
            5, len(fleet.gateways) // 100)
        wait_s = args.stop_wait or 3 * args.heartbeat + 1.5 * KEEPALIVE_S + 10
        sample = fleet.pick_sample(min(count, len(fleet.gateways)))
        try:
            if monitor_error is not None:
                raise FleetError(monitor_error)
            await monitor.watch(sample)
        except FleetError as err:  # the stop is still measured through central's view
            monitor_error = str(err)
            print(f"no last-will times: {err}", file=sys.stderr)
        await asyncio.sleep(1.0)  # the retained 'online' arrives first
        fleet.stop_sample(sample, args.stop_mode)
        stopped_ids = {g.gateway_id for g in sample}
        deadline = time.monotonic() + wait_s
        polls: list[float] = []
        while time.monotonic() < deadline:
            await asyncio.sleep(min(5.0, args.heartbeat / 2))
            p0 = time.monotonic()
            try:
                view = await _http_get(fleet.http_port, "/api/gateways?state=offline",
                                             headers=fleet.http_headers)
            except Exception as err:  # reported; the bench goes on
                print(f"GET /api/gateways failed: {err}", file=sys.stderr)
                continue
            polls.append(time.monotonic() - p0)
            for row in view:
                gw = fleet.by_id.get(row["id"])
                if row["id"] in stopped_ids and gw is not None and row.get("state") == "offline":
                    gw.central_offline_at = gw.central_offline_at or p0
            try:
                await _offline_alerts(fleet, stopped_ids)
            except Exception as err:  # reported; the bench goes on
                print(f"GET /api/alerts failed: {err}", file=sys.stderr)
            if all(g.central_offline_at is not None and g.central_alert_at is not None
                   for g in sample):
                break
        wills = [g.will_seen_at - g.stopped_at for g in sample
                 if g.will_seen_at is not None and g.stopped_at is not None]
        views = [g.central_offline_at - g.stopped_at for g in sample
                 if g.central_offline_at is not None and g.stopped_at is not None]
        alerted = [g.central_alert_at - g.stopped_at for g in sample
                   if g.central_alert_at is not None and g.stopped_at is not None]
        results["stop"] = {
            "mode": args.stop_mode,
            "central_alerted": len(alerted),
            "central_alert_after_s": {"p50": round(_percentile(alerted, 50), 2),
                                      "max": round(max(alerted), 2) if alerted else None,
                                      "limit": 3 * args.heartbeat},
            "monitor_error": monitor_error,
            "sample": len(sample),
            "will_published": len(wills),
            "will_after_s": {"p50": round(_percentile(wills, 50), 2),
                             "max": round(max(wills), 2) if wills else None},
            "central_shows_offline": len(views),
            "central_offline_after_s": {"p50": round(_percentile(views, 50), 2),
                                        "max": round(max(views), 2) if views else None},
            "api_gateways_poll_s": round(_percentile(polls, 50), 2) if polls else None,
            "stopped_at_unix": {g.gateway_id: round(time.time() - (time.monotonic()
                                - (g.stopped_at or 0)), 3) for g in sample},
        }
        brief = {k: v for k, v in results["stop"].items() if k != "stopped_at_unix"}
        print(f"stop: {json.dumps(brief)}", file=sys.stderr)

        # flood
        if args.backlog > 0:
            live = [g for g in fleet.gateways if g.stopped_at is None and g.connected]
            now = datetime.now(UTC)
            build0 = time.monotonic()
            prepared = [(gw, [gw.next_event(fleet.rng, now) for _ in range(args.backlog)])
                        for gw in live]
            build_s = time.monotonic() - build0
            # the steady stream goes on during the flood: the fleet does not pause for it
            sampler.begin()
            cpu0, t0 = time.process_time(), time.monotonic()
            acked0, lags0 = fleet.counters.acked_events, len(fleet.counters.lags)
            resent0 = fleet.counters.resent
            flood_deadline = t0 + max(120.0, len(live) * args.backlog / 200)
            for index, (gw, events) in enumerate(prepared):
                for seq, payload in events:
                    fleet.publish_event(gw, seq, payload)
                if index % 100 == 99:
                    await asyncio.sleep(0)
            last_seq = {gw.gateway_id: events[-1][0] for gw, events in prepared}
            while time.monotonic() < flood_deadline and any(
                fleet.by_id[gid].acked < seq for gid, seq in last_seq.items()
            ):
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - t0
            done = sum(1 for gid, seq in last_seq.items() if fleet.by_id[gid].acked >= seq)
            total = len(live) * args.backlog
            results["flood"] = {
                "gateways": len(live),
                "events": total,
                "all_acked": done == len(live),
                "seconds": round(elapsed, 1),
                "events_acked_per_s": round((fleet.counters.acked_events - acked0) / elapsed, 1),
                "lag": _lag_summary(fleet.counters.lags[lags0:]),
                "resent": fleet.counters.resent - resent0,
                "generator_cpu_pct": round((time.process_time() - cpu0) / elapsed * 100, 1),
                "prepare_s": round(build_s, 1),
                "resources": sampler.end(),
            }
            print(f"flood: {json.dumps(results['flood'])}", file=sys.stderr)
        fleet.running = False
        results["totals"] = {
            "published": fleet.counters.published, "resent": fleet.counters.resent,
            "acks": fleet.counters.acks, "disconnects": fleet.counters.disconnects,
            "connect_failed": fleet.counters.connect_failed,
        }
        # central's own accounting: nothing lost or duplicated
        with contextlib.suppress(Exception):
            report = await _http_get(fleet.http_port, "/api/report", timeout_s=300,
                                        headers=fleet.http_headers)
            results["central_report"] = {k: report.get(k) for k in
                                         ("events_lost", "events_duplicated")}
    finally:
        for task in background:
            task.cancel()
        for gw in fleet.gateways:
            if gw.client is not None and gw.stopped_at is None:
                with contextlib.suppress(Exception):
                    gw.client.disconnect()
        with contextlib.suppress(Exception):
            monitor.stop()
        await asyncio.sleep(0.5)
    return results


def run(args: argparse.Namespace) -> int:
    from orchestration.stack import Stack

    if args.gateways < 1:
        raise FleetError("--gateways must be at least 1")
    limits = _raise_fd_limit()
    needed = args.gateways + 64
    if limits[0] < needed:
        raise FleetError(f"open-file limit {limits[0]} is below the {needed} sockets "
                         f"{args.gateways} gateways need in this process (and in Mosquitto): "
                         f"raise it with `ulimit -n` (hard limit {limits[1]})")
    _self_check()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="homecall-bench-fleet-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir, "system", heartbeat_s=args.heartbeat)
    if args.no_persistence:
        stack.broker.persistence = False
    width = len(str(args.gateways))
    passwords = {f"fleet-{i:0{width}d}": secrets.token_urlsafe(18) for i in range(args.gateways)}
    # One password file for all (MosquittoBroker.add_user rewrites it per user: O(N^2)).
    stack.broker.passwords.update(passwords)
    results: dict[str, Any] = {"gateways": args.gateways}
    try:
        t0 = time.monotonic()
        stack.broker.start()
        results["broker_start_s"] = round(time.monotonic() - t0, 2)
        stack.start_central()
        assert stack.broker.process is not None and stack.central is not None
        broker_pid, central_pid = stack.broker.process.pid, stack.central.pid
        results["settings"] = {
            "ulimit_n": f"{limits[0]} (hard {limits[1]})",
            "mosquitto_nofile": _proc_limit(broker_pid),
            "mosquitto_listen_backlog": _listen_backlog(stack.broker.port),
            "net.core.somaxconn": _read_sysctl("net.core.somaxconn"),
            "net.ipv4.tcp_max_syn_backlog": _read_sysctl("net.ipv4.tcp_max_syn_backlog"),
            "net.ipv4.ip_local_port_range": _read_sysctl("net.ipv4.ip_local_port_range"),
            "fs.file-max": _read_sysctl("fs.file-max"),
            "source_addresses": len(_source_addresses(args.gateways, args.source_addresses)),
            "persistence": stack.broker.persistence,
        }
        central_password = stack.broker.passwords["central"]
        fleet = Fleet(args, stack.broker.port, passwords, central_password, stack.http_port)
        fleet.http_headers = {"authorization": stack.http.headers["authorization"]}
        sampler = Sampler({"broker": broker_pid, "central": central_pid})
        results.update(asyncio.run(_drive(fleet, sampler)))
        results["open_files_peak"] = sampler.fds
    finally:
        stack.stop()
    results["machine"] = _machine()
    print(json.dumps(results, indent=2))
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    if args.write_docs:
        write_section(DOCS, _heading(args), _markdown(args, results))
        print(f"wrote {DOCS}", file=sys.stderr)
    return 0


def _self_check() -> None:
    """The generator's hand-built events must be what central verifies (wire's own model)."""
    probe = SimGateway("gw-probe", "-")
    rng = random.Random(0)
    for _ in range(3):
        _, payload = probe.next_event(rng, datetime.now(UTC))
        envelope = EventEnvelope.from_bytes(payload)
        if not envelope.verify_hash():
            raise FleetError("generated event does not verify against homecall.wire")


def _proc_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return " / ".join(line.split()[3:5])
    return "?"


def _machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), kernel {platform.release()}, "
            f"Python {platform.python_version()}, load average at the end {load}")


def _heading(args: argparse.Namespace) -> str:
    beat = "" if args.heartbeat == 10 else f", {args.heartbeat:g} s heartbeat"
    mode = "" if args.stop_mode == "close" else f", {args.stop_mode} stop"
    return f"## fleet: {args.gateways} gateways{beat}{mode}"


def _markdown(args: argparse.Namespace, r: dict[str, Any]) -> str:
    command = (f"homecall bench fleet --gateways {args.gateways} --heartbeat {args.heartbeat:g} "
               f"--event-interval {args.event_interval:g} --duration {args.duration:g} "
               f"--backlog {args.backlog} --stop-mode {args.stop_mode}"
               + (" --no-persistence" if args.no_persistence else "") + " --write-docs")
    c, s = r["connect"], r["steady"]
    st, f = r["stop"], r.get("flood")

    def res(phase: dict[str, Any]) -> str:
        b, cen = phase["resources"]["broker"], phase["resources"]["central"]
        return (f"broker {b['cpu_pct']} % CPU / {b['rss_peak_mb']} MB; "
                f"central {cen['cpu_pct']} % / {cen['rss_peak_mb']} MB")

    lines = [
        _heading(args),
        "",
        f"Command: `{command}`",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {r['machine']}; a shared machine (other "
        "work ran beside it), one Mosquitto and one central (SQLite) on loopback, the "
        "generator in one process. CPU is % of one core.",
        "",
        "| measure | figure |",
        "| --- | --- |",
        f"| connect: all CONNACKs / central's first ack to all | {c['all_connack_s']} s / "
        f"{c['all_first_ack_s']} s ({c['connected']} connected, {c['connect_failed']} failed) |",
        f"| connect phase resources | {res(c)} |",
        f"| steady: events acked/s (offered); heartbeats sent/s (offered) | "
        f"{s['events_acked_per_s']} ({s.get('events_offered_per_s', '?')}); "
        f"{s['heartbeats_per_s']} ({s.get('heartbeats_offered_per_s', '?')}) |",
        f"| steady: events still unacked at the end of the phase | {s['unacked_at_end']} |",
        f"| steady: ingest lag p50 / p99 / max (publish → central's ack) | "
        f"{s['lag']['p50_ms']} / {s['lag']['p99_ms']} / {s['lag']['max_ms']} ms |",
        f"| steady resources | {res(s)}; generator {s['generator_cpu_pct']} % |",
        f"| stopped without DISCONNECT ({st['mode']}): last will published after, p50 / max | "
        f"{st['will_after_s']['p50']} / {st['will_after_s']['max']} s "
        f"({st['will_published']}/{st['sample']}) |",
        f"| ... central's /api/gateways shows it offline after (polled every "
        f"{min(5.0, args.heartbeat / 2):g} s), p50 / max | "
        f"{st['central_offline_after_s']['p50']} / {st['central_offline_after_s']['max']} s "
        f"({st['central_shows_offline']}/{st['sample']}; one poll took "
        f"{st['api_gateways_poll_s']} s) |",
        f"| ... central's `gateway_offline` alert stored after, p50 / max (goal: within 3 "
        f"heartbeats, {st['central_alert_after_s']['limit']:g} s) | "
        f"{st['central_alert_after_s']['p50']} / {st['central_alert_after_s']['max']} s "
        f"({st['central_alerted']}/{st['sample']}) |",
    ]
    if f:
        lines += [
            f"| flood: {f['events']} events ({args.backlog} from each of {f['gateways']} "
            f"gateways at once): ingested/s | {f['events_acked_per_s']} "
            f"({'all acked' if f['all_acked'] else 'NOT all acked'} in {f['seconds']} s, "
            f"{f['resent']} resent) |",
            f"| flood: lag p50 / p99 / max | {f['lag']['p50_ms']} / {f['lag']['p99_ms']} / "
            f"{f['lag']['max_ms']} ms |",
            f"| flood resources | {res(f)}; generator {f['generator_cpu_pct']} % |",
        ]
    rep = r.get("central_report") or {}
    lines += [
        f"| central's report: events lost / duplicated | {rep.get('events_lost')} / "
        f"{rep.get('events_duplicated')} |",
        f"| open files, peak: broker / central | {r['open_files_peak'].get('broker')} / "
        f"{r['open_files_peak'].get('central')} |",
        "",
        "Settings seen: " + "; ".join(f"{k} {str(v).replace(chr(9), '-')}"
                                      for k, v in r["settings"].items()) + ".",
    ]
    return "\n".join(lines)
