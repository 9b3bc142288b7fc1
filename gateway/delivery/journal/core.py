"""The state every part of the journal shares: the open connection, the counter and chain
head, and the two primitives that change them (sealing new events onto the chain, writing
the head to ``meta``). :class:`~gateway.delivery.journal.log.Journal` builds on this together
with shedding and reconcile.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from gateway.delivery.journal.records import (
    INSERT_EVENT,
    Damage,
    EventRow,
    NewEvent,
    event_row,
    seal,
)
from gateway.delivery.journal.transaction import reading
from homecall.clock import Clock, format_utc
from homecall.wire import EventEnvelope


class JournalCore:
    """Connection, counter and chain head of one gateway's journal."""

    path: Path
    gateway_id: str
    boot_id: str
    clock: Clock
    budget_bytes: int | None
    max_bytes: int | None
    damage: Damage | None
    shed_total: int
    _conn: sqlite3.Connection
    _lock: threading.Lock
    _last_seq: int
    _head_hash: str
    _acked_seq: int
    _floor: int
    _position_known: bool
    synchronous: str
    _relaxed: bool  # a commit since :meth:`_relax` may skip its fsync


    def _relax(self) -> None:
        """The next commit may skip its fsync (WAL + ``synchronous=NORMAL``)."""
        if self.synchronous == "NORMAL":
            return
        self._relaxed = True
        with reading("ack"):
            self._conn.execute("PRAGMA synchronous=NORMAL")

    def _durable(self) -> None:
        """Back to the journal's own ``synchronous`` after :meth:`_relax`. Every durable write
        calls this first, so a failed restore is retried before anything else commits (and
        that write fails with a :class:`JournalError` rather than commit without its
        fsync)."""
        if not self._relaxed:
            return
        with reading("restoring synchronous"):
            self._conn.execute(f"PRAGMA synchronous={self.synchronous}")
        self._relaxed = False

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _envelopes(
        self, events: Iterable[NewEvent], clock_ok: bool
    ) -> tuple[list[EventEnvelope], list[EventRow], int, str]:
        """Seal ``events`` onto the chain after the head (nothing is written yet)."""
        seq, head = self._last_seq, self._head_hash
        envelopes: list[EventEnvelope] = []
        rows: list[EventRow] = []
        for event in events:
            seq += 1
            envelope = seal(
                {
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
                },
                head,
            )
            head = envelope.hash
            envelopes.append(envelope)
            rows.append(event_row(envelope))
        return envelopes, rows, seq, head

    def _insert(self, rows: list[EventRow], seq: int, head: str) -> None:
        """Write sealed rows and move the head (inside the caller's transaction)."""
        self._conn.executemany(INSERT_EVENT, rows)
        self._set_meta("last_seq", str(seq))
        self._set_meta("head_hash", head)
