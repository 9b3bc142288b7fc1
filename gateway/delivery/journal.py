"""The gateway's event journal: every event is committed here before it is published.

One SQLite file (WAL mode) holds the events not yet covered by central's ``ack``, the
gap-free sequence counter and hash chain head, the rules engine's state and the plan in
force. :meth:`Journal.append` assigns ``seq``, chains ``prev_hash`` → ``hash``, and commits
the events together with the engine state that produced them in one transaction, so a crash
at any instant leaves either both or neither. Events leave the journal only when central
acknowledges them (:meth:`Journal.mark_acked`); nothing is ever deleted for age.

Durability: ``synchronous=FULL`` by default, so a committed event survives a power cut, not
only a process crash (WAL + FULL costs one fsync per commit; bursts share one commit). See
docs/delivery.md for the measured cost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from gateway import GatewayError
from homecall.clock import format_utc
from homecall.wire import (
    GENESIS_HASH,
    VITAL_TYPES,
    EventEnvelope,
    EventType,
    Severity,
    chain_hash,
)

log = logging.getLogger(__name__)


class JournalError(GatewayError):
    """The journal cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to journal; the journal adds seq, id, hashes and boot/clock fields."""

    type: EventType
    time: datetime
    mono: float
    severity: Severity | None = None
    visit_id: str | None = None
    service_user_id: str | None = None
    carer_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    type: str
    payload: bytes


class Journal:
    """The durable, ordered, hash-chained event store of one gateway."""

    def __init__(
        self,
        path: str | Path,
        gateway_id: str,
        boot_id: str,
        *,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise JournalError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self.gateway_id = gateway_id
        self.boot_id = boot_id
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._create_schema()
            self._last_seq, self._head_hash, self._acked_seq = self._load_head()
        except sqlite3.DatabaseError as err:
            raise JournalError(f"journal {self.path} cannot be opened: {err}") from err

    # -- schema ----------------------------------------------------------------------------
    def _create_schema(self) -> None:
        db = sqlite_utils.Database(self._conn)
        if "events" not in db.table_names():
            db["events"].create(  # type: ignore[union-attr]
                {"seq": int, "id": str, "type": str, "vital": int, "time": str, "payload": bytes},
                pk="seq",
                not_null={"id", "type", "vital", "time", "payload"},
            )
        if "meta" not in db.table_names():
            db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]
        if "state" not in db.table_names():
            db["state"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]
        existing = self._meta("gateway_id")
        if existing is None:
            self._set_meta("gateway_id", self.gateway_id)
        elif existing != self.gateway_id:
            raise JournalError(
                f"journal {self.path} belongs to gateway {existing!r}, not {self.gateway_id!r}"
            )

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _load_head(self) -> tuple[int, str, int]:
        last_seq = int(self._meta("last_seq") or 0)
        head = self._meta("head_hash") or GENESIS_HASH
        acked = int(self._meta("acked_seq") or 0)
        return last_seq, head, acked

    # -- writing ---------------------------------------------------------------------------
    def append(
        self,
        events: Iterable[NewEvent],
        *,
        clock_ok: bool,
        state: dict[str, str] | None = None,
    ) -> list[EventEnvelope]:
        """Journal ``events`` (and optional state values) in one durable transaction."""
        with self._lock:
            seq, head = self._last_seq, self._head_hash
            envelopes: list[EventEnvelope] = []
            rows: list[tuple[int, str, str, int, str, bytes]] = []
            for event in events:
                seq += 1
                body: dict[str, Any] = {
                    "v": 1,
                    "id": uuid.uuid4().hex,
                    "gateway_id": self.gateway_id,
                    "seq": seq,
                    "type": event.type.value,
                    "time": format_utc(event.time),
                    "mono": round(event.mono, 6),
                    "boot_id": self.boot_id,
                    "clock_ok": clock_ok,
                    "severity": event.severity.value if event.severity else None,
                    "visit_id": event.visit_id,
                    "service_user_id": event.service_user_id,
                    "carer_id": event.carer_id,
                    "data": event.data,
                    "prev_hash": head,
                }
                envelope = EventEnvelope.model_validate({**body, "hash": "0" * 64})
                # Hash what the wire will carry (the validated model's JSON form).
                digest = chain_hash(head, envelope.body_for_hash())
                envelope = envelope.model_copy(update={"hash": digest})
                head = digest
                envelopes.append(envelope)
                rows.append(
                    (
                        seq,
                        envelope.id,
                        envelope.type.value,
                        int(envelope.type in VITAL_TYPES),
                        body["time"],
                        envelope.to_bytes(),
                    )
                )
            if not rows and not state:
                return []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if rows:
                    self._conn.executemany(
                        "INSERT INTO events(seq, id, type, vital, time, payload) "
                        "VALUES(?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    self._set_meta("last_seq", str(seq))
                    self._set_meta("head_hash", head)
                for key, value in (state or {}).items():
                    self._conn.execute(
                        "INSERT INTO state(key, value) VALUES(?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, value),
                    )
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._conn.execute("ROLLBACK") if self._conn.in_transaction else None
                raise JournalError(f"journal write failed: {err}") from err
            self._last_seq, self._head_hash = seq, head
            return envelopes

    def mark_acked(self, seq: int) -> int:
        """Central durably holds every event <= ``seq``: drop them. Returns how many."""
        with self._lock:
            if seq <= self._acked_seq:
                return 0
            seq = min(seq, self._last_seq)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cursor = self._conn.execute("DELETE FROM events WHERE seq <= ?", (seq,))
                self._set_meta("acked_seq", str(seq))
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal ack failed: {err}") from err
            self._acked_seq = seq
            return int(cursor.rowcount)

    # -- reading ---------------------------------------------------------------------------
    def pending(self, after_seq: int, limit: int = 500) -> list[JournalEntry]:
        """Unacked events with seq > ``after_seq``, in seq order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, type, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (max(after_seq, self._acked_seq), limit),
            ).fetchall()
        return [JournalEntry(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def acked_seq(self) -> int:
        return self._acked_seq

    @property
    def backlog(self) -> int:
        return self._last_seq - self._acked_seq

    def close(self) -> None:
        with self._lock:
            self._conn.close()
