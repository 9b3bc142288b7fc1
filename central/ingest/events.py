"""The event record: each gateway's events stored once per ``(gateway_id, seq)``, and the
projections that storing an event keeps current.

A redelivered event is recognised by its ``(gateway_id, seq)`` and stored once; a redelivery
whose hash differs from what is stored is a conflict: the newcomer is kept in
``event_conflicts``, a ``gateway_integrity`` alert is raised, and the ack stays below it. Each
stored event's ``prev_hash`` is checked against the hash stored at ``seq - 1`` (``chain_ok``:
1 linked, 0 broken, NULL not yet known because the predecessor has not arrived). Storing an
event updates ``attendances`` (arrival/departure pairs), ``alerts`` (one per (gateway, visit, type),
whichever side raised it first, see :mod:`central.ingest.alerts`; an event that clears an
alert, e.g. an arrival for ``visit_late``, auto-resolves it with the reason audited) and
``gateways`` (the highest contiguous seq, which is what central acks, and the highest seq
held). Gap tombstones are stored as placeholder rows so the contiguous seq can move past
seqs a gateway will never send.

:class:`EventStore` takes a connection from the pool for each unit of work (one batch, one
status); every statement is SQLAlchemy Core and runs unchanged on SQLite and PostgreSQL
(upserts use each dialect's ``ON CONFLICT``). The caller acks only after a method returns,
i.e. after the transaction committed. Beside it: the hash chain's rows and statements
(:mod:`~central.ingest.chain`), gap tombstones (:mod:`~central.ingest.gaps`), conflicting
claims (:mod:`~central.ingest.conflicts`), the ack position
(:mod:`~central.ingest.positions`), the projections (:mod:`~central.ingest.projections`),
statuses (:mod:`~central.ingest.statuses`) and refused messages
(:mod:`~central.ingest.rejects`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from central.db.engine import Database
from central.db.tables import (
    gateways,
)
from central.ingest.alerts import (
    SensorAlertBatch,
)
from central.ingest.chain import (
    COUNT_BREAK,
    INSERT_EVENT,
    PLACEHOLDER_TYPES,
    SET_CHAIN,
    SET_GAP_CHAIN,
    Held,
    event_row,
    held_at,
)
from central.ingest.conflicts import record_conflict, resolve_conflict
from central.ingest.gaps import store_gap_rows
from central.ingest.gateway_rows import ensure_gateway, ensure_gateways
from central.ingest.positions import advance_contiguous
from central.ingest.projections import project
from central.ingest.rejects import Rejected, record_rejected_many
from central.ingest.statuses import StatusOutcome, StatusRecord, record_statuses
from homecall.clock import format_utc
from homecall.wire import GENESIS_HASH, EventEnvelope, EventGap


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing a batch did."""

    stored: int
    duplicates: int
    conflicts: int
    acks: dict[str, int]  # gateway_id -> highest contiguous seq now stored
    #: gateway_id -> highest seq held (the ack's ``max_seq``), read in the same transaction
    highest: dict[str, int] = field(default_factory=dict)


