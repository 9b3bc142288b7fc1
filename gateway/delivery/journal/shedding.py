"""Shedding low-value telemetry when the journal reaches its disk budget.

When the budget is reached, the lowest-value unsent telemetry (battery readings, device
recoveries, start/plan bookkeeping, then door and key-safe changes) is dropped, oldest first;
alerts, attendances and the other ``VITAL_TYPES`` never are. A shed run of seqs leaves a
*gap* row that is published as an :class:`~homecall.wire.EventGap` tombstone (carrying the
hashes at both ends, so the chain still links) and one ``events_dropped`` event says what
went. An earlier report still unsent is folded into the new one, so a long outage at the
budget leaves one cumulative report rather than a growing pile of them.
"""

from __future__ import annotations

import json
import logging

from gateway.delivery.journal.core import JournalCore
from gateway.delivery.journal.records import NewEvent, runs
from gateway.delivery.journal.transaction import transaction
from homecall.wire import VITAL_TYPES, EventEnvelope, EventGap, EventType

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


class Shedding(JournalCore):
    """The disk-budget half of the journal."""

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
        Returns how many telemetry events went. Raises JournalError if it cannot commit.
        """
        if everything or self.budget_bytes is None:
            target = 0
        else:
            target = max(0, self._used_bytes() - int(self.budget_bytes * 0.6))
        chosen = self._choose(target)
        if not chosen:
            log.error("journal over budget but nothing sheddable is left (all vital)")
            return 0
        telemetry = len(chosen)
        by_type: dict[str, int] = {}
        for _, kind, _ in chosen:
            by_type[kind] = by_type.get(kind, 0) + 1
        carried = self._fold_unsent_reports(chosen, by_type)
        chosen.sort()
        payloads = {seq: payload for seq, _, payload in chosen}
        reason = "disk full" if everything else "journal budget reached"
        folded = len(chosen) - telemetry
        if folded:
            dropped = EventType.EVENTS_DROPPED.value
            by_type[dropped] = by_type.get(dropped, 0) + folded
        report = NewEvent(
            EventType.EVENTS_DROPPED, self.clock.now(), self.clock.monotonic(),
            data={"count": carried + len(chosen), "by_type": by_type,
                  "budget_bytes": self.budget_bytes, "max_bytes": self.max_bytes,
                  "reason": reason},
        )
        _, rows, seq, head = self._envelopes([report], clock_ok)
        self._durable()
        with transaction(self._conn, "shedding"):
            self._conn.executemany("DELETE FROM events WHERE seq=?", [(s,) for s, _, _ in chosen])
            for first, last in runs(list(payloads)):
                self._tombstone(first, last, payloads, reason)
            self._insert(rows, seq, head)
        self._last_seq, self._head_hash = seq, head
        self.shed_total += telemetry
        log.warning("journal %s: dropped %d telemetry events (%d since the last delivered "
                    "report)", reason, telemetry, carried + len(chosen))
        return telemetry

    def _choose(self, target: int) -> list[tuple[int, str, bytes]]:
        """Sheddable unsent events, lowest rank and oldest first, worth ``target`` bytes
        (0: all of them)."""
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
        return chosen

    def _fold_unsent_reports(self, chosen: list[tuple[int, str, bytes]],
                             by_type: dict[str, int]) -> int:
        """Add unsent earlier ``events_dropped`` reports to ``chosen``; returns their count."""
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
        return carried

    def _tombstone(self, first: int, last: int, payloads: dict[int, bytes], reason: str) -> None:
        """One ``dropped`` gap for seqs first..last, merged with adjacent dropped gaps."""
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
