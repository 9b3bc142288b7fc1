"""Gap tombstones at central: runs of seqs a gateway will never send (shed within its disk
budget: ``dropped``; gone with a damaged journal: ``lost``), one ``event_gaps`` row per run
however long, kept disjoint so a resent or folded tombstone adds only what is new and the
counts stay exact. A ``dropped`` gap's end hashes keep the chain verifiable across it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db.tables import event_gaps, events, gateways
from central.ingest.chain import event_hash, links_to
from homecall.wire import GENESIS_HASH, EventGap


def store_gap_rows(conn: Connection, gaps: list[EventGap],
                   received_at: str) -> tuple[int, int, set[str]]:
    """Record ``gaps`` in the caller's transaction (their gateways' rows already locked);
    returns the seqs newly tombstoned, the seqs already held, and the gateways touched."""
    stored = duplicates = 0
    touched: set[str] = set()
    for gap in gaps:
        gateway_id = gap.gateway_id
        touched.add(gateway_id)
        pieces = uncovered(conn, gateway_id, gap.first_seq, gap.last_seq)
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
                    prev = event_hash(conn, gateway_id, first_seq - 1)
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
                .values(chain_ok=links_to(gap.hash))
            )
        elif gap.gap == "lost":
            after = event_hash(conn, gateway_id, gap.last_seq + 1)
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
    return stored, duplicates, touched


def uncovered(conn: Connection, gateway_id: str, first_seq: int,
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
