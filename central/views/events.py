"""Raw events for audit: the stored events in seq order, with each seq of a gap tombstone
that holds no real event listed as a row of the gap's kind (``dropped`` or ``lost``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from central.db.tables import event_gaps, events
from central.store import Store
from central.views.scope import scoped


def list_events(
    store: Store, gateway_id: str | None = None, after_seq: int = 0, limit: int = 1000, *,
    gateways: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Stored events in seq order, for audit, at most 10,000; each seq of a gap tombstone
    that holds no real event is listed too, as a row of the gap's kind (``dropped`` or
    ``lost``) carrying the tombstone's range, types and reason."""
    limit = min(max(limit, 1), 10000)
    query = (
        sa.select(events.c.gateway_id, events.c.seq, events.c.id, events.c.type,
                  events.c.time, events.c.severity, events.c.visit_id,
                  events.c.service_user_id, events.c.carer_id, events.c.clock_ok,
                  events.c.data, events.c.chain_ok)
        .where(events.c.seq > after_seq, *scoped(events.c.gateway_id, gateway_id, gateways))
        .order_by(events.c.gateway_id, events.c.seq)
        .limit(limit)
    )
    gap_query = (
        sa.select(event_gaps)
        .where(event_gaps.c.last_seq > after_seq,
               *scoped(event_gaps.c.gateway_id, gateway_id, gateways))
        .order_by(event_gaps.c.gateway_id, event_gaps.c.first_seq)
    )
    with store.db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        gaps = conn.execute(gap_query).all()
    for row in rows:
        row["data"] = json.loads(row["data"])
    if not gaps:
        return rows
    real = {(row["gateway_id"], row["seq"]) for row in rows}
    # Real rows stop at the limit: a gap seq past the last real row of a cut-off listing may
    # hide a real event, so only gap seqs up to that point are filled in.
    cut = (rows[-1]["gateway_id"], rows[-1]["seq"]) if len(rows) == limit else None
    for gap in gaps:
        tombstone = json.loads(gap.payload)
        data = {"gap": gap.gap, "first_seq": int(tombstone["first_seq"]),
                "last_seq": int(tombstone["last_seq"]), "types": tombstone.get("types", {}),
                "reason": tombstone.get("reason")}
        added = 0
        for seq in range(max(int(gap.first_seq), after_seq + 1), int(gap.last_seq) + 1):
            if cut is not None and (gap.gateway_id, seq) > cut:
                break
            if (gap.gateway_id, seq) in real:
                continue
            rows.append({
                "gateway_id": gap.gateway_id, "seq": seq, "id": f"{gap.gap}:{gap.gateway_id}:{seq}",
                "type": gap.gap, "time": gap.received_at, "severity": None, "visit_id": None,
                "service_user_id": None, "carer_id": None, "clock_ok": 0, "data": data,
                "chain_ok": (None if gap.gap == "lost" else
                             gap.chain_ok if seq == gap.first_seq else 1),
            })
            added += 1
            if added >= limit:
                break
    rows.sort(key=lambda row: (row["gateway_id"], row["seq"]))
    return rows[:limit]
