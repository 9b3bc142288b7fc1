"""The gateway's event journal: every event is committed here before it is published.

One SQLite file (WAL mode) holds the events not yet covered by central's ``ack``, the
gap-free sequence counter and hash chain head, the rules engine's state and the plan in
force. :meth:`Journal.append` assigns ``seq``, chains ``prev_hash`` → ``hash``, and commits
the events together with the engine state that produced them in one transaction, so a crash
at any instant leaves either both or neither. Events leave the journal only when central
acknowledges them (:meth:`Journal.mark_acked`); nothing is ever deleted for age. When the
disk budget is reached, the lowest-value unsent telemetry (battery readings, device
recoveries, start/plan bookkeeping, then door and key-safe changes) is shed, oldest first;
alerts, attendances and the other ``VITAL_TYPES`` never are. A shed run of seqs leaves a
*gap* row that is published as an :class:`~homecall.wire.EventGap` tombstone (carrying the
hashes at both ends, so the chain still links) and an ``events_dropped`` event says what
went. A journal that fails SQLite's integrity check at open is renamed aside (kept for
inspection) and a fresh one is started; until central has told the gateway how far it got
(:meth:`Journal.reconcile`), events recorded since opening are *provisional* and are not
published, so a replaced journal can never reuse a seq central already holds.

Durability: ``synchronous=FULL`` by default, so a committed event survives a power cut, not
only a process crash (WAL + FULL costs one fsync per commit; bursts share one commit). See
docs/delivery.md for the format and the measured cost.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import GatewayError
from homecall.clock import Clock, SystemClock, format_utc
from homecall.wire import (
    GENESIS_HASH,
    VITAL_TYPES,
    EventEnvelope,
    EventGap,
    EventType,
    Severity,
    chain_hash,
    is_alert,
)

log = logging.getLogger(__name__)

#: Shedding order when the disk budget is reached: lower rank goes first. Types absent here
#: (alerts, attendances, button, tamper, journal/plan reports) are never shed.
SHED_RANK: dict[str, int] = {
    EventType.BATTERY.value: 0,
    EventType.DEVICE_RECOVERED.value: 0,
    EventType.GATEWAY_STARTED.value: 1,
    EventType.PLAN_APPLIED.value: 1,
    EventType.DOOR.value: 2,
    EventType.KEYSAFE.value: 2,
}
assert not {EventType(t) for t in SHED_RANK} & VITAL_TYPES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    vital INTEGER NOT NULL,
    alert INTEGER NOT NULL DEFAULT 0,
    time TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_alert ON events(alert, seq);
CREATE TABLE IF NOT EXISTS gaps (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS inputs (n INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""


class JournalError(GatewayError):
    """The journal cannot be opened or written."""


class JournalFull(JournalError):
    """The disk (or the journal's hard size cap) is full even after shedding telemetry."""


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
    """One publishable item: an event, or a gap tombstone (``type == "gap"``, seq = last)."""

    seq: int
    type: str
    payload: bytes
    first_seq: int = 0

    @property
    def is_gap(self) -> bool:
        return self.type == "gap"


@dataclass(frozen=True, slots=True)
class Damage:
    """Why the journal file was replaced at open, and where the damaged copy is."""

    reason: str
    kept_as: str
    salvaged_last_seq: int
    recovered: int = 0


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What :meth:`Journal.reconcile` did with central's position."""

    shifted_by: int  # provisional events renumbered by this much (0: nothing to fix)
    lost: list[tuple[int, int]]  # seq ranges neither journal nor central holds


class Journal:
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
        if max_bytes is not None and (budget_bytes is None or budget_bytes > max_bytes * 0.75):
            # Shed before the hard cap: at the cap even the shedding transaction (gap rows,
            # the events_dropped report) may not find a free page.
            budget_bytes = max(64 * 1024, int(max_bytes * 0.75))
        self.budget_bytes = budget_bytes
        self.max_bytes = max_bytes
        self.clock: Clock = clock or SystemClock()
        self.damage: Damage | None = None
        self.shed_total = 0
        self.recovered = 0
        self._salvaged: list[EventEnvelope] = []
        self._damaged_path = self.path
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as err:
            self.damage = self._set_aside(f"{type(err).__name__}: {err}")
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as again:
                raise JournalError(f"journal {self.path} cannot be created: {again}") from again
        self._last_seq, self._head_hash, self._acked_seq = self._load_head()
        if self.damage is not None:
            self._adopt_salvage(self.damage.salvaged_last_seq)
        # Events above the floor are provisional until central's position is known.
        self._floor = self._last_seq
        self._position_known = False

    # -- opening, checking, setting aside --------------------------------------------------
    def _open(self) -> sqlite3.Connection:
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
            conn.executescript(_SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
            if "alert" not in columns:  # journals written before alerts-first existed
                conn.execute("ALTER TABLE events ADD COLUMN alert INTEGER NOT NULL DEFAULT 0")
            if self.max_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(16, self.max_bytes // page)}")
            self._conn = conn
            existing = self._meta("gateway_id")
            if existing is None:
                self._set_meta("gateway_id", self.gateway_id)
            elif existing != self.gateway_id:
                raise JournalError(
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

    def _set_aside(self, reason: str) -> Damage:
        """Rename the damaged journal (and its WAL/SHM) aside; salvage what is readable."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        salvaged = _salvage_last_seq(self.path)
        self._salvaged = _salvage_events(self.path, self.gateway_id)
        if self._salvaged:
            salvaged = max(salvaged, self._salvaged[-1].seq)
        kept = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        self._damaged_path = kept
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(kept) + suffix))
        log.error("journal %s is damaged (%s): kept as %s, starting a new journal after seq %d",
                  self.path, reason, kept, salvaged)
        return Damage(reason=reason, kept_as=kept.name, salvaged_last_seq=salvaged,
                      recovered=len(self._salvaged))

    def _adopt_salvage(self, last_seq: int) -> None:
        """Put intact events recovered from the damaged file into the new journal, unchanged
        (same seq, same hash: central stores each once whether or not it already had it),
        and continue numbering after the highest seq the damaged file shows."""
        head = GENESIS_HASH
        if self._salvaged and self._salvaged[-1].seq == last_seq:
            head = self._salvaged[-1].hash  # the chain continues unbroken
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany(
            "INSERT OR IGNORE INTO events(seq, id, type, vital, alert, time, payload) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)", [_row(e) for e in self._salvaged],
        )
        held = {e.seq for e in self._salvaged}
        for gap in _salvage_gaps(self._damaged_path, self.gateway_id):
            if not held & set(range(gap.first_seq, gap.last_seq + 1)):
                self._conn.execute(
                    "INSERT OR IGNORE INTO gaps(first_seq, last_seq, payload) VALUES(?, ?, ?)",
                    (gap.first_seq, gap.last_seq, gap.to_bytes()),
                )
                held.update(range(gap.first_seq, gap.last_seq + 1))
                last_seq = max(last_seq, gap.last_seq)
        self._set_meta("last_seq", str(last_seq))
        self._set_meta("head_hash", head)
        self._conn.execute("COMMIT")
        self._last_seq, self._head_hash = last_seq, head
        self.recovered = len(self._salvaged)
        if self._salvaged:
            log.warning("recovered %d intact events (seq %d..%d) from the damaged journal",
                        len(self._salvaged), self._salvaged[0].seq, self._salvaged[-1].seq)
        self._salvaged = []

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
    def _envelopes(
        self, events: Iterable[NewEvent], clock_ok: bool
    ) -> tuple[list[EventEnvelope], list[tuple[int, str, str, int, int, str, bytes]], int, str]:
        seq, head = self._last_seq, self._head_hash
        envelopes: list[EventEnvelope] = []
        rows: list[tuple[int, str, str, int, int, str, bytes]] = []
        for event in events:
            seq += 1
            envelope = _seal(
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
            rows.append(_row(envelope))
        return envelopes, rows, seq, head

    def _insert(self, rows: list[tuple[int, str, str, int, int, str, bytes]], seq: int,
                head: str) -> None:
        self._conn.executemany(
            "INSERT INTO events(seq, id, type, vital, alert, time, payload) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._set_meta("last_seq", str(seq))
        self._set_meta("head_hash", head)

    def append(
        self,
        events: Iterable[NewEvent],
        *,
        clock_ok: bool,
        state: dict[str, str] | None = None,
        inputs: Sequence[tuple[int, str]] = (),
    ) -> list[EventEnvelope]:
        """Journal ``events`` (and optional state values) in one durable transaction.

        ``inputs`` are the rules engine's inputs that produced the events, numbered: they
        are committed with the events, so after a crash the engine state is the last
        :meth:`snapshot` replayed with :meth:`inputs_after` (see gateway/daemon.py).

        Raises :class:`JournalFull` only when the disk is full even after shedding every
        sheddable event; nothing is then written (the caller keeps the events and retries).
        """
        events = list(events)
        with self._lock:
            try:
                return self._append_locked(events, clock_ok, state, inputs)
            except sqlite3.OperationalError as err:
                if not _is_full(err):
                    raise JournalError(f"journal write failed: {err}") from err
                log.error("journal full (%s): shedding telemetry", err)
                try:
                    shed = self._shed_locked(everything=True, clock_ok=clock_ok)
                except sqlite3.Error as again:
                    raise JournalFull(f"journal full, shedding failed too: {again}") from again
                if not shed:
                    raise JournalFull(f"journal full and nothing left to shed: {err}") from err
            try:
                return self._append_locked(events, clock_ok, state, inputs)
            except sqlite3.OperationalError as err:
                if _is_full(err):
                    raise JournalFull(f"journal still full after shedding: {err}") from err
                raise JournalError(f"journal write failed: {err}") from err

    def _append_locked(
        self, events: list[NewEvent], clock_ok: bool, state: dict[str, str] | None,
        inputs: Sequence[tuple[int, str]] = (),
    ) -> list[EventEnvelope]:
        envelopes, rows, seq, head = self._envelopes(events, clock_ok)
        if not rows and not state and not inputs:
            return []
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            if rows:
                self._insert(rows, seq, head)
            if inputs:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO inputs(n, body) VALUES(?, ?)", inputs
                )
            for key, value in (state or {}).items():
                self._conn.execute(
                    "INSERT INTO state(key, value) VALUES(?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (key, value),
                )
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._last_seq, self._head_hash = seq, head
        if rows and self.budget_bytes is not None and self._used_bytes() > self.budget_bytes:
            try:
                self._shed_locked(everything=False, clock_ok=clock_ok)
            except sqlite3.Error as err:  # the events above are committed; shed later
                log.error("journal shedding failed: %s", err)
        return envelopes

    # -- disk budget -----------------------------------------------------------------------
    def _used_bytes(self) -> int:
        page = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * page

    @property
    def used_bytes(self) -> int:
        """Bytes of live data in the journal (pages in use; the WAL is not counted)."""
        with self._lock:
            return self._used_bytes()

    def _shed_locked(self, *, everything: bool, clock_ok: bool) -> int:
        """Drop sheddable unsent telemetry until under 60 % of the budget (or all of it).

        One transaction: delete the rows, write one gap tombstone per run of consecutive
        dropped seqs (merged with adjacent gaps), and journal one ``events_dropped`` report.
        An earlier report that is still unsent is folded into the new one (its count carried
        over, its seq tombstoned with the rest), so a long outage at the budget leaves one
        cumulative report instead of a growing pile of them.
        """
        if everything or self.budget_bytes is None:
            target = 0
        else:
            target = max(0, self._used_bytes() - int(self.budget_bytes * 0.6))
        placeholders = ",".join("?" * len(SHED_RANK))
        rank = " ".join(f"WHEN '{t}' THEN {r}" for t, r in SHED_RANK.items())
        candidates = self._conn.execute(
            f"SELECT seq, type, payload FROM events WHERE seq > ? AND seq <= ? "
            f"AND type IN ({placeholders}) ORDER BY CASE type {rank} END, seq",
            (self._acked_seq, self._last_seq, *SHED_RANK),
        ).fetchall()
        chosen: list[tuple[int, str, bytes]] = []
        freed = 0
        for seq, kind, payload in candidates:
            if target and freed >= target:
                break
            chosen.append((int(seq), str(kind), bytes(payload)))
            freed += len(payload) + 48
        if not chosen:
            log.error("journal over budget but nothing sheddable is left (all vital)")
            return 0
        telemetry = len(chosen)
        by_type: dict[str, int] = {}
        for _, kind, _ in chosen:
            by_type[kind] = by_type.get(kind, 0) + 1
        # Fold unsent earlier reports into this one.
        carried = 0
        for seq, payload in self._conn.execute(
            "SELECT seq, payload FROM events WHERE type=? AND seq > ?",
            (EventType.EVENTS_DROPPED.value, self._acked_seq),
        ).fetchall():
            old = json.loads(payload)["data"]
            carried += int(old.get("count", 0))
            for kind, n in (old.get("by_type") or {}).items():
                by_type[kind] = by_type.get(kind, 0) + int(n)
            chosen.append((int(seq), EventType.EVENTS_DROPPED.value, bytes(payload)))
        chosen.sort()
        payloads = {seq: payload for seq, _, payload in chosen}
        runs = _runs(list(payloads))
        reason = "disk full" if everything else "journal budget reached"
        folded = len(chosen) - telemetry
        if folded:
            by_type[EventType.EVENTS_DROPPED.value] = (
                by_type.get(EventType.EVENTS_DROPPED.value, 0) + folded)
        report = NewEvent(
            EventType.EVENTS_DROPPED, self.clock.now(), self.clock.monotonic(),
            data={"count": carried + len(chosen), "by_type": by_type,
                  "budget_bytes": self.budget_bytes, "max_bytes": self.max_bytes,
                  "reason": reason},
        )
        _, rows, seq, head = self._envelopes([report], clock_ok)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("DELETE FROM events WHERE seq=?", [(s,) for s, _, _ in chosen])
            for first, last in runs:
                kinds: dict[str, int] = {}
                for s in range(first, last + 1):
                    kind = json.loads(payloads[s])["type"]
                    kinds[kind] = kinds.get(kind, 0) + 1
                prev_hash = EventEnvelope.from_bytes(payloads[first]).prev_hash
                end_hash = EventEnvelope.from_bytes(payloads[last]).hash
                before = self._conn.execute(
                    "SELECT first_seq, payload FROM gaps WHERE last_seq=?", (first - 1,)
                ).fetchone()
                after = self._conn.execute(
                    "SELECT first_seq, payload FROM gaps WHERE first_seq=?", (last + 1,)
                ).fetchone()
                for neighbour in (before, after):
                    if neighbour is None:
                        continue
                    other = EventGap.from_bytes(bytes(neighbour[1]))
                    if other.gap != "dropped":
                        continue
                    for kind, n in other.types.items():
                        kinds[kind] = kinds.get(kind, 0) + n
                    if other.last_seq < first:
                        first, prev_hash = other.first_seq, other.prev_hash
                    else:
                        last, end_hash = other.last_seq, other.hash
                    self._conn.execute("DELETE FROM gaps WHERE first_seq=?", (other.first_seq,))
                gap = EventGap(gap="dropped", gateway_id=self.gateway_id, first_seq=first,
                               last_seq=last, prev_hash=prev_hash, hash=end_hash,
                               types=kinds, reason=reason)
                self._conn.execute(
                    "INSERT INTO gaps(first_seq, last_seq, payload) VALUES(?, ?, ?)",
                    (first, last, gap.to_bytes()),
                )
            self._insert(rows, seq, head)
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._last_seq, self._head_hash = seq, head
        self.shed_total += telemetry
        log.warning("journal %s: dropped %d telemetry events (%d since the last delivered "
                    "report)", reason, telemetry, carried + len(chosen))
        return telemetry

    # -- central's position ----------------------------------------------------------------
    @property
    def position_known(self) -> bool:
        return self._position_known

    @property
    def floor(self) -> int:
        """The highest seq this journal held durably when it was opened."""
        return self._floor

    def reconcile(self, central_contiguous: int, central_max: int) -> Reconciled:
        """Central holds every seq <= ``central_contiguous`` and none above ``central_max``.

        Normally ``central_max <= floor`` and nothing changes. If central holds seqs this
        journal never reached (the journal was replaced, damaged, or lost its tail), the
        provisional events (recorded since opening, never published) are renumbered to follow
        ``central_max``, and each run of seqs that neither side holds becomes a ``lost`` gap
        tombstone so central can account for it and its ack can move on.
        """
        with self._lock:
            if self._position_known:
                return Reconciled(0, [])
            base = max(self._floor, central_max)
            shift = base - self._floor
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if shift:
                    self._renumber(shift)
                lost = self._missing_runs(central_contiguous + 1, base)
                for first, last in lost:
                    gap = EventGap(gap="lost", gateway_id=self.gateway_id, first_seq=first,
                                   last_seq=last, prev_hash=None, hash=None,
                                   reason=self._lost_reason(central_max))
                    self._conn.execute(
                        "INSERT OR REPLACE INTO gaps(first_seq, last_seq, payload) "
                        "VALUES(?, ?, ?)", (first, last, gap.to_bytes()),
                    )
                if central_contiguous > self._acked_seq and central_contiguous <= self._floor:
                    self._conn.execute("DELETE FROM events WHERE seq <= ?", (central_contiguous,))
                    self._acked_seq = central_contiguous
                    self._set_meta("acked_seq", str(central_contiguous))
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal reconcile failed: {err}") from err
            self._floor += shift
            self._position_known = True
            if shift or lost:
                log.error("journal behind central (held %d, central has up to %d): "
                          "renumbered by %d, lost %s", self._floor - shift, central_max, shift,
                          lost)
            return Reconciled(shift, lost)

    def _lost_reason(self, central_max: int) -> str:
        if self.damage is not None:
            return f"journal damaged ({self.damage.reason}); kept as {self.damage.kept_as}"
        return f"journal behind central (held seq {self._floor}, central has {central_max})"

    def _renumber(self, shift: int) -> None:
        """Move the provisional events and gaps (above the floor) up by ``shift``, re-chained.

        A shed run's contents are gone, so a renumbered gap is chained with a synthetic link:
        its ``hash`` becomes sha256 over the new ``prev_hash`` and the gap's own JSON.
        """
        events = self._conn.execute(
            "SELECT seq, payload FROM events WHERE seq > ?", (self._floor,)
        ).fetchall()
        gaps = self._conn.execute(
            "SELECT last_seq, payload FROM gaps WHERE first_seq > ?", (self._floor,)
        ).fetchall()
        items = sorted([(int(s), "event", bytes(p)) for s, p in events]
                       + [(int(s), "gap", bytes(p)) for s, p in gaps])
        head = self._head_hash
        if items:
            head = str(json.loads(items[0][2])["prev_hash"] or head)
        self._conn.execute("DELETE FROM events WHERE seq > ?", (self._floor,))
        self._conn.execute("DELETE FROM gaps WHERE first_seq > ?", (self._floor,))
        for _, kind, payload in items:
            body = json.loads(payload)
            if kind == "gap":
                body["first_seq"] += shift
                body["last_seq"] += shift
                body["prev_hash"] = head
                body.pop("hash", None)
                body["hash"] = chain_hash(head, body)
                gap = EventGap.model_validate(body)
                head = str(gap.hash)
                self._conn.execute(
                    "INSERT INTO gaps(first_seq, last_seq, payload) VALUES(?, ?, ?)",
                    (gap.first_seq, gap.last_seq, gap.to_bytes()),
                )
                continue
            body.pop("hash", None)
            body.pop("prev_hash", None)
            body["seq"] += shift
            envelope = _seal(body, head)
            head = envelope.hash
            self._conn.execute(
                "INSERT INTO events(seq, id, type, vital, alert, time, payload) "
                "VALUES(?, ?, ?, ?, ?, ?, ?)", _row(envelope),
            )
        self._last_seq += shift
        self._head_hash = head
        self._set_meta("last_seq", str(self._last_seq))
        self._set_meta("head_hash", head)

    def _missing_runs(self, first: int, last: int) -> list[tuple[int, int]]:
        if first > last:
            return []
        held: set[int] = {
            int(r[0]) for r in self._conn.execute(
                "SELECT seq FROM events WHERE seq BETWEEN ? AND ?", (first, last))
        }
        for a, b in self._conn.execute(
            "SELECT first_seq, last_seq FROM gaps WHERE last_seq >= ? AND first_seq <= ?",
            (first, last),
        ):
            held.update(range(max(a, first), min(b, last) + 1))
        return _runs([s for s in range(first, last + 1) if s not in held])

    # -- acks and compaction ---------------------------------------------------------------
    def mark_acked(self, seq: int) -> int:
        """Central durably holds every event <= ``seq``: drop them. Returns how many."""
        with self._lock:
            if seq <= self._acked_seq:
                return 0
            seq = min(seq, self._last_seq)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cursor = self._conn.execute("DELETE FROM events WHERE seq <= ?", (seq,))
                self._conn.execute("DELETE FROM gaps WHERE last_seq <= ?", (seq,))
                self._set_meta("acked_seq", str(seq))
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal ack failed: {err}") from err
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
        with self._lock:
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
        with self._lock:
            upto = self._last_seq if self._position_known else self._floor
            rows = self._conn.execute(
                "SELECT seq, type, payload FROM events WHERE alert=1 AND seq > ? AND seq <= ? "
                "ORDER BY seq DESC LIMIT ?", (max(after_seq, self._acked_seq), upto, limit),
            ).fetchall()
        return [JournalEntry(int(r[0]), str(r[1]), bytes(r[2]), int(r[0])) for r in rows]

    def snapshot(self, state: dict[str, str], upto_input: int) -> None:
        """Store the engine's state as of input ``upto_input`` and forget the inputs it covers."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for key, value in {**state, "engine_upto": str(upto_input)}.items():
                    self._conn.execute(
                        "INSERT INTO state(key, value) VALUES(?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, value),
                    )
                self._conn.execute("DELETE FROM inputs WHERE n <= ?", (upto_input,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal snapshot failed: {err}") from err

    def inputs_after(self, upto_input: int) -> list[tuple[int, str]]:
        """Engine inputs journalled after the snapshot covering ``upto_input``, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT n, body FROM inputs WHERE n > ? ORDER BY n", (upto_input,)
            ).fetchall()
        return [(int(n), str(body)) for n, body in rows]

    def get_state(self, key: str) -> str | None:
        with self._lock:
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


def _seal(body: dict[str, Any], prev_hash: str) -> EventEnvelope:
    """Chain an event body to ``prev_hash`` and validate it, in one pass.

    The body is built from JSON-native values in the wire's own forms (``format_utc`` times,
    enum values), so hashing it directly gives what central recomputes from the parsed
    envelope (``EventEnvelope.expected_hash``); central rejects any event where they differ,
    which the end-to-end tests would show.
    """
    full = {**body, "prev_hash": prev_hash}
    return EventEnvelope.model_validate({**full, "hash": chain_hash(prev_hash, full)})


def _row(envelope: EventEnvelope) -> tuple[int, str, str, int, int, str, bytes]:
    return (
        envelope.seq,
        envelope.id,
        envelope.type.value,
        int(envelope.type in VITAL_TYPES),
        int(is_alert(envelope.type)),
        format_utc(envelope.time),
        envelope.to_bytes(),
    )


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def _is_full(err: sqlite3.Error) -> bool:
    return "full" in str(err).lower()


_PAYLOAD_RE = re.compile(rb'\{"v":1,"id":"[0-9a-f]{1,64}","gateway_id":"([a-z0-9-]{3,64})",'
                         rb'"seq":(\d+),.*?"hash":"[0-9a-f]{64}"\}', re.DOTALL)


def _salvage_events(path: Path, gateway_id: str) -> list[EventEnvelope]:
    """Intact events found in the raw bytes of a damaged journal and its WAL: each is parsed
    and its hash verified, so nothing garbled is ever re-published. Sorted by seq."""
    found: dict[int, EventEnvelope] = {}
    for raw in _raw_matches(path, _PAYLOAD_RE, gateway_id):
        try:
            envelope = EventEnvelope.from_bytes(raw)
        except ValueError:
            continue
        if envelope.verify_hash():
            found[envelope.seq] = envelope
    return [found[seq] for seq in sorted(found)]


def _raw_matches(path: Path, pattern: re.Pattern[bytes], gateway_id: str) -> Iterator[bytes]:
    """Byte runs matching ``pattern`` for this gateway in a journal file and its WAL."""
    for suffix in ("", "-wal"):
        try:
            raw = Path(str(path) + suffix).read_bytes()
        except OSError:
            continue
        for match in pattern.finditer(raw):
            if match.group(1).decode() == gateway_id:
                yield match.group(0)


_GAP_RE = re.compile(rb'\{"v":1,"gap":"(?:dropped|lost)","gateway_id":"([a-z0-9-]{3,64})",'
                     rb'"first_seq":\d+,.*?"reason":"[^"\\]*"\}', re.DOTALL)


def _salvage_gaps(path: Path, gateway_id: str) -> list[EventGap]:
    """Gap tombstones found in the raw bytes of a damaged journal (and its WAL)."""
    found: dict[int, EventGap] = {}
    for raw in _raw_matches(path, _GAP_RE, gateway_id):
        try:
            gap = EventGap.from_bytes(raw)
        except ValueError:
            continue
        if gap.first_seq not in found or found[gap.first_seq].last_seq < gap.last_seq:
            found[gap.first_seq] = gap
    return [found[k] for k in sorted(found)]


def _salvage_last_seq(path: Path) -> int:
    """Best effort: the highest seq a damaged journal recorded (0 if nothing is readable)."""
    best = 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        for sql in ("SELECT value FROM meta WHERE key='last_seq'", "SELECT MAX(seq) FROM events"):
            try:
                row = conn.execute(sql).fetchone()
                if row and row[0] is not None:
                    best = max(best, int(row[0]))
            except (sqlite3.Error, ValueError):
                continue
    finally:
        conn.close()
    return best