class EventStore:
    """Stores events, gap tombstones and statuses; answers where a gateway stands."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        # Every seq this batch looks at (its own, each predecessor, each successor), read
        # once per gateway; the transaction holds the gateway (SQLite: the write lock;
        # PostgreSQL: the gateway row), so the cache stays true while the batch runs.
        wanted: dict[str, set[int]] = {}
        for _, event in envelopes:
            wanted.setdefault(event.gateway_id, set()).update(
                (event.seq - 1, event.seq, event.seq + 1))
        with self.db.write() as conn:
            locked = ensure_gateways(conn, list(wanted))
            held = {gw: held_at(conn, gw, seqs) for gw, seqs in wanted.items()}
            # New event rows, inserted together before the acks are worked out (one
            # multi-row statement is far cheaper than one per event, above all on
            # PostgreSQL); nothing in between reads the events table for these seqs.
            pending: dict[tuple[str, int], dict[str, Any]] = {}
            sensor_alerts = SensorAlertBatch()  # inserted together (see its docstring)
            for _, event in envelopes:
                gateway_id = event.gateway_id
                known = held[gateway_id]
                existing = known.get(event.seq)
                if existing is not None and existing.type in PLACEHOLDER_TYPES:
                    # A tombstoned seq whose real event was already in flight: keep the event
                    # (the gap's counts leave out seqs that hold a real event).
                    del known[event.seq]
                    existing = None
                if existing is not None:
                    if existing.hash == event.hash:
                        duplicates += 1
                    else:
                        conflicts += 1
                        record_conflict(conn, event, existing.hash, received_at)
                    touched.add(gateway_id)
                    continue
                prev = known.get(event.seq - 1)
                if event.seq == 1:
                    chain_ok: int | None = int(event.prev_hash == GENESIS_HASH)
                elif prev is not None and prev.hash:
                    chain_ok = int(prev.hash == event.prev_hash)
                elif prev is not None and prev.type == "lost":
                    chain_ok = 0  # follows a lost gap: the chain restarts here
                elif prev is not None and prev.type in PLACEHOLDER_TYPES:
                    chain_ok = None  # inside a dropped gap: the hash before it is not known
                else:
                    chain_ok = None  # predecessor not here yet (or compacted): checked later
                if chain_ok == 0:
                    conn.execute(COUNT_BREAK, {"b_gw": gateway_id})
                pending[(gateway_id, event.seq)] = event_row(event, chain_ok, received_at)
                known[event.seq] = Held(event.hash, event.prev_hash, event.type.value,
                                         chain_ok)
                # A later event may now confirm the link of the one after it.
                after = known.get(event.seq + 1)
                if after is not None and after.chain_ok is None and after.type != "lost":
                    after.chain_ok = int(after.prev_hash == event.hash)
                    waiting = pending.get((gateway_id, event.seq + 1))
                    if after.type == "dropped":  # the first seq of a gap: its link back
                        if after.prev_hash:
                            conn.execute(SET_GAP_CHAIN, {"b_gw": gateway_id,
                                                          "b_seq": event.seq + 1,
                                                          "b_chain_ok": after.chain_ok})
                    elif waiting is not None:
                        waiting["chain_ok"] = after.chain_ok
                    else:
                        conn.execute(SET_CHAIN, {"b_gw": gateway_id, "b_seq": event.seq + 1,
                                                  "b_chain_ok": after.chain_ok})
                project(conn, event, now, sensor_alerts)
                stored += 1
                touched.add(gateway_id)
            sensor_alerts.flush(conn)
            if pending:
                conn.execute(INSERT_EVENT, list(pending.values()))
            positions = {gw: advance_contiguous(conn, gw, int(locked[gw].contiguous_seq))
                         for gw in sorted(touched)}
        return StoreResult(stored, duplicates, conflicts,
                           {gw: seq for gw, (seq, _) in positions.items()},
                           {gw: highest for gw, (_, highest) in positions.items()})

    def store_gaps(self, gaps: list[EventGap], now: datetime) -> StoreResult:
        """Record gap tombstones, one ``event_gaps`` row per gap however long, so the
        contiguous seq (and the ack) can move past seqs the gateway will never send.
        ``stored`` counts the gap's seqs central holds no real event for; a gap already
        recorded counts as duplicates.

        A ``dropped`` gap carries the hashes at both ends and keeps the chain verifiable; a
        ``lost`` one does not, and the first real event after it shows as a chain break.
        """
        with self.db.write() as conn:
            for gateway_id in sorted({gap.gateway_id for gap in gaps}):
                ensure_gateway(conn, gateway_id, lock=True)
            stored, duplicates, touched = store_gap_rows(conn, gaps, format_utc(now))
            positions = {gw: advance_contiguous(conn, gw) for gw in sorted(touched)}
        return StoreResult(stored, duplicates, 0,
                           {gw: seq for gw, (seq, _) in positions.items()},
                           {gw: highest for gw, (_, highest) in positions.items()})

    def resolve_conflict(self, gateway_id: str, seq: int, keep_hash: str, who: str,
                         reason: str, now: datetime) -> int:
        """Settle two different claims to ``(gateway_id, seq)``: keep the event whose hash is
        ``keep_hash`` (the one stored, or a claimant, which then replaces it and is
        projected), keep the other as a resolved claim, audit who chose and why,
        auto-resolve the ``gateway_integrity`` alert, and let the ack move on. Returns the
        gateway's contiguous seq afterwards. :class:`StoreError` if there is no open
        conflict at ``seq`` or ``keep_hash`` is not one of its claims."""
        with self.db.write() as conn:
            resolve_conflict(conn, gateway_id, seq, keep_hash, who, reason, now)
            return advance_contiguous(conn, gateway_id)[0]

    # -- statuses, rejects, positions ------------------------------------------------------
    def record_status(self, gateway_id: str, status_json: str, state: str, now: datetime,
                      *, caught_up: bool = False, speed: float = 1.0) -> list[int]:
        """Store one gateway ``status`` (see :meth:`record_statuses`); returns the ids of the
        ``gateway_offline`` alerts it auto-resolved."""
        body = json.loads(status_json) if status_json else {}
        record = StatusRecord(gateway_id, status_json, state, caught_up,
                              clock_ok=body.get("clock_ok"), heartbeat_s=body.get("heartbeat_s"))
        return self.record_statuses([record], now, speed)[gateway_id].resolved

    def record_statuses(self, items: list[StatusRecord], now: datetime,
                        speed: float = 1.0) -> dict[str, StatusOutcome]:
        """Store a batch of statuses in one transaction (:mod:`central.ingest.statuses`)."""
        with self.db.write() as conn:
            return record_statuses(conn, items, now, speed)

    def reject(self, topic: str, reason: str, payload: bytes, now: datetime) -> None:
        """Keep a message ingest refused, with the reason, for staff to look at."""
        self.reject_many([Rejected(topic, reason, payload)], now)

    def reject_many(self, rejected: list[Rejected], now: datetime) -> None:
        """Keep every message of one batch ingest refused, in one transaction."""
        with self.db.write() as conn:
            record_rejected_many(conn, now, rejected)

    def position(self, gateway_id: str) -> tuple[int, int]:
        """(highest contiguous seq, highest seq) central holds for ``gateway_id``."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(gateways.c.contiguous_seq, gateways.c.max_seq)
                .where(gateways.c.id == gateway_id)
            ).first()
        if row is None:
            return 0, 0
        return int(row.contiguous_seq), int(row.max_seq)

    def gateway_ids(self) -> list[str]:
        with self.db.read() as conn:
            return list(conn.execute(sa.select(gateways.c.id).order_by(gateways.c.id)).scalars())


