"""Gateway health as the fleet list shows it: each gateway's state, positions and delivery
counts (stored, dropped, lost, purged), paged by id, and the seqs of a gateway that two
different events claim, for staff to compare.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from central.db.tables import event_conflicts, event_gaps, events
from central.db.tables import gateways as gateways_table
from central.store import Store
from central.views.scope import scoped


def list_gateways(store: Store, *,
                  gateways: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Every gateway in ``gateways`` (None: all), by id, with its delivery counts."""
    return gateway_page(store, gateways=gateways)[0]


def gateway_page(store: Store, *, gateways: Collection[str] | None = None,
                 after: str | None = None, limit: int | None = None,
                 state: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Gateways by id, from just past ``after``, at most ``limit`` of them, only those in
    ``state`` if given; and the id to ask ``after`` for the next page (None: no more).

    The event and gap counts are read for the page's gateways only, so a page of a
    10,000-gateway fleet costs what a page costs, not what the fleet does.
    """
    with store.db.read() as conn:
        query = (sa.select(gateways_table)
                 .where(*scoped(gateways_table.c.id, None, gateways))
                 .order_by(gateways_table.c.id))
        if after is not None:
            query = query.where(gateways_table.c.id > after)
        if state is not None:
            query = query.where(gateways_table.c.state == state)
        if limit is not None:
            query = query.limit(limit + 1)
        rows = conn.execute(query).all()
        next_after: str | None = None
        if limit is not None and len(rows) > limit:
            rows = rows[:limit]
            next_after = rows[-1].id
        if limit is not None or state is not None:
            gateways = [row.id for row in rows]  # count for the page's gateways only
        per_type = conn.execute(
            sa.select(events.c.gateway_id, events.c.type, sa.func.count().label("n"))
            .where(*scoped(events.c.gateway_id, None, gateways))
            .group_by(events.c.gateway_id, events.c.type)
        ).all()
        # each gap's seqs that hold no real event (gaps are stored disjoint)
        real_inside = (
            sa.select(sa.func.count()).select_from(events)
            .where(events.c.gateway_id == event_gaps.c.gateway_id,
                   events.c.seq.between(event_gaps.c.first_seq, event_gaps.c.last_seq))
            .scalar_subquery()
        )
        per_gap = (
            sa.select(event_gaps.c.gateway_id, event_gaps.c.gap,
                      (event_gaps.c.last_seq - event_gaps.c.first_seq + 1 - real_inside)
                      .label("n"))
            .where(*scoped(event_gaps.c.gateway_id, None, gateways))
            .subquery()
        )
        per_gap_kind = conn.execute(
            sa.select(per_gap.c.gateway_id, per_gap.c.gap, sa.func.sum(per_gap.c.n))
            .group_by(per_gap.c.gateway_id, per_gap.c.gap)
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for gateway_id, kind, n in [*((g, "event", n) for g, _, n in per_type), *per_gap_kind]:
        by_kind = counts.setdefault(gateway_id, {})
        by_kind[kind] = by_kind.get(kind, 0) + int(n or 0)
    out = []
    for row in rows:
        status = json.loads(row.status) if row.status else None
        gateway_counts = counts.get(row.id, {})
        out.append(
            {
                "id": row.id,
                "state": row.state,
                "last_seen": row.last_seen,
                "plan_version": row.plan_version,
                "contiguous_seq": row.contiguous_seq,
                "max_seq": row.max_seq,
                "events_stored": sum(gateway_counts.values()),
                # seqs the gateway shed within its disk budget (tombstoned, not lost) and
                # seqs a damaged/replaced journal could not deliver (lost, and counted so)
                "events_dropped": gateway_counts.get("dropped", 0),
                "events_gone": gateway_counts.get("lost", 0),
                # removed at the end of their retention period (accounted for, not lost)
                "events_purged": gateway_counts.get("purged", 0),
                "chain_breaks": row.chain_breaks,
                "status": status,
                # what the gateway did with central's last command (e.g. identify)
                "last_command": status.get("last_command") if status else None,
            }
        )
    return out, next_after


def list_conflicts(store: Store, gateway_id: str) -> list[dict[str, Any]]:
    """Each seq of ``gateway_id`` that two different events claim: the stored event and every
    other claimant, as received, for staff to compare (oldest seq first)."""
    with store.db.read() as conn:
        claims = conn.execute(
            sa.select(event_conflicts).where(event_conflicts.c.gateway_id == gateway_id)
            .order_by(event_conflicts.c.seq, event_conflicts.c.id)
        ).all()
        seqs = sorted({int(c.seq) for c in claims})
        stored = {int(r.seq): r for r in conn.execute(
            sa.select(events.c.seq, events.c.hash, events.c.payload, events.c.received_at)
            .where(events.c.gateway_id == gateway_id, events.c.seq.in_(seqs)))} if seqs else {}
    out: list[dict[str, Any]] = []
    for seq in seqs:
        kept = stored.get(seq)
        out.append({
            "seq": seq,
            "stored": None if kept is None else {
                "hash": kept.hash, "received_at": kept.received_at,
                "event": json.loads(kept.payload)},
            "conflicting": [
                {"hash": c.hash, "received_at": c.received_at, "resolved_at": c.resolved_at,
                 "event": json.loads(c.payload)}
                for c in claims if int(c.seq) == seq],
        })
    return out
