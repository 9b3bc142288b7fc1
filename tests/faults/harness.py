"""The fault rig: a real Mosquitto, central, relay and gateway process, and a simulated home
(RFID reader and sensor hub on ptys, driven from the test) on one scaled clock.

:class:`FaultRig` wraps :class:`orchestration.stack.Stack` and adds what every fault case needs:
a load generator (battery readings = low-value telemetry, unknown-tag taps = alerts, door
changes), the gateway journal's head read straight from its SQLite file, central's events
read straight from central's database (SQLite or PostgreSQL, through central's own
SQLAlchemy engine, so one set of assertions holds on both), and
:meth:`FaultRig.assert_nothing_lost_nothing_twice`, the one verdict every case ends with.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from central.db.engine import Database
from central.store import Store
from central.views import list_events
from firmware_sim.em4100 import SimulatedRfidReader
from firmware_sim.hub import SimulatedHub
from homecall.clock import ScaledClock
from homecall.plan import DocumentCarer, PlanDocument, Visit
from homecall.wire import is_alert
from orchestration.stack import Stack
from tests.conftest import wait_for

CARER_TAG = "em4100:0F00A1B2C3"
CARER_CARD = "em4100:0F00A1B2C4"  # the same carer's second tag (see week_plan)


def unknown_tag(i: int) -> str:
    return f"em4100:{0xA000000000 + i:010X}"


@dataclass
class Load:
    """A background stream of events through the real devices; counts what it did."""

    rig: FaultRig
    rate_hz: float = 40.0
    tap_every: int = 10
    taps: list[str] = field(default_factory=list)
    readings: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="fault-load", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(1.0 / self.rate_hz):
            i += 1
            self.rig.hub.battery(3400 + (self.readings % 500))
            self.readings += 1
            if i % self.tap_every == 0:
                tag = unknown_tag(len(self.rig.tapped))
                self.rig.tap(tag)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class FaultRig:
    """Broker + relay + central + one gateway process + a simulated home, on one clock."""

    def __init__(self, workdir: Path, gateway_id: str, *, speed: float = 1.0,
                 start: datetime | None = None, gateway_args: list[str] | None = None,
                 plan: PlanDocument | None = None, lead_s: float = 1.0,
                 central_db: str | None = None) -> None:
        self.workdir = workdir
        self.gateway_id = gateway_id
        # ``start`` is the simulated time ``lead_s`` real seconds from now (time for the
        # processes to come up before a scripted timeline begins).
        self.clock = ScaledClock(start or datetime.now(UTC), speed, anchor=time.time() + lead_s)
        # central_db: a database URL for central (None: an SQLite file in the stack's workdir)
        self.stack = Stack(workdir / "stack", self.clock.spec(), heartbeat_s=0.5,
                           central_db=central_db)
        self._central: Database | None = None
        dev = workdir / "dev"
        dev.mkdir(parents=True, exist_ok=True)
        self.rfid = SimulatedRfidReader(str(dev / "rfid"))
        self.hub = SimulatedHub(str(dev / "hub"), clock=self.clock, heartbeat_s=1.0)
        self.plan = plan or PlanDocument(
            gateway=gateway_id, service_users=("su-1",),
            carers=(DocumentCarer(id="c-1", tags=(CARER_TAG,)),),
        )
        self.gateway_args = ["--reconnect-max", "1.5", *(gateway_args or [])]
        self.tapped: list[str] = []
        self._tap_lock = threading.Lock()
        self._tap_threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FaultRig:
        self.rfid.start()
        self.hub.start()
        self.stack.start_broker()
        self.stack.start_central()
        self.stack.upload_plan(self.plan)
        self.stack.add_gateway(self.gateway_id,
                               {"rfid": Path(self.rfid.link_path), "hub": Path(self.hub.link_path)},
                               extra_args=self.gateway_args)
        self.stack.start_gateway(self.gateway_id)
        self.wait_online()
        return self

    def stop(self) -> None:
        if self._central is not None:
            self._central.dispose()
            self._central = None
        with contextlib.suppress(Exception):
            self.stack.stop()
        self.rfid.stop()
        self.hub.stop()

    def __enter__(self) -> FaultRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def boot_id(self) -> str | None:
        status = (self.stack.gateway_view(self.gateway_id) or {}).get("status") or {}
        return status.get("boot_id") if status.get("state") == "online" else None

    def wait_online(self, previous_boot: str | None = None, timeout: float = 30.0) -> str:
        """Wait for an ``online`` heartbeat from a gateway boot other than ``previous_boot``."""
        process = self.stack.gateways[self.gateway_id].process

        def online() -> str | None:
            assert process is None or process.poll() is None, self.log_tail("gateway")
            boot = self.boot_id()
            return boot if boot and boot != previous_boot else None

        return str(wait_for(online, timeout=timeout, message="gateway online"))

    @property
    def journal_path(self) -> Path:
        return self.stack.gateways[self.gateway_id].journal

    @property
    def central_db(self) -> str:
        """Central's database: an SQLite file's path or a database URL."""
        return self.stack.central_db

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.stack.workdir / "logs" / (
            f"gateway-{self.gateway_id}.log" if name == "gateway" else f"{name}.log")
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- the home --------------------------------------------------------------------------
    def tap(self, tag: str, *, background: bool = False) -> None:
        """Tap ``tag`` on the reader. A tap takes real time (the reader repeats the frame a
        few times, ~0.1 s); on a fast scaled clock that is many simulated minutes, so a
        timeline passes ``background=True`` to let its other steps keep their times."""
        if background:
            thread = threading.Thread(target=self.tap, args=(tag,), daemon=True)
            self._tap_threads.append(thread)
            thread.start()
            return
        with self._tap_lock:
            self.tapped.append(tag)
            self.rfid.tap(tag)

    def wait_taps(self) -> None:
        """Wait for every background tap to finish."""
        while self._tap_threads:
            self._tap_threads.pop().join()

    def load(self, rate_hz: float = 40.0, tap_every: int = 10) -> Load:
        return Load(self, rate_hz=rate_hz, tap_every=tap_every).start()

    # -- reading both ends -----------------------------------------------------------------
    def journal_meta(self) -> dict[str, str]:
        conn = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True, timeout=10)
        try:
            return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        finally:
            conn.close()

    def journal_rows(self) -> int:
        conn = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            conn.close()

    def journal_tombstoned(self) -> int:
        """Seqs the gateway's journal has shed so far (held as ``dropped`` gap tombstones)."""
        conn = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute(
                "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM gaps "
                "WHERE CAST(payload AS TEXT) LIKE '%\"gap\":\"dropped\"%'").fetchone()
            return int(row[0])
        finally:
            conn.close()

    def central_rows(self, sql: str, **params: Any) -> list[RowMapping]:
        """Rows of ``sql`` (``:name`` parameters) from central's database, read the way
        central reads it (one read transaction), as mappings: ``row["seq"]``."""
        if self._central is None:
            self._central = Database(self.central_db)
        with self._central.read() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def central_events(self) -> list[dict[str, Any]]:
        """Central's audit listing of the gateway's stream (real events, and each gap seq as
        a ``dropped``/``lost`` row), page by page; ``data`` as JSON text."""
        if self._central is None:
            self._central = Database(self.central_db)
        store = Store(self._central)
        rows: list[dict[str, Any]] = []
        while True:
            page = list_events(store, self.gateway_id,
                               after_seq=rows[-1]["seq"] if rows else 0, limit=10000)
            rows += [{"seq": e["seq"], "id": e["id"], "type": e["type"],
                      "data": json.dumps(e["data"]), "chain_ok": e["chain_ok"]} for e in page]
            if len(page) < 10000:
                return rows

    def contiguous(self) -> int:
        return int((self.stack.gateway_view(self.gateway_id) or {}).get("contiguous_seq") or 0)

    def drain(self, timeout: float = 90.0) -> None:
        """Wait until central holds everything, then stop the gateway cleanly."""
        assert self.stack.wait_delivered(self.gateway_id, timeout_s=timeout), (
            f"not delivered; gateway log:\n{self.log_tail('gateway')}")
        self.stack.stop_gateway(self.gateway_id)
        last = int(self.journal_meta().get("last_seq", "0"))
        wait_for(lambda: self.contiguous() >= last, timeout=timeout,
                 message=f"central to hold seq {last}")

    # -- the verdict -----------------------------------------------------------------------
    def assert_nothing_lost_nothing_twice(self, *, chain_breaks: int = 0,
                                          lost: int = 0) -> list[dict[str, Any]]:
        """Central holds every seq 1..journal head exactly once (real event or accounted
        tombstone), the chain links (at most ``chain_breaks`` flagged breaks), every alert
        event became an alert, and no tapped tag was raised twice. ``lost``: how many seqs
        may be declared lost (a damaged journal; exact unless negative = "at most -lost")."""
        last = int(self.journal_meta()["last_seq"])
        events = self.central_events()
        seqs = [int(e["seq"]) for e in events]
        assert seqs == list(range(1, last + 1)), (
            f"central seqs != 1..{last}: missing {sorted(set(range(1, last + 1)) - set(seqs))[:20]}"
            f" extra {sorted(set(seqs) - set(range(1, last + 1)))[:20]}")
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids)), "an event id stored under two seqs"
        gone = sum(1 for e in events if e["type"] == "lost")
        if lost >= 0:
            assert gone == lost, f"{gone} seqs declared lost, expected {lost}"
        else:
            assert gone <= -lost, f"{gone} seqs declared lost, expected at most {-lost}"
        breaks = [int(e["seq"]) for e in events if e["chain_ok"] == 0]
        assert len(breaks) <= chain_breaks, f"chain breaks at {breaks}"
        conflicts = self.central_rows("SELECT reason FROM rejected_messages")
        assert not conflicts, [r["reason"] for r in conflicts]
        alert_seqs = {int(e["seq"]) for e in events if _alert(e["type"])}
        raised = {int(r["event_seq"]) for r in self.central_rows(
            "SELECT event_seq FROM alerts WHERE gateway_id=:gw AND event_seq IS NOT NULL",
            gw=self.gateway_id)}  # central's own raises (gateway_offline) carry no seq
        assert alert_seqs == raised, "an alert event without its alert (or the reverse)"
        unknown = [json.loads(e["data"]).get("tag") for e in events if e["type"] == "unknown_tag"]
        assert len(unknown) == len(set(unknown)), "the same tap raised twice"
        report = self.stack.report(self.gateway_id)
        assert report["events_lost"] == gone
        assert report["events_duplicated"] == 0
        return events


