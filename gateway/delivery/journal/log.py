"""The event log: every event is committed here before it is published.

One SQLite file (WAL mode) holds the events not yet covered by central's ``ack``, the
gap-free sequence counter and hash chain head, the rules engine's state snapshot and the
engine inputs since it, and the plan in force. :meth:`Journal.append` assigns ``seq``, chains
``prev_hash`` → ``hash``, and commits the events together with the engine inputs that
produced them (and, when asked, a new engine snapshot) in one transaction, so a crash at any
instant leaves either all or none. Events leave the journal only when central acknowledges
them (:meth:`Journal.mark_acked`); nothing is ever deleted for age. Shedding at the disk
budget, reconciling with central's position and salvage of a damaged file live beside this
module (``shedding``, ``reconcile``, ``salvage``).

Every SQLite error, whatever its class, reaches callers as a :class:`JournalError`; a failed
write changes nothing (not the file, not the counter), so the caller can hold its inputs and
try again.

Durability: ``synchronous=FULL`` by default, so a committed event survives a power cut, not
only a process crash (WAL + FULL costs one fsync per commit; bursts share one commit). The
file, its WAL and SHM are created readable by the gateway's user only (0600).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from gateway.delivery.journal.reconcile import Reconciling
from gateway.delivery.journal.records import (
    JournalEntry,
    JournalError,
    JournalFull,
    JournalNotOurs,
    NewEvent,
    Snapshot,
)
from gateway.delivery.journal.salvage import adopt_salvage, set_aside
from gateway.delivery.journal.schema import migrate
from gateway.delivery.journal.shedding import Shedding
from gateway.delivery.journal.transaction import reading, transaction
from homecall.clock import Clock, SystemClock
from homecall.wire import GENESIS_HASH, EventEnvelope

log = logging.getLogger(__name__)

_UPSERT_STATE = ("INSERT INTO state(key, value) VALUES(?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value=excluded.value")


def private_file(path: Path) -> None:
    """Create ``path`` (and tighten it and any WAL/SHM beside it) to mode 0600."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    for suffix in ("", "-wal", "-shm"):
        target = Path(str(path) + suffix)
        if target.exists() and target.stat().st_mode & 0o077:
            target.chmod(0o600)


