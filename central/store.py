"""Central's storage: events stored once per (gateway_id, seq), and what they add up to.

The ``events`` table is the record: each gateway's events keyed by ``(gateway_id, seq)``, so
a redelivered event is recognised and stored once (a redelivery whose hash differs from what
is stored is a conflict, kept in ``rejected_messages``). Storing an event also updates the
projections staff work from: ``attendances`` (arrival/departure pairs), ``alerts`` (one per
alert event, with status and who changed it), and ``gateways`` (the highest contiguous seq,
which is what central acks, and the last status). Plans are versioned per gateway. Every
write to an alert or a visit goes through :meth:`Store.audit`.

SQLite (WAL) by default; the SQL is kept portable for a PostgreSQL backend.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from central import CentralError
from homecall.clock import format_utc
from homecall.plan import GatewayPlan, PlanDocument
from homecall.wire import GENESIS_HASH, EventEnvelope, EventGap, EventType, is_alert

#: Rows central writes for seqs it will never receive (see :meth:`Store.store_gaps`).
_PLACEHOLDER_TYPES = frozenset({"dropped", "lost"})


class StoreError(CentralError):
    """The store cannot do what was asked."""


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing a batch did."""

    stored: int
    duplicates: int
    conflicts: int
    acks: dict[str, int]  # gateway_id -> highest contiguous seq now stored


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    severity TEXT,
    visit_id TEXT,
    service_user_id TEXT,
    carer_id TEXT,
    clock_ok INTEGER NOT NULL,
    data TEXT NOT NULL,
    hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    chain_ok INTEGER,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (gateway_id, seq)
);
CREATE INDEX IF NOT EXISTS events_visit ON events(gateway_id, visit_id);
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    contiguous_seq INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0,
    tag_salt TEXT NOT NULL,
    plan_version INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'unknown',
    status TEXT,
    last_seen TEXT,
    chain_breaks INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS plans (
    gateway_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    gateway_plan TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (gateway_id, version)
);
CREATE TABLE IF NOT EXISTS attendances (
    gateway_id TEXT NOT NULL,
    visit_id TEXT NOT NULL,
    carer_id TEXT NOT NULL,
    arrived_at TEXT NOT NULL,
    departed_at TEXT,
    arrival_seq INTEGER,
    departure_seq INTEGER,
    punctuality TEXT,
    minutes_outside_window INTEGER,
    data TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (gateway_id, visit_id, carer_id, arrived_at)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    visit_id TEXT,
    service_user_id TEXT,
    carer_id TEXT,
    raised_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    superseded_by INTEGER,
    data TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT,
    updated_by TEXT,
    UNIQUE (gateway_id, event_seq)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS rejected_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


class Store:
    """Thread-safe access to central's SQLite database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(_SCHEMA)
        self.db = sqlite_utils.Database(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, tuple(params)).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- gateways and plans ----------------------------------------------------------------
    def _ensure_gateway(self, conn: sqlite3.Connection, gateway_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM gateways WHERE id=?", (gateway_id,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO gateways(id, tag_salt) VALUES(?, ?)",
                (gateway_id, secrets.token_hex(16)),
            )
            row = conn.execute("SELECT * FROM gateways WHERE id=?", (gateway_id,)).fetchone()
        return row

    def save_plan(self, document: PlanDocument, now: datetime, who: str) -> GatewayPlan:
        """Store a new plan version for the document's gateway; returns the gateway's plan."""
        with self.transaction() as conn:
            gateway = self._ensure_gateway(conn, document.gateway)
            version = int(gateway["plan_version"]) + 1
            plan = document.for_gateway(version, gateway["tag_salt"], issued_at=now)
            conn.execute(
                "INSERT INTO plans(gateway_id, version, document, gateway_plan, created_at, "
                "created_by) VALUES(?, ?, ?, ?, ?, ?)",
                (document.gateway, version, document.model_dump_json(), plan.model_dump_json(),
                 format_utc(now), who),
            )
            conn.execute("UPDATE gateways SET plan_version=? WHERE id=?",
                         (version, document.gateway))
            self._audit(conn, now, who, "plan.upload", f"gateway:{document.gateway}",
                        {"version": version, "visits": len(document.visits)})
        return plan

    def current_plan(self, gateway_id: str) -> tuple[PlanDocument, GatewayPlan] | None:
        rows = self.query(
            "SELECT document, gateway_plan FROM plans WHERE gateway_id=? "
            "ORDER BY version DESC LIMIT 1",
            (gateway_id,),
        )
        if not rows:
            return None
        return (
            PlanDocument.model_validate_json(rows[0]["document"]),
            GatewayPlan.model_validate_json(rows[0]["gateway_plan"]),
        )

    def gateway_ids(self) -> list[str]:
        return [r["id"] for r in self.query("SELECT id FROM gateways ORDER BY id")]

    def record_status(self, gateway_id: str, status_json: str, state: str, now: datetime) -> None:
        with self.transaction() as conn:
            self._ensure_gateway(conn, gateway_id)
            conn.execute(
                "UPDATE gateways SET status=?, state=?, last_seen=? WHERE id=?",
                (status_json, state, format_utc(now), gateway_id),
            )

    # -- events ----------------------------------------------------------------------------
    def store_events(
        self, envelopes: list[tuple[str, EventEnvelope]], now: datetime
    ) -> StoreResult:
        """Store events idempotently and update projections, in one transaction.

        ``envelopes`` pairs each event with the gateway id its topic named.
        """
        stored = duplicates = conflicts = 0
        touched: set[str] = set()
        received_at = format_utc(now)
        with self.transaction() as conn:
            for topic_gateway, event in envelopes:
                gateway_id = event.gateway_id
                self._ensure_gateway(conn, gateway_id)
                existing = conn.execute(
                    "SELECT hash, type FROM events WHERE gateway_id=? AND seq=?",
                    (gateway_id, event.seq),
                ).fetchone()
                if existing is not None and existing["type"] in _PLACEHOLDER_TYPES:
                    # A tombstoned seq whose real event was already in flight: keep the event.
                    conn.execute("DELETE FROM events WHERE gateway_id=? AND seq=?",
                                 (gateway_id, event.seq))
                    existing = None
                if existing is not None:
                    if existing["hash"] == event.hash:
                        duplicates += 1
                    else:
                        conflicts += 1
                        self._reject(conn, now, f"gw/{topic_gateway}/events",
                                     f"seq {event.seq} already stored with another hash",
                                     event.to_bytes())
                    touched.add(gateway_id)
                    continue
                prev = conn.execute(
                    "SELECT hash FROM events WHERE gateway_id=? AND seq=?",
                    (gateway_id, event.seq - 1),
                ).fetchone()
                if event.seq == 1:
                    chain_ok: int | None = int(event.prev_hash == GENESIS_HASH)
                elif prev is not None and prev["hash"]:
                    chain_ok = int(prev["hash"] == event.prev_hash)
                elif prev is not None:
                    chain_ok = 0  # follows a lost gap: the chain restarts here
                else:
                    chain_ok = None  # predecessor not here yet (or compacted): checked later
                if chain_ok == 0:
                    conn.execute(
                        "UPDATE gateways SET chain_breaks=chain_breaks+1 WHERE id=?", (gateway_id,)
                    )
                conn.execute(
                    "INSERT INTO events(gateway_id, seq, id, type, time, severity, visit_id, "
                    "service_user_id, carer_id, clock_ok, data, hash, prev_hash, chain_ok, "
                    "payload, received_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        gateway_id, event.seq, event.id, event.type.value, format_utc(event.time),
                        event.severity.value if event.severity else None, event.visit_id,
                        event.service_user_id, event.carer_id, int(event.clock_ok),
                        json.dumps(event.data), event.hash, event.prev_hash, chain_ok,
                        event.to_bytes().decode(), received_at,
                    ),
                )
                # A later event may now confirm the link of the one after it.
                conn.execute(
                    "UPDATE events SET chain_ok=(prev_hash=?) "
                    "WHERE gateway_id=? AND seq=? AND chain_ok IS NULL AND type != 'lost'",
                    (event.hash, gateway_id, event.seq + 1),
                )
                self._project(conn, event)
                stored += 1
                touched.add(gateway_id)
            acks = {gw: self._advance_contiguous(conn, gw) for gw in touched}
        return StoreResult(stored, duplicates, conflicts, acks)

    def store_gaps(self, gaps: list[EventGap], now: datetime) -> StoreResult:
        """Record gap tombstones: one placeholder row (type ``dropped`` or ``lost``) per seq
        central does not already hold, so the contiguous seq (and the ack) can move past it.

        A ``dropped`` gap carries the hashes at both ends and keeps the chain verifiable; a
        ``lost`` one does not, and the first real event after it shows as a chain break.
        """
        stored = duplicates = 0
        touched: set[str] = set()
        received_at = format_utc(now)
        with self.transaction() as conn:
            for gap in gaps:
                gateway_id = gap.gateway_id
                self._ensure_gateway(conn, gateway_id)
                touched.add(gateway_id)
                held = {
                    int(r["seq"]) for r in conn.execute(
                        "SELECT seq FROM events WHERE gateway_id=? AND seq BETWEEN ? AND ?",
                        (gateway_id, gap.first_seq, gap.last_seq),
                    )
                }
                payload = gap.to_bytes().decode()
                data = json.dumps({"gap": gap.gap, "first_seq": gap.first_seq,
                                   "last_seq": gap.last_seq, "types": gap.types,
                                   "reason": gap.reason})
                for seq in range(gap.first_seq, gap.last_seq + 1):
                    if seq in held:
                        duplicates += 1
                        continue
                    prev_hash = (gap.prev_hash or "") if seq == gap.first_seq else ""
                    own_hash = (gap.hash or "") if seq == gap.last_seq else ""
                    chain_ok: int | None = 1
                    if seq == gap.first_seq:
                        chain_ok = None
                        if gap.prev_hash is not None:
                            prev = conn.execute(
                                "SELECT hash FROM events WHERE gateway_id=? AND seq=?",
                                (gateway_id, seq - 1),
                            ).fetchone()
                            if seq == 1:
                                chain_ok = int(gap.prev_hash == GENESIS_HASH)
                            elif prev is not None and prev["hash"]:
                                chain_ok = int(prev["hash"] == gap.prev_hash)
                    if gap.gap == "lost":
                        chain_ok = None
                    conn.execute(
                        "INSERT INTO events(gateway_id, seq, id, type, time, severity, visit_id, "
                        "service_user_id, carer_id, clock_ok, data, hash, prev_hash, chain_ok, "
                        "payload, received_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (gateway_id, seq, f"{gap.gap}:{gateway_id}:{seq}", gap.gap,
                         received_at, None, None, None, None, 0, data, own_hash, prev_hash,
                         chain_ok, payload, received_at),
                    )
                    stored += 1
                if gap.hash is not None:
                    conn.execute(
                        "UPDATE events SET chain_ok=(prev_hash=?) "
                        "WHERE gateway_id=? AND seq=? AND chain_ok IS NULL",
                        (gap.hash, gateway_id, gap.last_seq + 1),
                    )
                elif gap.gap == "lost":
                    row = conn.execute(
                        "SELECT chain_ok FROM events WHERE gateway_id=? AND seq=?",
                        (gateway_id, gap.last_seq + 1),
                    ).fetchone()
                    if row is not None and row["chain_ok"] is None:
                        conn.execute(
                            "UPDATE events SET chain_ok=0 WHERE gateway_id=? AND seq=?",
                            (gateway_id, gap.last_seq + 1),
                        )
                        conn.execute("UPDATE gateways SET chain_breaks=chain_breaks+1 "
                                     "WHERE id=?", (gateway_id,))
            acks = {gw: self._advance_contiguous(conn, gw) for gw in touched}
        return StoreResult(stored, duplicates, 0, acks)

    def position(self, gateway_id: str) -> tuple[int, int]:
        """(highest contiguous seq, highest seq) central holds for ``gateway_id``."""
        rows = self.query("SELECT contiguous_seq, max_seq FROM gateways WHERE id=?",
                          (gateway_id,))
        if not rows:
            return 0, 0
        return int(rows[0]["contiguous_seq"]), int(rows[0]["max_seq"])

    def _advance_contiguous(self, conn: sqlite3.Connection, gateway_id: str) -> int:
        row = conn.execute(
            "SELECT contiguous_seq FROM gateways WHERE id=?", (gateway_id,)
        ).fetchone()
        seq = int(row["contiguous_seq"])
        # Walk forward over the stored run (events after a gap wait for the gap to fill).
        while True:
            nxt = conn.execute(
                "SELECT seq FROM events WHERE gateway_id=? AND seq > ? AND seq <= ? ORDER BY seq",
                (gateway_id, seq, seq + 1000),
            ).fetchall()
            advanced = False
            for r in nxt:
                if r["seq"] == seq + 1:
                    seq += 1
                    advanced = True
                else:
                    break
            if not advanced or len(nxt) < 1000:
                break
        max_row = conn.execute(
            "SELECT MAX(seq) AS m FROM events WHERE gateway_id=?", (gateway_id,)
        ).fetchone()
        conn.execute(
            "UPDATE gateways SET contiguous_seq=?, max_seq=? WHERE id=?",
            (seq, int(max_row["m"] or 0), gateway_id),
        )
        return seq

    def _project(self, conn: sqlite3.Connection, event: EventEnvelope) -> None:
        data = event.data
        when = format_utc(event.time)
        if event.type is EventType.ARRIVAL and event.visit_id and event.carer_id:
            conn.execute(
                "INSERT INTO attendances(gateway_id, visit_id, carer_id, arrived_at, arrival_seq, "
                "punctuality, minutes_outside_window, data) VALUES(?,?,?,?,?,?,?,?) "
                "ON CONFLICT(gateway_id, visit_id, carer_id, arrived_at) DO UPDATE SET "
                "arrival_seq=excluded.arrival_seq, punctuality=excluded.punctuality, "
                "minutes_outside_window=excluded.minutes_outside_window",
                (event.gateway_id, event.visit_id, event.carer_id, when, event.seq,
                 data.get("punctuality"), data.get("minutes_outside_window"), json.dumps(data)),
            )
        elif event.type is EventType.DEPARTURE and event.visit_id and event.carer_id:
            arrived_at = data.get("arrived_at")
            if arrived_at is None:
                row = conn.execute(
                    "SELECT arrived_at FROM attendances WHERE gateway_id=? AND visit_id=? AND "
                    "carer_id=? AND departed_at IS NULL ORDER BY arrived_at DESC LIMIT 1",
                    (event.gateway_id, event.visit_id, event.carer_id),
                ).fetchone()
                arrived_at = row["arrived_at"] if row else when
            conn.execute(
                "INSERT INTO attendances(gateway_id, visit_id, carer_id, arrived_at, departed_at, "
                "departure_seq) VALUES(?,?,?,?,?,?) "
                "ON CONFLICT(gateway_id, visit_id, carer_id, arrived_at) DO UPDATE SET "
                "departed_at=excluded.departed_at, departure_seq=excluded.departure_seq",
                (event.gateway_id, event.visit_id, event.carer_id, arrived_at, when, event.seq),
            )
        if is_alert(event.type) and event.severity is not None:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO alerts(gateway_id, event_seq, type, severity, visit_id, "
                "service_user_id, carer_id, raised_at, data) VALUES(?,?,?,?,?,?,?,?,?)",
                (event.gateway_id, event.seq, event.type.value, event.severity.value,
                 event.visit_id, event.service_user_id, event.carer_id, when, json.dumps(data)),
            )
            supersedes = data.get("supersedes")
            if supersedes and event.visit_id and cursor.lastrowid:
                conn.execute(
                    "UPDATE alerts SET status='superseded', superseded_by=? WHERE gateway_id=? "
                    "AND visit_id=? AND type=? AND status != 'superseded' AND event_seq < ?",
                    (cursor.lastrowid, event.gateway_id, event.visit_id, supersedes, event.seq),
                )
            if event.visit_id and cursor.rowcount:
                # Alerts may arrive newest first (after an outage): a later alert that already
                # arrived and supersedes this type wins regardless of arrival order.
                later = conn.execute(
                    "SELECT id FROM alerts WHERE gateway_id=? AND visit_id=? AND event_seq > ? "
                    "AND json_extract(data, '$.supersedes')=? ORDER BY event_seq LIMIT 1",
                    (event.gateway_id, event.visit_id, event.seq, event.type.value),
                ).fetchone()
                if later is not None:
                    conn.execute(
                        "UPDATE alerts SET status='superseded', superseded_by=? WHERE id=?",
                        (later["id"], cursor.lastrowid),
                    )

    def reject(self, topic: str, reason: str, payload: bytes, now: datetime) -> None:
        with self.transaction() as conn:
            self._reject(conn, now, topic, reason, payload)

    def _reject(
        self, conn: sqlite3.Connection, now: datetime, topic: str, reason: str, payload: bytes
    ) -> None:
        conn.execute(
            "INSERT INTO rejected_messages(received_at, topic, reason, payload) VALUES(?,?,?,?)",
            (format_utc(now), topic, reason, payload),
        )

    def _audit(
        self, conn: sqlite3.Connection, now: datetime, who: str, action: str, target: str,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO audit(at, who, action, target, detail) VALUES(?,?,?,?,?)",
            (format_utc(now), who, action, target, json.dumps(detail)),
        )

    def audit(self, now: datetime, who: str, action: str, target: str,
              detail: dict[str, Any]) -> None:
        with self.transaction() as conn:
            self._audit(conn, now, who, action, target, detail)