def _alert(kind: str) -> bool:
    try:
        return is_alert(kind)
    except ValueError:
        return False


def week_plan(gateway_id: str, monday: datetime, unattended: set[tuple[int, int]]
              ) -> tuple[PlanDocument, list[tuple[datetime, str, Any]]]:
    """A realistic household's week: four calls a day by one carer (local times), with the
    taps, key-safe and door changes around each attended call. ``unattended`` holds
    (day, call) pairs nobody turns up to. Returns the plan and the timeline in UTC."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/London")
    calls = [(8, 0), (12, 30), (17, 0), (21, 0)]
    visits: list[Visit] = []
    timeline: list[tuple[datetime, str, Any]] = []
    day0 = monday.astimezone(tz).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    for day in range(7):
        for n, (hour, minute) in enumerate(calls):
            start = day0 + timedelta(days=day, hours=hour, minutes=minute)
            visit_id = f"v-d{day}-c{n}"
            visits.append(Visit(id=visit_id, service_user="su-1", start=start, duration_min=30,
                                carers_required=1, carers=("c-1",)))
            if (day, n) in unattended:
                continue

            def at(minutes: float, base: datetime = start) -> datetime:
                return (base + timedelta(minutes=minutes)).replace(tzinfo=tz).astimezone(UTC)

            # A contact must hold a state for the hub driver's settle time (40 ms real), so at
            # 4 simulated hours per second each state lasts at least 12 simulated minutes.
            timeline += [
                (at(0), "keysafe", True), (at(1), "door", True),
                (at(5), "tap", CARER_TAG),
                (at(13), "keysafe", False), (at(14), "door", False),
                # Departure with the carer's other tag: at 4 simulated hours per second, the
                # same tag 31 minutes later is 0.13 s of real time, which the RFID driver
                # rightly collapses into one held tap (its hold gap is 0.25 s real).
                (at(36), "tap", CARER_CARD),
                (at(37), "door", True), (at(38), "keysafe", True),
                (at(50), "door", False), (at(51), "keysafe", False),
            ]
    plan = PlanDocument(gateway=gateway_id, service_users=("su-1",),
                        carers=(DocumentCarer(id="c-1", tags=(CARER_TAG, CARER_CARD)),),
                        policy={"keysafe_left_open_min": 20, "door_left_open_min": 20},
                        visits=tuple(visits))
    return plan, sorted(timeline, key=lambda step: step[0])
