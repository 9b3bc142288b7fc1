"""The hash chain as central stores it: each event's row, the statements that read and link
stored events and gap tombstones, and what the transaction knows is held at a seq.

``chain_ok`` on an event row is 1 when its ``prev_hash`` is the hash stored at ``seq - 1``,
0 when it is not (a break), and NULL while the predecessor has not arrived. A ``dropped``
gap's tombstone carries the hashes at its ends, so the chain stays verifiable across it; a
``lost`` gap has none and the first event after it shows as a break.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db.tables import event_gaps, events, gateways
from homecall.clock import format_utc
from homecall.wire import EventEnvelope

#: The kinds of gap (``event_gaps.gap``): seqs central will never receive (see
#: :meth:`~central.ingest.events.EventStore.store_gaps`), and ``purged``: events removed at
#: the end of their retention period. The audit listing shows each such seq as a row of its
#: kind.
PLACEHOLDER_TYPES = frozenset({"dropped", "lost", "purged"})

def event_hash(conn: Connection, gateway_id: str, seq: int) -> Any:
    return conn.execute(GET_EVENT, {"b_gw": gateway_id, "b_seq": seq}).first()


def links_to(prev_hash: str) -> sa.Case[Any]:
    """``chain_ok`` for a row whose predecessor's hash is ``prev_hash``: 1 if it links."""
    return sa.case((events.c.prev_hash == prev_hash, 1), else_=0)


# Statements built once and run with parameters (building a statement per event cost more
# than running it). Bind names start ``b_`` so they never clash with column names.
_P = sa.bindparam
GET_EVENT = sa.select(events.c.hash, events.c.type, events.c.chain_ok).where(
    events.c.gateway_id == _P("b_gw"), events.c.seq == _P("b_seq"))
GET_EVENTS = sa.select(
    events.c.seq, events.c.hash, events.c.prev_hash, events.c.type, events.c.chain_ok
).where(events.c.gateway_id == _P("b_gw"), events.c.seq.in_(_P("b_seqs", expanding=True)))
GET_GAPS = sa.select(
    event_gaps.c.first_seq, event_gaps.c.last_seq, event_gaps.c.gap, event_gaps.c.hash,
    event_gaps.c.prev_hash, event_gaps.c.chain_ok,
).where(event_gaps.c.gateway_id == _P("b_gw"), event_gaps.c.first_seq <= _P("b_high"),
        event_gaps.c.last_seq >= _P("b_low"))
SET_GAP_CHAIN = sa.update(event_gaps).where(
    event_gaps.c.gateway_id == _P("b_gw"), event_gaps.c.first_seq == _P("b_seq")
).values(chain_ok=_P("b_chain_ok"))
DELETE_EVENT = sa.delete(events).where(
    events.c.gateway_id == _P("b_gw"), events.c.seq == _P("b_seq"))
INSERT_EVENT = sa.insert(events)
SET_CHAIN = sa.update(events).where(
    events.c.gateway_id == _P("b_gw"), events.c.seq == _P("b_seq")
).values(chain_ok=_P("b_chain_ok"))
COUNT_BREAK = sa.update(gateways).where(gateways.c.id == _P("b_gw")).values(
    chain_breaks=gateways.c.chain_breaks + 1)


def event_row(event: EventEnvelope, chain_ok: int | None, received_at: str) -> dict[str, Any]:
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
class Held:
    """What the transaction knows is stored at one seq (read once per batch, kept current)."""

    hash: str
    prev_hash: str
    type: str
    chain_ok: int | None


def held_at(conn: Connection, gateway_id: str, seqs: set[int]) -> dict[int, Held]:
    """What is stored among ``seqs`` for one gateway (absent = not stored): real events, and
    where none, what a gap tombstone says of that seq (the last seq of a ``dropped`` gap has
    its hash; every seq of a ``lost`` gap is a hole the chain restarts after; the inner seqs
    of a ``dropped`` gap have no known hash and are left out)."""
    if not seqs:
        return {}
    rows = conn.execute(GET_EVENTS, {"b_gw": gateway_id, "b_seqs": sorted(seqs)})
    held = {int(r.seq): Held(r.hash, r.prev_hash, r.type, r.chain_ok) for r in rows}
    missing = sorted(seqs - held.keys())
    if missing:
        for gap in conn.execute(GET_GAPS, {"b_gw": gateway_id, "b_low": missing[0],
                                            "b_high": missing[-1]}):
            inside = missing[bisect_left(missing, gap.first_seq):
                             bisect_right(missing, gap.last_seq)]
            for seq in inside:
                if seq in held:
                    continue
                if gap.gap == "lost":
                    held[seq] = Held("", "", "lost", None)
                elif seq in (gap.first_seq, gap.last_seq):
                    # its ends: the hash the next event links to, and the link back
                    held[seq] = Held(
                        gap.hash if seq == gap.last_seq and gap.hash else "",
                        gap.prev_hash if seq == gap.first_seq and gap.prev_hash else "",
                        "dropped", gap.chain_ok if seq == gap.first_seq else 1)
    return held
