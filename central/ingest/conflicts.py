"""Two different events claiming one ``(gateway, seq)``: the second claim is kept aside
and a ``gateway_integrity`` alert raised (the ack stays below it) until a manager settles it
by choosing the real event, which is audited with who and why.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db.tables import alerts, event_conflicts, events
from central.ingest import StoreError
from central.ingest.alerts import Raise, auto_resolve, raise_alert, write_audit
from central.ingest.chain import (
    DELETE_EVENT,
    INSERT_EVENT,
    PLACEHOLDER_TYPES,
    event_hash,
    event_row,
    links_to,
)
from central.ingest.gateway_rows import ensure_gateway, upsert
from central.ingest.projections import project
from homecall.clock import format_utc, parse_utc
from homecall.wire import GENESIS_HASH, EventEnvelope, EventType


def record_conflict(conn: Connection, event: EventEnvelope, stored_hash: str,
                     received_at: str) -> None:
    """Keep a second, different claim to ``(gateway, seq)`` and raise ``gateway_integrity``
    (once per seq) for staff; :func:`~central.ingest.positions.advance_contiguous` keeps
    the ack below it."""
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


def resolve_conflict(conn: Connection, gateway_id: str, seq: int, keep_hash: str, who: str,
                     reason: str, now: datetime) -> None:
    """Settle two different claims to ``(gateway_id, seq)`` in the caller's transaction:
    keep the event whose hash is ``keep_hash`` (the one stored, or a claimant, which then
    replaces it and is projected), keep the other as a resolved claim, audit who chose and
    why, and auto-resolve the ``gateway_integrity`` alert; the caller then moves the ack on.
    :class:`StoreError` if there is no open conflict at ``seq`` or ``keep_hash`` is not one
    of its claims."""
    at = format_utc(now)
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
            conn.execute(DELETE_EVENT, {"b_gw": gateway_id, "b_seq": seq})
        before = event_hash(conn, gateway_id, seq - 1)
        chain_ok: int | None = (int(kept.prev_hash == GENESIS_HASH) if seq == 1 else
                                None if before is None else
                                int(bool(before.hash) and
                                    before.hash == kept.prev_hash))
        conn.execute(INSERT_EVENT, [event_row(kept, chain_ok, at)])
        conn.execute(sa.update(events).where(
            events.c.gateway_id == gateway_id, events.c.seq == seq + 1,
            events.c.type.not_in(sorted(PLACEHOLDER_TYPES)),
        ).values(chain_ok=links_to(kept.hash)))
        project(conn, kept, now)
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
