"""Reconciling the journal with central's position, once per start.

A journal that was replaced, damaged, or lost its tail may be behind central. Until central
has said how far it got (its first ``ack``), events recorded since opening are
*provisional* and are not published, so a replaced journal can never reuse a seq central
already holds. :meth:`Reconciling.reconcile` then renumbers the provisional events to follow
central's highest seq (re-chaining them) and turns each run of seqs neither side holds into a
``lost`` gap tombstone, so central can account for it and its ack can move on.
"""

from __future__ import annotations

import json
import logging

from gateway.delivery.journal.core import JournalCore
from gateway.delivery.journal.records import INSERT_EVENT, Reconciled, event_row, runs, seal
from gateway.delivery.journal.transaction import transaction
from homecall.wire import EventGap, chain_hash

log = logging.getLogger(__name__)


class Reconciling(JournalCore):
    """The central-position half of the journal."""

    @property
    def position_known(self) -> bool:
        return self._position_known

    @property
    def floor(self) -> int:
        """The highest seq this journal held durably when it was opened."""
        return self._floor

    def reconcile(self, central_contiguous: int, central_max: int) -> Reconciled:
        """Central holds every seq <= ``central_contiguous`` and none above ``central_max``.

        Normally ``central_max <= floor`` and nothing changes. Raises JournalError (nothing
        changed; the next ack tries again) if the journal cannot be written.
        """
        with self._lock:
            if self._position_known:
                return Reconciled(0, [])
            base = max(self._floor, central_max)
            shift = base - self._floor
            last_seq, head = self._last_seq, self._head_hash
            acked = self._acked_seq
            try:
                self._durable()
                with transaction(self._conn, "reconcile"):
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
                    if acked < central_contiguous <= self._floor:
                        self._conn.execute("DELETE FROM events WHERE seq <= ?",
                                           (central_contiguous,))
                        self._set_meta("acked_seq", str(central_contiguous))
                        acked = central_contiguous
            except BaseException:
                self._last_seq, self._head_hash = last_seq, head  # as before the attempt
                raise
            self._acked_seq = acked
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
            envelope = seal(body, head)
            head = envelope.hash
            self._conn.execute(INSERT_EVENT, event_row(envelope))
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
        return runs([s for s in range(first, last + 1) if s not in held])
