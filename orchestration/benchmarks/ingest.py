"""``homecall bench ingest``: central's ingest rate, events/s, on SQLite and on PostgreSQL.

One process holds everything: a real Mosquitto on loopback, central's real MQTT ingest and
store (:class:`~central.ingest.session.Ingest` over :class:`~central.store.Store`), and
``--gateways`` publishers, each with its own broker login, publishing ``--events`` in total:
hash-chained envelopes made by the gateway's own journal (9 battery readings to 1
unknown-tag alert, so the alert projection is exercised too). The clock starts at the first
publish and stops when every gateway's ``ack`` covers its last seq, i.e. when central has
committed everything (central acks only after its commit). SQLite runs as central runs it
(WAL, ``synchronous=FULL``); ``--engine postgresql`` starts a private PostgreSQL server with
the tests' helper (Debian's binaries) unless ``--db`` names one.

Results are printed and, with ``--write-docs``, written into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section

SECTION = "## central ingest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--db", help="a database URL to use instead of a fresh one "
                        "(only with --engine sqlite or postgresql)")
    parser.add_argument("--events", type=int, default=20000, help="events in total")
    parser.add_argument("--gateways", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500, help="central's ingest batch size")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def _make_events(workdir: Path, gateway_ids: list[str], per_gateway: int) -> dict[str, list[bytes]]:
    from gateway.delivery.journal import Journal, NewEvent
    from homecall.wire import EventType, Severity

    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    payloads: dict[str, list[bytes]] = {}
    for gateway_id in gateway_ids:
        journal = Journal(workdir / f"{gateway_id}.db", gateway_id, "bench-boot",
                          synchronous="NORMAL")
        new = [
            NewEvent(EventType.UNKNOWN_TAG, start, float(i), severity=Severity.MEDIUM,
                     data={"tag": f"em4100:#{i:08x}"}) if i % 10 == 9 else
            NewEvent(EventType.BATTERY, start, float(i), data={"device": "hub", "volts": 2.9})
            for i in range(per_gateway)
        ]
        envelopes = []
        for offset in range(0, len(new), 1000):
            envelopes += journal.append(new[offset:offset + 1000], clock_ok=True)
        journal.close()
        payloads[gateway_id] = [e.to_bytes() for e in envelopes]
    return payloads


class _Publisher:
    """One gateway's MQTT client: publishes its events, records central's acks."""

    def __init__(self, broker: Any, gateway_id: str, last_seq: int) -> None:
        import paho.mqtt.client as mqtt

        from homecall.wire import Channel, gateway_client_id, topic

        self.gateway_id = gateway_id
        self.last_seq = last_seq
        self.done = threading.Event()
        self.done_at = 0.0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=gateway_client_id(gateway_id),
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(gateway_id, broker.passwords[gateway_id])
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_message = self._on_ack
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(topic(gateway_id, Channel.ACK), qos=1)
        self._topic = topic(gateway_id, Channel.EVENTS)

    def _on_ack(self, client: Any, userdata: Any, message: Any) -> None:
        from homecall.wire import AckMessage

        if AckMessage.from_bytes(message.payload).seq >= self.last_seq and not self.done.is_set():
            self.done_at = time.perf_counter()
            self.done.set()

    def publish(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.client.publish(self._topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def publish_and_time(broker: Any, payloads: dict[str, list[bytes]], stack: ExitStack,
                     timeout_s: float = 900) -> float:
    """One client per gateway publishes its events at once; seconds from the first publish
    until every gateway's ack covers its last seq."""
    per_gateway = len(next(iter(payloads.values())))
    publishers = [_Publisher(broker, gw, per_gateway) for gw in payloads]
    for publisher in publishers:
        stack.callback(publisher.close)
        if not publisher.subscribed.wait(10):
            raise RuntimeError(f"{publisher.gateway_id} could not subscribe to its acks")
    started = time.perf_counter()
    threads = [threading.Thread(target=p.publish, args=(payloads[p.gateway_id],))
               for p in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for publisher in publishers:
        if not publisher.done.wait(timeout_s):
            raise RuntimeError(f"{publisher.gateway_id}: last seq never acked")
    return max(p.done_at for p in publishers) - started


def measure_store(database_url: str, payloads: dict[str, list[bytes]],
                  batch: int) -> dict[str, Any]:
    """The store alone: the same events, parsed beforehand, stored in batches of ``batch``
    (interleaving gateways as the broker does), one transaction per batch."""
    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.store import Store
    from homecall.wire import EventEnvelope

    interleaved = [
        (gateway_id, EventEnvelope.from_bytes(payload))
        for row in zip(*payloads.values(), strict=True)
        for gateway_id, payload in zip(payloads, row, strict=True)
    ]
    db = Database(database_url)
    try:
        upgrade(db)
        store = Store(db)
        now = datetime.now(UTC)
        started = time.perf_counter()
        for offset in range(0, len(interleaved), batch):
            store.store_events(interleaved[offset:offset + batch], now)
        elapsed = time.perf_counter() - started
    finally:
        db.dispose()
    return {"events": len(interleaved), "seconds": elapsed,
            "rate": len(interleaved) / elapsed}


def measure(database_url: str, workdir: Path, payloads: dict[str, list[bytes]],
            batch: int) -> dict[str, Any]:
    """Publish ``events`` through a real broker into central's ingest; time to the last ack."""
    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.ingest.session import Ingest
    from central.settings import CentralSettings
    from central.store import Store
    from homecall.clock import SystemClock
    from orchestration.broker import CENTRAL_USER, MosquittoBroker

    gateway_ids = list(payloads)
    per_gateway = len(payloads[gateway_ids[0]])
    with ExitStack() as stack:
        # the per-login publish rate lifted: this measures central, not the broker policy
        broker = stack.enter_context(MosquittoBroker(workdir / "broker", publish_rate_per_s=0))
        for gateway_id in gateway_ids:
            broker.add_user(gateway_id)
        db = Database(database_url)
        stack.callback(db.dispose)
        upgrade(db)
        settings = CentralSettings(
            database=database_url, mqtt_port=broker.port, mqtt_user=CENTRAL_USER,
            mqtt_password=broker.passwords[CENTRAL_USER], mqtt_client_id="central-bench",
            ingest_batch=batch,
        )
        ingest = Ingest(settings, Store(db), SystemClock())
        ingest.start()
        stack.callback(ingest.stop)
        if not ingest.connected.wait(10):
            raise RuntimeError("central did not connect to the bench broker")
        elapsed = publish_and_time(broker, payloads, stack)
        stored = ingest.stored
    total = per_gateway * len(gateway_ids)
    return {"events": total, "stored": stored, "seconds": elapsed, "rate": total / elapsed}


def run(args: argparse.Namespace) -> int:
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    if args.db and len(engines) > 1:
        raise SystemExit("--db needs --engine sqlite or --engine postgresql")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="homecall-bench-ingest-") as tmp, ExitStack() as stack:
        gateway_ids = [f"gw-bench-{i:03d}" for i in range(args.gateways)]
        payloads = _make_events(Path(tmp), gateway_ids, args.events // args.gateways)
        for engine in engines:
            workdir = Path(tmp) / engine
            workdir.mkdir()
            url = args.db
            store_url = None
            if url is None and engine == "sqlite":
                url = f"sqlite:///{workdir / 'central.db'}"
                store_url = f"sqlite:///{workdir / 'store-only.db'}"
            elif url is None:
                # The tests' helper: run the bench from a checkout (like ``bench faults``).
                sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
                from tests.support.postgres import PrivatePostgres

                server = PrivatePostgres().start()
                stack.callback(server.stop)
                url = server.new_database()
                store_url = server.new_database()
            result = measure(url, workdir, payloads, args.batch)
            print(f"{engine}: {result['events']} events from {args.gateways} gateways stored "
                  f"and acked in {result['seconds']:.2f} s = {result['rate']:.0f} events/s "
                  f"(central stored {result['stored']})", flush=True)
            if store_url is not None:  # not on a database named with --db: it is not empty
                alone = measure_store(store_url, payloads, args.batch)
                result["store_rate"] = alone["rate"]
                print(f"{engine}: the store alone, batches of {args.batch}: "
                      f"{alone['seconds']:.2f} s = {alone['rate']:.0f} events/s", flush=True)
            results[engine] = result
    if args.write_docs:
        _write_docs(args, results)
    return 0


def _write_docs(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    command = (f"homecall bench ingest --engine {args.engine} --events {args.events} "
               f"--gateways {args.gateways} --batch {args.batch} --write-docs")
    rows = "\n".join(
        f"| {engine} | {r['events']} | {r['seconds']:.2f} | {r['rate']:.0f} | "
        f"{r.get('store_rate', 0):.0f} |"
        for engine, r in results.items()
    )
    text = f"""{SECTION}

`{command}` ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
other work was running on the machine, so treat the figures as a floor, not a ceiling).

Everything in one process: a real Mosquitto on loopback, central's MQTT ingest and store,
and {args.gateways} gateway clients publishing hash-chained events (QoS 1; 9 battery
readings to 1 unknown-tag alert). Timed from the first publish until every gateway's ack
covers its last seq (central acks only after its commit, so this is the durable rate).
SQLite runs as central does (WAL, `synchronous=FULL`); PostgreSQL is a private local
server with default settings (`fsync` and `synchronous_commit` on). "store alone" stores
the same events, already parsed, straight into a fresh database in batches of {args.batch}
(no MQTT, no validation): what the database layer costs on its own.

| engine | events | seconds | events/s (end to end) | events/s (store alone) |
|---|---:|---:|---:|---:|
{rows}
"""
    write_section(DOCS, SECTION, text)
