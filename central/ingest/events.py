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
i.e. after the transaction committed.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central import CentralError
from central.db.engine import Database
from central.db.tables import (
    alerts,
    attendances,
    event_conflicts,
    event_gaps,
    events,
    gateways,
    rejected_messages,
)
from central.ingest.alerts import (
    Raise,
    SensorAlertBatch,
    auto_resolve,
    auto_resolve_for_event,
    may_auto_resolve,
    raise_alert,
    write_audit,
)
from central.ingest.gateway_rows import ensure_gateway, ensure_gateways, upsert
from central.ingest.statuses import StatusOutcome, StatusRecord, record_statuses
from homecall.clock import format_utc, parse_utc
from homecall.wire import GENESIS_HASH, EventEnvelope, EventGap, EventType, is_alert

#: The kinds of gap (``event_gaps.gap``): seqs central will never receive (see
#: :meth:`EventStore.store_gaps`), and ``purged``: events removed at the end of their
#: retention period. The audit listing shows each such seq as a row of its kind.
PLACEHOLDER_TYPES = frozenset({"dropped", "lost", "purged"})


class StoreError(CentralError):
    """The store cannot do what was asked."""


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What storing a batch did."""

    stored: int
    duplicates: int
    conflicts: int
    acks: dict[str, int]  # gateway_id -> highest contiguous seq now stored
    #: gateway_id -> highest seq held (the ack's ``max_seq``), read in the same transaction
    highest: dict[str, int] = field(default_factory=dict)


#: ``rejected_messages`` keeps this much of a payload (the size and sha256 of the whole go
#: into the reason), and at most this many rows (the oldest are pruned as new ones come).
REJECTED_PAYLOAD_PREFIX = 4096
MAX_REJECTED_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message ingest set aside: where it came from, why, and its payload."""

    topic: str
    reason: str
    payload: bytes


def _rejected_row(received_at: str, rejected: Rejected) -> dict[str, Any]:
    payload, reason = rejected.payload, rejected.reason
    if len(payload) > REJECTED_PAYLOAD_PREFIX:
        digest = hashlib.sha256(payload).hexdigest()
        reason = (f"{reason} [payload {len(payload)} bytes, sha256 {digest}; first "
                  f"{REJECTED_PAYLOAD_PREFIX} kept]")
        payload = payload[:REJECTED_PAYLOAD_PREFIX]
    return {"received_at": received_at, "topic": rejected.topic[:256],
            "reason": reason[:2048], "payload": payload}


def record_rejected(conn: Connection, now: datetime, topic: str, reason: str,
                    payload: bytes) -> None:
    record_rejected_many(conn, now, [Rejected(topic, reason, payload)])


def record_rejected_many(conn: Connection, now: datetime, rejected: list[Rejected]) -> None:
    """Keep ``rejected`` (bounded payload prefixes) and prune the table to its bound."""
    if not rejected:
        return
    received_at = format_utc(now)
    conn.execute(sa.insert(rejected_messages), [_rejected_row(received_at, r) for r in rejected])
    newest = conn.execute(sa.select(sa.func.max(rejected_messages.c.id))).scalar() or 0
    if newest > MAX_REJECTED_ROWS:
        conn.execute(sa.delete(rejected_messages).where(
            rejected_messages.c.id <= newest - MAX_REJECTED_ROWS))


def _event_hash(conn: Connection, gateway_id: str, seq: int) -> Any:
    return conn.execute(_GET_EVENT, {"b_gw": gateway_id, "b_seq": seq}).first()


def _links(prev_hash: str) -> sa.Case[Any]:
    """``chain_ok`` for a row whose predecessor's hash is ``prev_hash``: 1 if it links."""
    return sa.case((events.c.prev_hash == prev_hash, 1), else_=0)


# Statements built once and run with parameters (building a statement per event cost more
# than running it). Bind names start ``b_`` so they never clash with column names.
_P = sa.bindparam
_GET_EVENT = sa.select(events.c.hash, events.c.type, events.c.chain_ok).where(
    events.c.gateway_id == _P("b_gw"), events.c.seq == _P("b_seq"))
