"""Where a gateway stands at central: the highest contiguous seq stored (what central acks)
and the highest seq held (the ack's ``max_seq``), advanced inside the storing transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db.tables import event_conflicts, event_gaps, events, gateways


def advance_contiguous(conn: Connection, gateway_id: str,
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
