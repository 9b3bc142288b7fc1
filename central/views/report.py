"""The scenario report, central's final view: visits, alerts, and delivery counted as
central can tell it (events lost, duplicated, and claimed by heartbeats but unverified).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from central.db.tables import events
from central.store import Store
from central.views.alerts import list_alerts
from central.views.gateways import list_gateways
from central.views.scope import scoped
from central.views.visits import list_visits


def delivery_counts(store: Store, *,
                    gateways: Collection[str] | None = None) -> tuple[int, int]:
    """(events lost, events duplicated) as central can tell them.

    Lost: seq numbers missing below the highest seq a gateway reported (in its events or its
    last heartbeat), plus seqs a gateway declared lost with its damaged journal. A heartbeat's
    ``last_seq`` is the gateway's claim: it counts at most :data:`CLAIM_AHEAD_COUNTED` seqs
    above the highest seq stored (the rest is reported as claimed, unverified). Seqs the
    gateway shed within its disk budget (``dropped`` tombstones) are accounted for, not lost.
    Duplicated: the same event id stored under more than one seq.
    """
    lost, _ = _lost_and_unverified(store, gateways)
    per_id = (
        sa.select(sa.func.count().label("n"))
        .select_from(events)
        .where(*scoped(events.c.gateway_id, None, gateways))
        .group_by(events.c.gateway_id, events.c.id)
        .having(sa.func.count() > 1)
        .subquery()
    )
    with store.db.read() as conn:
        duplicated = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(per_id.c.n - 1), 0))
        ).scalar_one()
    return lost, int(duplicated)


#: How far above the highest stored seq a heartbeat's ``last_seq`` is believed (events the
#: gateway journalled and has not delivered yet); anything beyond is a claim, not a count.
CLAIM_AHEAD_COUNTED = 10_000


def _lost_and_unverified(store: Store,
                         gateways: Collection[str] | None) -> tuple[int, int]:
    lost = unverified = 0
    for gw in list_gateways(store, gateways=gateways):
        claimed = int((gw["status"] or {}).get("last_seq") or 0)
        believed = min(claimed, gw["max_seq"] + CLAIM_AHEAD_COUNTED)
        unverified += claimed - believed
        reported = max(gw["max_seq"], believed)
        lost += max(0, reported - gw["events_stored"]) + gw["events_gone"]
    return lost, unverified


def report(store: Store, gateway_id: str | None = None, *,
           gateways: Collection[str] | None = None) -> dict[str, Any]:
    """Central's final view of visits, alerts and delivery (the scenario report)."""
    lost, duplicated = delivery_counts(store, gateways=gateways)
    return {
        "visits": [
            {k: v[k] for k in ("id", "status", "punctuality", "minutes_outside_window",
                               "attendances")}
            for v in list_visits(store, gateway_id, gateways=gateways)
        ],
        "alerts": [
            {k: a[k] for k in ("type", "severity", "visit", "raised_at", "status",
                               "received_at", "raised_by")}
            for a in list_alerts(store, gateway_id, gateways=gateways)
        ],
        "events_lost": lost,
        "events_duplicated": duplicated,
        # seqs heartbeats claim beyond what is stored plus CLAIM_AHEAD_COUNTED: not counted
        "events_claimed_unverified": _lost_and_unverified(store, gateways)[1],
    }