_GET_EVENTS = sa.select(
    events.c.seq, events.c.hash, events.c.prev_hash, events.c.type, events.c.chain_ok
).where(events.c.gateway_id == _P("b_gw"), events.c.seq.in_(_P("b_seqs", expanding=True)))
_GET_GAPS = sa.select(
    event_gaps.c.first_seq, event_gaps.c.last_seq, event_gaps.c.gap, event_gaps.c.hash,
    event_gaps.c.prev_hash, event_gaps.c.chain_ok,
).where(event_gaps.c.gateway_id == _P("b_gw"), event_gaps.c.first_seq <= _P("b_high"),
        event_gaps.c.last_seq >= _P("b_low"))
_SET_GAP_CHAIN = sa.update(event_gaps).where(
    event_gaps.c.gateway_id == _P("b_gw"), event_gaps.c.first_seq == _P("b_seq")
).values(chain_ok=_P("b_chain_ok"))
_DELETE_EVENT = sa.delete(events).where(
    events.c.gateway_id == _P("b_gw"), events.c.seq == _P("b_seq"))
_INSERT_EVENT = sa.insert(events)
_SET_CHAIN = sa.update(events).where(
    events.c.gateway_id == _P("b_gw"), events.c.seq == _P("b_seq")
).values(chain_ok=_P("b_chain_ok"))
_COUNT_BREAK = sa.update(gateways).where(gateways.c.id == _P("b_gw")).values(
    chain_breaks=gateways.c.chain_breaks + 1)


def _event_row(event: EventEnvelope, chain_ok: int | None, received_at: str) -> dict[str, Any]:
    """The ``events`` row of one gateway event."""
    return {
        "gateway_id": event.gateway_id, "seq": event.seq, "id": event.id,
        "type": event.type.value, "time": format_utc(event.time),
        "severity": event.severity.value if event.severity else None,
        "visit_id": event.visit_id, "service_user_id": event.service_user_id,
        "carer_id": event.carer_id, "clock_ok": int(event.clock_ok),
        "data": json.dumps(event.data), "hash": event.hash,
        "prev_hash": event.prev_hash, "chain_ok": chain_ok,
        "payload": event.to_bytes().decode(), "received_at": received_at,
    }


@dataclass(slots=True)
class _Held:
    """What the transaction knows is stored at one seq (read once per batch, kept current)."""

    hash: str
    prev_hash: str
    type: str
    chain_ok: int | None


