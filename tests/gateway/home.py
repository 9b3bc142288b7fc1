"""A whole gateway in the test process: the daemon on a thread, the simulated RFID reader and
sensor hub on ptys, a real Mosquitto (the ``broker`` fixture), a client speaking as central,
and real SQLite faults injected at the journal's own connection."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from firmware_sim.em4100 import SimulatedRfidReader
from firmware_sim.hub import SimulatedHub
from gateway.daemon import GatewayConfig, GatewayDaemon
from gateway.delivery.outbox import BrokerSettings
from homecall.clock import ManualClock
from homecall.plan import DocumentCarer, PlanDocument, Visit
from homecall.wire import Channel, topic
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.conftest import wait_for

GW = "gw-fault-1"
CARER_TAG = "em4100:0F00A1B2C3"
START = datetime(2026, 3, 2, 7, 55, tzinfo=UTC)  # London is on UTC in early March


def stranger(i: int) -> str:
    return f"em4100:{0xB000000000 + i:010X}"


class JournalFaults:
    """Real SQLite faults on the daemon's own journal connection."""

    def __init__(self, daemon: GatewayDaemon) -> None:
        self.journal = daemon.journal

    def _on_conn(self, sql: str) -> None:
        with self.journal._lock:
            self.journal._conn.execute(sql)

    def read_only(self) -> None:
        self._on_conn("PRAGMA query_only=ON")

    def full(self) -> None:
        with self.journal._lock:
            pages = self.journal._conn.execute("PRAGMA page_count").fetchone()[0]
            self.journal._conn.execute(f"PRAGMA max_page_count={pages}")

    def refuse(self, *actions: int) -> None:
        """The connection refuses these statement kinds (sqlite3.SQLITE_INSERT, ...)."""
        def authorizer(action: int, *_: Any) -> int:
            return sqlite3.SQLITE_DENY if action in actions else sqlite3.SQLITE_OK

        with self.journal._lock:
            self.journal._conn.set_authorizer(authorizer)

    def heal(self) -> None:
        with self.journal._lock:
            self.journal._conn.execute("PRAGMA query_only=OFF")
            self.journal._conn.execute("PRAGMA max_page_count=1073741823")
            self.journal._conn.set_authorizer(None)


@dataclass
class Home:
    daemon: GatewayDaemon
    clock: ManualClock
    reader: SimulatedRfidReader
    hub: SimulatedHub
    central: mqtt.Client
    journal_path: Path
    faults: JournalFaults

    def events(self) -> list[dict[str, Any]]:
        """What the journal file holds, read through a connection of its own."""
        conn = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT payload FROM events ORDER BY seq").fetchall()
        finally:
            conn.close()
        return [json.loads(r[0]) for r in rows]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]

    def signals(self) -> list[str]:
        return self.hub.feedback_signals()

    def tap(self, tag: str) -> None:
        """Present ``tag`` and wait for the hub's whole answer (an LED and a buzz)."""
        before = len(self.signals())
        self.reader.tap(tag)
        wait_for(lambda: len(self.signals()) >= before + 2, message="the hub's feedback")

    def as_central(self, channel: Channel, payload: bytes, retain: bool = False) -> None:
        info = self.central.publish(topic(GW, channel), payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=5)

    def plan_from_central(self, payload: bytes) -> None:
        """Central publishes plans retained: the gateway gets one whenever it subscribes."""
        self.as_central(Channel.PLAN, payload, retain=True)

    def ack_until(self, payload: bytes, done: Callable[[], object], message: str) -> None:
        """Central acks after storing and in reply to each status, so a gateway that was not
        yet subscribed gets the next one: publish until ``done``."""
        def again() -> object:
            if done():
                return True
            self.as_central(Channel.ACK, payload)
            return wait_for_quietly(done, 0.5)

        wait_for(again, timeout=15, message=message)


def plan_document(now: datetime) -> PlanDocument:
    return PlanDocument(
        gateway=GW, service_users=("su-1",),
        carers=(DocumentCarer(id="c-1", tags=(CARER_TAG,)),),
        visits=(Visit(id="v-1", service_user="su-1", start=now.replace(tzinfo=None)
                      + timedelta(minutes=5), duration_min=30, carers=("c-1",)),),
    )


@contextlib.contextmanager
def running_home(tmp_path: Path, broker: MosquittoBroker,
                 plan_text: str | bytes | None = None, write_plan: bool = True,
                 ) -> Iterator[Home]:
    """The gateway daemon on a thread with a simulated reader and hub, and a client that
    speaks as central. ``plan_text`` is the ``--plan`` file (default: one visit at 08:00)."""
    password = broker.add_user(GW)
    clock = ManualClock(START)
    plan_file = tmp_path / "plan.json"
    text = plan_document(START).model_dump_json() if plan_text is None else plan_text
    if isinstance(text, str):
        text = text.encode()
    if write_plan:
        plan_file.write_bytes(text)
    reader = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    hub = SimulatedHub(str(tmp_path / "dev" / "hub"), clock=clock)
    reader.start()
    hub.start()
    config = GatewayConfig(
        gateway_id=GW, journal_path=tmp_path / "journal.db",
        broker=BrokerSettings(port=broker.port, username=GW, password=password),
        rfid_path=reader.link_path, hub_path=str(hub.link_path), plan_file=plan_file,
        clock_ok="yes", heartbeat_s=3600, device_state_file=tmp_path / "devices.json",
    )
    daemon = GatewayDaemon(config, clock)
    thread = threading.Thread(target=daemon.run, name="gateway-core", daemon=True)
    thread.start()
    central = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                          client_id="central-test", protocol=mqtt.MQTTv5)
    central.username_pw_set(CENTRAL_USER, broker.passwords[CENTRAL_USER])
    central.connect("127.0.0.1", broker.port)
    central.loop_start()
    try:
        assert daemon.ready.wait(10)
        wait_for(lambda: daemon.outbox.connected and daemon.hub.status().state == "ok",
                 message="gateway connected to the broker and the hub")
        home = Home(daemon, clock, reader, hub, central, config.journal_path,
                    JournalFaults(daemon))
        # The hub answers the driver's state request with its battery level: once that is
        # journalled, nothing more arrives unless the test makes it.
        wait_for(lambda: "battery" in home.types(), message="the hub's state journalled")
        yield home
    finally:
        daemon.stop()
        thread.join(timeout=10)
        central.loop_stop()
        central.disconnect()
        reader.stop()
        hub.stop()
    assert not thread.is_alive()


def wait_for_quietly(predicate: Callable[[], object], timeout: float) -> bool:
    """``wait_for`` that answers False instead of failing."""
    try:
        wait_for(predicate, timeout=timeout)
    except AssertionError:
        return False
    return True