class Journal(Shedding, Reconciling):
    """The durable, ordered, hash-chained event store of one gateway."""

    def __init__(
        self,
        path: str | Path,
        gateway_id: str,
        boot_id: str,
        *,
        synchronous: str = "FULL",
        budget_bytes: int | None = None,
        max_bytes: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise JournalError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if budget_bytes is not None and budget_bytes < 64 * 1024:
            raise JournalError(f"journal budget {budget_bytes} B is below the 64 KiB minimum")
        self.path = Path(path)
        self.gateway_id = gateway_id
        self.boot_id = boot_id
        self.synchronous = synchronous
        self._relaxed = False
        if max_bytes is not None and (budget_bytes is None or budget_bytes > max_bytes * 0.75):
            # Shed before the hard cap: at the cap even the shedding transaction (gap rows,
            # the events_dropped report) may not find a free page.
            budget_bytes = max(64 * 1024, int(max_bytes * 0.75))
        self.budget_bytes = budget_bytes
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self.damage = None
        self.shed_total = 0
        self.recovered = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        aside = None
        try:
            self._conn = self._open()
        except (sqlite3.DatabaseError, JournalError) as err:
            if isinstance(err, JournalNotOurs):
                raise
            aside = set_aside(self.path, self.gateway_id, f"{type(err).__name__}: {err}")
            self.damage = aside.damage
            try:
                self._conn = self._open()
            except (sqlite3.DatabaseError, JournalError) as again:
                raise JournalError(f"journal {self.path} cannot be created: {again}") from again
        self._last_seq = int(self._meta("last_seq") or 0)
        self._head_hash = self._meta("head_hash") or GENESIS_HASH
        self._acked_seq = int(self._meta("acked_seq") or 0)
        if aside is not None:
            self._last_seq, self._head_hash = adopt_salvage(self._conn, aside, self.gateway_id)
            self.recovered = len(aside.events)
        # Events above the floor are provisional until central's position is known.
        self._floor = self._last_seq
        self._position_known = False

    # -- opening and checking --------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        private_file(self.path)
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            fresh = conn.execute("PRAGMA page_count").fetchone()[0] == 0
            if fresh:
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            # The hot pages are the newest events: a 512 KiB page cache (default 2 MiB) is
            # plenty and keeps the gateway's memory small.
            conn.execute("PRAGMA cache_size=-512")
            if not fresh:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")
            migrate(conn)
            if self.max_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(16, self.max_bytes // page)}")
            self._conn = conn
            existing = self._meta("gateway_id")
            if existing is None:
                self._set_meta("gateway_id", self.gateway_id)
            elif existing != self.gateway_id:
                raise JournalNotOurs(
                    f"journal {self.path} belongs to gateway {existing!r}, not {self.gateway_id!r}"
                )
            self._check_head(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_head(self, conn: sqlite3.Connection) -> None:
        """The meta head must cover every stored row, and the newest row must chain to it."""
        last = int(self._meta("last_seq") or 0)
        row = conn.execute("SELECT seq, payload FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return
        if int(row[0]) > last:
            raise sqlite3.DatabaseError(f"event seq {row[0]} above the recorded head {last}")
        if int(row[0]) == last:
            try:
                envelope = EventEnvelope.from_bytes(bytes(row[1]))
            except ValueError as err:
                raise sqlite3.DatabaseError(f"newest event unreadable: {err}") from err
            if not envelope.verify_hash() or envelope.hash != self._meta("head_hash"):
                raise sqlite3.DatabaseError(f"newest event seq {last} does not match the head")

    # -- writing ---------------------------------------------------------------------------
    def append(
        self,
        events: Iterable[NewEvent],
        *,
        clock_ok: bool,
        inputs: Sequence[tuple[int, str]] = (),
        snapshot: Snapshot | None = None,
    ) -> list[EventEnvelope]:
        """Journal ``events`` in one durable transaction, with the numbered engine ``inputs``
        that produced them and, optionally, a new engine ``snapshot`` (which then replaces
        the journalled inputs it covers).

        After a crash the engine state is the last snapshot replayed with
        :meth:`inputs_after`. On a full disk sheddable telemetry is dropped and the write
        tried once more. Raises :class:`JournalError` (:class:`JournalFull` on a full disk)
        with nothing written; the caller keeps what it passed and retries later.
        """
        events = list(events)
        with self._lock:
            try:
                return self._append_locked(events, clock_ok, inputs, snapshot)
            except JournalFull as err:
                log.error("%s: shedding telemetry", err)
                try:
                    shed = self._shed_locked(everything=True, clock_ok=clock_ok)
                except JournalError as again:
                    raise JournalFull(f"journal full, shedding failed too: {again}") from again
                if not shed:
                    raise JournalFull(f"journal full and nothing left to shed: {err}") from err
            return self._append_locked(events, clock_ok, inputs, snapshot)

    def _append_locked(
        self, events: list[NewEvent], clock_ok: bool, inputs: Sequence[tuple[int, str]],
        snapshot: Snapshot | None,
    ) -> list[EventEnvelope]:
        envelopes, rows, seq, head = self._envelopes(events, clock_ok)
        if not rows and not inputs and snapshot is None:
            return []
        self._durable()
        with transaction(self._conn, "write") as conn:
            if rows:
                self._insert(rows, seq, head)
            if inputs:
                conn.executemany("INSERT OR REPLACE INTO inputs(n, body) VALUES(?, ?)", inputs)
            if snapshot is not None:
                self._store_snapshot(snapshot)
        self._last_seq, self._head_hash = seq, head
        if rows and self.budget_bytes is not None and self._used_bytes() > self.budget_bytes:
            try:
                self._shed_locked(everything=False, clock_ok=clock_ok)
            except JournalError as err:  # the events above are committed; shed later
                log.error("journal shedding failed: %s", err)
        return envelopes

    def _store_snapshot(self, snapshot: Snapshot) -> None:
        for key, value in {**snapshot.values, "engine_upto": str(snapshot.upto)}.items():
            self._conn.execute(_UPSERT_STATE, (key, value))
        self._conn.execute("DELETE FROM inputs WHERE n <= ?", (snapshot.upto,))

    def snapshot(self, snapshot: Snapshot) -> None:
        """Store the engine's state and forget the journalled inputs it covers."""
        with self._lock:
            self._durable()
        with self._lock, transaction(self._conn, "snapshot"):
            self._store_snapshot(snapshot)

    # -- acks and compaction ---------------------------------------------------------------
    def mark_acked(self, seq: int) -> int:
        """Central durably holds every event <= ``seq``: drop them. Returns how many."""
        with self._lock:
            if seq <= self._acked_seq:
                return 0
            seq = min(seq, self._last_seq)
            # Forgetting acked events need not wait for the disk: if a power cut loses this
            # commit the events come back and are sent again, and central stores each seq
            # once. In WAL mode a NORMAL commit skips the fsync; the next durable commit (the
            # next event) makes it durable too. This keeps an ack from holding up a tap.
            self._relax()
            try:
                with transaction(self._conn, "ack") as conn:
                    cursor = conn.execute("DELETE FROM events WHERE seq <= ?", (seq,))
                    conn.execute("DELETE FROM gaps WHERE last_seq <= ?", (seq,))
                    self._set_meta("acked_seq", str(seq))
            finally:
                self._durable()
            self._acked_seq = seq
            removed = int(cursor.rowcount)
            if seq >= self._last_seq and removed:
                self._compact_locked()
            return removed

    def _compact_locked(self) -> None:
        """Backlog empty: give freed pages back to the filesystem (cheap when little moved)."""
        try:
            free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
            if free > 64:
                self._conn.execute("PRAGMA incremental_vacuum")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as err:
            log.warning("journal compaction skipped: %s", err)

    # -- reading ---------------------------------------------------------------------------
    def pending(self, after_seq: int, limit: int = 500) -> list[JournalEntry]:
        """Unacked events and gap tombstones above ``after_seq``, in seq order.

        While central's position is unknown only events up to the floor are returned.
        """
        with self._lock, reading("read"):
            start = max(after_seq, self._acked_seq)
            upto = self._last_seq if self._position_known else self._floor
            rows = self._conn.execute(
                "SELECT seq, type, payload FROM events WHERE seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?", (start, upto, limit),
            ).fetchall()
            gaps = self._conn.execute(
                "SELECT first_seq, last_seq, payload FROM gaps WHERE last_seq > ? "
                "AND first_seq <= ? ORDER BY first_seq LIMIT ?", (start, upto, limit),
            ).fetchall()
        entries = [JournalEntry(int(r[0]), str(r[1]), bytes(r[2]), int(r[0])) for r in rows]
        entries += [JournalEntry(int(g[1]), "gap", bytes(g[2]), int(g[0])) for g in gaps]
        entries.sort(key=lambda e: e.first_seq)
        return entries[:limit]

    def pending_alerts(self, after_seq: int, limit: int = 100) -> list[JournalEntry]:
        """Unsent alerts above ``after_seq``, newest first (they jump the backlog queue)."""
        with self._lock, reading("read"):
            upto = self._last_seq if self._position_known else self._floor
            rows = self._conn.execute(
                "SELECT seq, type, payload FROM events WHERE alert=1 AND seq > ? AND seq <= ? "
                "ORDER BY seq DESC LIMIT ?", (max(after_seq, self._acked_seq), upto, limit),
            ).fetchall()
        return [JournalEntry(int(r[0]), str(r[1]), bytes(r[2]), int(r[0])) for r in rows]

    def inputs_after(self, upto_input: int) -> list[tuple[int, str]]:
        """Engine inputs journalled after the snapshot covering ``upto_input``, in order."""
        with self._lock, reading("read"):
            rows = self._conn.execute(
                "SELECT n, body FROM inputs WHERE n > ? ORDER BY n", (upto_input,)
            ).fetchall()
        return [(int(n), str(body)) for n, body in rows]

    def get_state(self, key: str) -> str | None:
        with self._lock, reading("read"):
            row = self._conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def publishable_seq(self) -> int:
        """The highest seq the outbox may publish now."""
        return self._last_seq if self._position_known else self._floor

    @property
    def acked_seq(self) -> int:
        return self._acked_seq

    @property
    def backlog(self) -> int:
        return self._last_seq - self._acked_seq

    def close(self) -> None:
        with self._lock:
            self._conn.close()