def _held(conn: Connection, gateway_id: str, seqs: set[int]) -> dict[int, _Held]:
    """What is stored among ``seqs`` for one gateway (absent = not stored): real events, and
    where none, what a gap tombstone says of that seq (the last seq of a ``dropped`` gap has
    its hash; every seq of a ``lost`` gap is a hole the chain restarts after; the inner seqs
    of a ``dropped`` gap have no known hash and are left out)."""
    if not seqs:
        return {}
    rows = conn.execute(_GET_EVENTS, {"b_gw": gateway_id, "b_seqs": sorted(seqs)})
    held = {int(r.seq): _Held(r.hash, r.prev_hash, r.type, r.chain_ok) for r in rows}
    missing = sorted(seqs - held.keys())
    if missing:
        for gap in conn.execute(_GET_GAPS, {"b_gw": gateway_id, "b_low": missing[0],
                                            "b_high": missing[-1]}):
            inside = missing[bisect_left(missing, gap.first_seq):
                             bisect_right(missing, gap.last_seq)]
            for seq in inside:
                if seq in held:
                    continue
                if gap.gap == "lost":
                    held[seq] = _Held("", "", "lost", None)
                elif seq in (gap.first_seq, gap.last_seq):
                    # its ends: the hash the next event links to, and the link back
                    held[seq] = _Held(
                        gap.hash if seq == gap.last_seq and gap.hash else "",
                        gap.prev_hash if seq == gap.first_seq and gap.prev_hash else "",
                        "dropped", gap.chain_ok if seq == gap.first_seq else 1)
    return held


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
            held = {gw: _held(conn, gw, seqs) for gw, seqs in wanted.items()}
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
                        _record_conflict(conn, event, existing.hash, received_at)
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
                    conn.execute(_COUNT_BREAK, {"b_gw": gateway_id})
                pending[(gateway_id, event.seq)] = _event_row(event, chain_ok, received_at)
                known[event.seq] = _Held(event.hash, event.prev_hash, event.type.value,
                                         chain_ok)
                # A later event may now confirm the link of the one after it.
                after = known.get(event.seq + 1)
                if after is not None and after.chain_ok is None and after.type != "lost":
                    after.chain_ok = int(after.prev_hash == event.hash)
                    waiting = pending.get((gateway_id, event.seq + 1))
                    if after.type == "dropped":  # the first seq of a gap: its link back
                        if after.prev_hash:
                            conn.execute(_SET_GAP_CHAIN, {"b_gw": gateway_id,
                                                          "b_seq": event.seq + 1,
                                                          "b_chain_ok": after.chain_ok})
                    elif waiting is not None:
                        waiting["chain_ok"] = after.chain_ok
                    else:
                        conn.execute(_SET_CHAIN, {"b_gw": gateway_id, "b_seq": event.seq + 1,
                                                  "b_chain_ok": after.chain_ok})
                _project(conn, event, now, sensor_alerts)
                stored += 1
                touched.add(gateway_id)
            sensor_alerts.flush(conn)
            if pending:
                conn.execute(_INSERT_EVENT, list(pending.values()))
            positions = {gw: _advance_contiguous(conn, gw, int(locked[gw].contiguous_seq))
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
        stored = duplicates = 0
        touched: set[str] = set()
        received_at = format_utc(now)
        with self.db.write() as conn:
            for gateway_id in sorted({gap.gateway_id for gap in gaps}):
                ensure_gateway(conn, gateway_id, lock=True)
            for gap in gaps:
                gateway_id = gap.gateway_id
                touched.add(gateway_id)
                pieces = _uncovered(conn, gateway_id, gap.first_seq, gap.last_seq)
                if not pieces:  # every seq already tombstoned (a resend, or a folded gap)
                    duplicates += gap.count
                    continue
                payload = gap.to_bytes().decode()
                for first_seq, last_seq in pieces:
                    real = int(conn.execute(
                        sa.select(sa.func.count()).select_from(events).where(
                            events.c.gateway_id == gateway_id,
                            events.c.seq.between(first_seq, last_seq))
                    ).scalar_one())
                    stored += last_seq - first_seq + 1 - real
                    duplicates += real
                    chain_ok: int | None = None
                    starts = first_seq == gap.first_seq
                    if starts and gap.gap == "dropped" and gap.prev_hash is not None:
                        if first_seq == 1:
                            chain_ok = int(gap.prev_hash == GENESIS_HASH)
                        else:
                            prev = _event_hash(conn, gateway_id, first_seq - 1)
                            if prev is not None and prev.hash:
                                chain_ok = int(prev.hash == gap.prev_hash)
                    conn.execute(sa.insert(event_gaps).values(
                        gateway_id=gateway_id, first_seq=first_seq, last_seq=last_seq,
                        gap=gap.gap, prev_hash=gap.prev_hash if starts else None,
                        hash=gap.hash if last_seq == gap.last_seq else None,
                        chain_ok=chain_ok, payload=payload, received_at=received_at))
                duplicates += gap.count - sum(b - a + 1 for a, b in pieces)
                if gap.hash is not None:
                    conn.execute(
                        sa.update(events)
                        .where(events.c.gateway_id == gateway_id,
                               events.c.seq == gap.last_seq + 1, events.c.chain_ok.is_(None))
                        .values(chain_ok=_links(gap.hash))
                    )
                elif gap.gap == "lost":
                    after = _event_hash(conn, gateway_id, gap.last_seq + 1)
                    if after is not None and after.chain_ok is None:
                        conn.execute(
                            sa.update(events)
                            .where(events.c.gateway_id == gateway_id,
                                   events.c.seq == gap.last_seq + 1)
                            .values(chain_ok=0)
                        )
                        conn.execute(
                            sa.update(gateways).where(gateways.c.id == gateway_id)
                            .values(chain_breaks=gateways.c.chain_breaks + 1)
                        )
            positions = {gw: _advance_contiguous(conn, gw) for gw in sorted(touched)}
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
        at = format_utc(now)
        with self.db.write() as conn:
            ensure_gateway(conn, gateway_id, lock=True)
            claims = conn.execute(sa.select(event_conflicts).where(
                event_conflicts.c.gateway_id == gateway_id, event_conflicts.c.seq == seq,
                event_conflicts.c.resolved_at.is_(None))).all()
            if not claims:
                raise StoreError(f"no open conflict at seq {seq} of gateway {gateway_id}")
            stored = conn.execute(sa.select(events.c.hash, events.c.payload, events.c.received_at)
                                  .where(events.c.gateway_id == gateway_id,
                                         events.c.seq == seq)).first()
            candidates = {c.hash: c.payload for c in claims}
            if stored is not None:
                candidates[stored.hash] = stored.payload
            if keep_hash not in candidates:
                raise StoreError(f"{keep_hash!r} is not one of the claims to seq {seq}: "
                                 f"choose one of {sorted(candidates)}")
            if stored is None or keep_hash != stored.hash:
                kept = EventEnvelope.from_bytes(candidates[keep_hash].encode())
                if (kept.gateway_id, kept.seq) != (gateway_id, seq):
                    raise StoreError(f"claim {keep_hash!r} is not an event of seq {seq} of "
                                     f"gateway {gateway_id}")
                if stored is not None:  # the displaced claim is kept, as resolved
                    conn.execute(upsert(conn, event_conflicts).values(
                        gateway_id=gateway_id, seq=seq, hash=stored.hash,
                        payload=stored.payload, received_at=stored.received_at,
                        resolved_at=at,
                    ).on_conflict_do_nothing(index_elements=[
                        event_conflicts.c.gateway_id, event_conflicts.c.seq,
                        event_conflicts.c.hash]))
                    conn.execute(_DELETE_EVENT, {"b_gw": gateway_id, "b_seq": seq})
                before = _event_hash(conn, gateway_id, seq - 1)
                chain_ok: int | None = (int(kept.prev_hash == GENESIS_HASH) if seq == 1 else
                                        None if before is None else
                                        int(bool(before.hash) and
                                            before.hash == kept.prev_hash))
                conn.execute(_INSERT_EVENT, [_event_row(kept, chain_ok, at)])
                conn.execute(sa.update(events).where(
                    events.c.gateway_id == gateway_id, events.c.seq == seq + 1,
                    events.c.type.not_in(sorted(PLACEHOLDER_TYPES)),
                ).values(chain_ok=_links(kept.hash)))
                _project(conn, kept, now)
            conn.execute(sa.update(event_conflicts).where(
                event_conflicts.c.gateway_id == gateway_id, event_conflicts.c.seq == seq,
                event_conflicts.c.resolved_at.is_(None)).values(resolved_at=at))
            set_aside = sorted(h for h in candidates if h != keep_hash)
            write_audit(conn, now, who, "gateway.conflict_resolved", f"gateway:{gateway_id}",
                        {"seq": seq, "kept": keep_hash, "set_aside": set_aside,
                         "reason": reason})
            auto_resolve(conn, [alerts.c.gateway_id == gateway_id,
                                alerts.c.type == EventType.GATEWAY_INTEGRITY.value,
                                alerts.c.event_seq == -seq],
                         "conflict_resolved",
                         f"seq {seq}: {who} kept {keep_hash[:12]}…, {reason}", now)
            return _advance_contiguous(conn, gateway_id)[0]

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


def _record_conflict(conn: Connection, event: EventEnvelope, stored_hash: str,
                     received_at: str) -> None:
    """Keep a second, different claim to ``(gateway, seq)`` and raise ``gateway_integrity``
    (once per seq) for staff; :func:`_advance_contiguous` keeps the ack below it."""
    conn.execute(
        upsert(conn, event_conflicts).values(
            gateway_id=event.gateway_id, seq=event.seq, hash=event.hash,
            payload=event.to_bytes().decode(), received_at=received_at,
        ).on_conflict_do_nothing(index_elements=[
            event_conflicts.c.gateway_id, event_conflicts.c.seq, event_conflicts.c.hash])
    )
    # A central-raised alert: event_seq is the negated seq, so it never collides with the
    # alert event a gateway may have stored at that seq, and a third claim raises no more.
    already = conn.execute(sa.select(alerts.c.id).where(
        alerts.c.gateway_id == event.gateway_id, alerts.c.event_seq == -event.seq)).first()
    if already is None:
        raise_alert(conn, Raise(
            side="central", gateway_id=event.gateway_id,
            type=EventType.GATEWAY_INTEGRITY.value, severity="high",
            raised_at=parse_utc(received_at), event_seq=-event.seq,
            data={"seq": event.seq, "stored_hash": stored_hash,
                  "conflicting_hash": event.hash,
                  "detail": "two different events claim this seq"},
        ), parse_utc(received_at))


def _uncovered(conn: Connection, gateway_id: str, first_seq: int,
               last_seq: int) -> list[tuple[int, int]]:
    """The parts of ``first_seq..last_seq`` no stored gap covers yet (gaps are kept
    disjoint, so a resent or folded tombstone adds only what is new and counts stay exact)."""
    pieces: list[tuple[int, int]] = []
    start = first_seq
    for gap in conn.execute(
        sa.select(event_gaps.c.first_seq, event_gaps.c.last_seq).where(
            event_gaps.c.gateway_id == gateway_id, event_gaps.c.first_seq <= last_seq,
            event_gaps.c.last_seq >= first_seq).order_by(event_gaps.c.first_seq)
    ):
        if gap.first_seq > start:
            pieces.append((start, int(gap.first_seq) - 1))
        start = max(start, int(gap.last_seq) + 1)
        if start > last_seq:
            break
    if start <= last_seq:
        pieces.append((start, last_seq))
    return pieces


def _advance_contiguous(conn: Connection, gateway_id: str,
                        contiguous: int | None = None) -> tuple[int, int]:
    """Move the gateway's contiguous seq over what is now stored; returns it and the highest
    seq held (what its ack says). ``contiguous``: the position as this transaction read it
    when it locked the gateway's row (saves reading it again)."""
    seq = contiguous if contiguous is not None else int(conn.execute(
        sa.select(gateways.c.contiguous_seq).where(gateways.c.id == gateway_id)
    ).scalar_one())
    # one round trip for the three aggregates (each an indexed lookup); they also tell
    # whether there is anything past ``seq`` to walk over at all
    conflict, highest_event, highest_gap = conn.execute(sa.select(
        sa.select(sa.func.min(event_conflicts.c.seq)).where(
            event_conflicts.c.gateway_id == gateway_id,
            event_conflicts.c.resolved_at.is_(None)).scalar_subquery(),
        sa.select(sa.func.max(events.c.seq)).where(
            events.c.gateway_id == gateway_id).scalar_subquery(),
        sa.select(sa.func.max(event_gaps.c.last_seq)).where(
            event_gaps.c.gateway_id == gateway_id).scalar_subquery(),
    )).one()
    # Walk forward over the stored run and over gap ranges (events after a hole wait for it
    # to fill, with a real event or a tombstone).
    while True:
        if highest_event is not None and int(highest_event) > seq:
            nxt = list(conn.execute(
                sa.select(events.c.seq)
                .where(events.c.gateway_id == gateway_id, events.c.seq > seq,
                       events.c.seq <= seq + 1000)
                .order_by(events.c.seq)
            ).scalars())
            advanced = False
            for found in nxt:
                if found == seq + 1:
                    seq += 1
                    advanced = True
                else:
                    break
            if advanced and len(nxt) == 1000:
                continue
        if highest_gap is None or int(highest_gap) <= seq:
            break  # no gap reaches past seq
        over_gap = conn.execute(
            sa.select(sa.func.max(event_gaps.c.last_seq)).where(
                event_gaps.c.gateway_id == gateway_id, event_gaps.c.first_seq <= seq + 1,
                event_gaps.c.last_seq > seq)
        ).scalar()
        if over_gap is None:
            break
        seq = int(over_gap)
    if conflict is not None:  # never ack past an unresolved conflict
        seq = min(seq, int(conflict) - 1)
    highest = max(int(highest_event or 0), int(highest_gap or 0))
    conn.execute(
        sa.update(gateways).where(gateways.c.id == gateway_id)
        .values(contiguous_seq=seq, max_seq=highest)
    )
    return seq, highest


@dataclass(frozen=True, slots=True)
class _ProjectionStatements:
    """The projection's upserts for one dialect (built once: see the note on ``_P``)."""

    arrival: Any
    departure: Any


_ATTENDANCE_KEY = [attendances.c.gateway_id, attendances.c.visit_id, attendances.c.carer_id,
                   attendances.c.arrived_at]
_OPEN_ATTENDANCE = (
    sa.select(attendances.c.arrived_at)
    .where(attendances.c.gateway_id == _P("b_gw"), attendances.c.visit_id == _P("b_visit"),
           attendances.c.carer_id == _P("b_carer"), attendances.c.departed_at.is_(None))
    .order_by(attendances.c.arrived_at.desc()).limit(1)
)
_FIRST_ARRIVAL = (
    sa.select(attendances.c.carer_id, attendances.c.arrived_at)
    .where(attendances.c.gateway_id == _P("b_gw"), attendances.c.visit_id == _P("b_visit"))
    .order_by(attendances.c.arrived_at).limit(1)
)
_LATER_ALERTS = (
    sa.select(alerts.c.id, alerts.c.data)
    .where(alerts.c.gateway_id == _P("b_gw"), alerts.c.visit_id == _P("b_visit"),
           alerts.c.event_seq > _P("b_seq"))
    .order_by(alerts.c.event_seq)
)
_SUPERSEDE_EARLIER = (
    sa.update(alerts)
    .where(alerts.c.gateway_id == _P("b_gw"), alerts.c.visit_id == _P("b_visit"),
           alerts.c.type == _P("b_type"), alerts.c.status != "superseded",
           alerts.c.event_seq < _P("b_seq"))
    .values(status="superseded", superseded_by=_P("b_by"))
)
_SUPERSEDE_ONE = (
    sa.update(alerts).where(alerts.c.id == _P("b_id"))
    .values(status="superseded", superseded_by=_P("b_by"))
)
_PROJECTIONS: dict[str, _ProjectionStatements] = {}


def _projection_statements(conn: Connection) -> _ProjectionStatements:
    built = _PROJECTIONS.get(conn.dialect.name)
    if built is None:
        arrival = upsert(conn, attendances)
        departure = upsert(conn, attendances)
        built = _ProjectionStatements(
            arrival=arrival.on_conflict_do_update(index_elements=_ATTENDANCE_KEY, set_={
                "arrival_seq": arrival.excluded.arrival_seq,
                "punctuality": arrival.excluded.punctuality,
                "minutes_outside_window": arrival.excluded.minutes_outside_window,
            }),
            departure=departure.on_conflict_do_update(index_elements=_ATTENDANCE_KEY, set_={
                "departed_at": departure.excluded.departed_at,
                "departure_seq": departure.excluded.departure_seq,
            }),
        )
        _PROJECTIONS[conn.dialect.name] = built
    return built


def _project(conn: Connection, event: EventEnvelope, now: datetime,
             sensor_alerts: SensorAlertBatch | None = None) -> None:
    data = event.data
    if sensor_alerts is not None and may_auto_resolve(event.type.value, event.visit_id, data):
        sensor_alerts.flush(conn)  # what it may clear must be in the table first
    auto_resolve_for_event(conn, event.gateway_id, event.type.value, event.visit_id,
                           event.carer_id, event.time, data, event.seq, now)
    when = format_utc(event.time)
    statements = _projection_statements(conn)
    if event.type is EventType.ARRIVAL and event.visit_id and event.carer_id:
        conn.execute(statements.arrival, {
            "gateway_id": event.gateway_id, "visit_id": event.visit_id,
            "carer_id": event.carer_id, "arrived_at": when, "arrival_seq": event.seq,
            "punctuality": data.get("punctuality"),
            "minutes_outside_window": data.get("minutes_outside_window"),
            "data": json.dumps(data),
        })
    elif event.type is EventType.DEPARTURE and event.visit_id and event.carer_id:
        arrived_at = data.get("arrived_at")
        if arrived_at is None:
            arrived_at = conn.execute(_OPEN_ATTENDANCE, {
                "b_gw": event.gateway_id, "b_visit": event.visit_id, "b_carer": event.carer_id,
            }).scalar() or when
        conn.execute(statements.departure, {
            "gateway_id": event.gateway_id, "visit_id": event.visit_id,
            "carer_id": event.carer_id, "arrived_at": arrived_at, "departed_at": when,
            "departure_seq": event.seq,
        })
    if is_alert(event.type) and event.severity is not None:
        raised = Raise(
            side="gateway", gateway_id=event.gateway_id, type=event.type.value,
            severity=event.severity.value, raised_at=event.time, visit_id=event.visit_id,
            service_user_id=event.service_user_id, carer_id=event.carer_id,
            event_seq=event.seq, data=data,
        )
        if sensor_alerts is not None and sensor_alerts.take(conn, raised, now):
            return  # no visit: nothing below applies
        alert_id, result = raise_alert(conn, raised, now)
        if result == "created" and event.type is EventType.VISIT_LATE and event.visit_id:
            # the arrival may have been stored first (a replay after an outage comes in
            # any order): the alert is cleared as it would have been had it come first
            arrived = conn.execute(_FIRST_ARRIVAL, {
                "b_gw": event.gateway_id, "b_visit": event.visit_id}).first()
            if arrived is not None:
                auto_resolve(conn, [alerts.c.id == alert_id], "carer_arrived",
                             f"carer {arrived.carer_id} arrived at {arrived.arrived_at}", now)
        if result != "created" or not event.visit_id:
            return
        supersedes = data.get("supersedes")
        if supersedes:
            conn.execute(_SUPERSEDE_EARLIER, {
                "b_gw": event.gateway_id, "b_visit": event.visit_id, "b_type": supersedes,
                "b_seq": event.seq, "b_by": alert_id,
            })
        # Alerts may arrive newest first (after an outage): a later alert that already
        # arrived and supersedes this type wins regardless of arrival order. (``supersedes``
        # lives in the alert's JSON data; the visit's few later alerts are read and checked
        # here, so no JSON operator, which differs between engines, is needed.)
        later_alerts = conn.execute(_LATER_ALERTS, {
            "b_gw": event.gateway_id, "b_visit": event.visit_id, "b_seq": event.seq})
        later = next((row.id for row in later_alerts
                      if json.loads(row.data).get("supersedes") == event.type.value), None)
        if later is not None:
            conn.execute(_SUPERSEDE_ONE, {"b_id": alert_id, "b_by": later})
