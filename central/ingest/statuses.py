"""Gateway ``status`` messages stored a batch at a time.

A fleet of 10,000 gateways sends about a thousand heartbeats a second; one transaction (one
fsync) per heartbeat cannot keep up. This module owns :func:`record_statuses`: every status
of one ingest batch goes into one transaction, in arrival order, and what each did comes
back as :class:`StatusOutcome` values: the gateway's position (for the ack central sends in
reply to an ``online`` status), whether its liveness changed (state, or heartbeat interval:
what supervision needs waking for), and the ``gateway_offline`` alerts an ``online`` status
auto-resolved (``gateway_back``, audited).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.alerts.lifecycle import CLOSED_STATES
from central.db.tables import alerts, gateways
from central.ingest.alerts import auto_resolve
from central.ingest.gateway_rows import ensure_gateway
from central.supervision.liveness import DEFAULT_HEARTBEAT_S, MISSED_HEARTBEATS
from homecall.clock import format_utc


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One status to store: the gateway, the message as JSON, its state."""

    gateway_id: str
    status_json: str
    state: str
    #: the status said the clock is good and nothing is queued
    caught_up: bool = False
    #: what the status said of its clock, and its heartbeat interval (real seconds)
    clock_ok: bool | None = None
    heartbeat_s: float | None = None


@dataclass(slots=True)
class StatusOutcome:
    """What storing one gateway's statuses of a batch did (the last one wins)."""

    gateway_id: str
    state: str
    #: state or heartbeat interval differ from what central held: supervision must look again
    changed: bool = False
    #: (highest contiguous seq, highest seq) central holds, read in the same transaction
    position: tuple[int, int] = (0, 0)
    resolved: list[int] = field(default_factory=list)


def _heartbeat(status_json: str | None) -> Any:
    if not status_json:
        return None
    try:
        return json.loads(status_json).get("heartbeat_s")
    except (ValueError, AttributeError):
        return None


def sortable_utc(value: datetime) -> str:
    """UTC as fixed-width text (always with microseconds), so text order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def offline_deadline_of(item: StatusRecord, now: datetime, speed: float = 1.0) -> str | None:
    """When a gateway counts as offline if nothing more is heard after ``item`` arrived at
    ``now``: three heartbeats (the interval is real seconds; ``speed`` is clock seconds per
    real second). None for an ``offline`` status."""
    if item.state != "online":
        return None
    heartbeat = item.heartbeat_s if item.heartbeat_s and item.heartbeat_s > 0 \
        else DEFAULT_HEARTBEAT_S
    return sortable_utc(now + timedelta(seconds=heartbeat * MISSED_HEARTBEATS * speed))


def record_statuses(conn: Connection, items: list[StatusRecord],
                    now: datetime, speed: float = 1.0) -> dict[str, StatusOutcome]:
    """Store ``items`` in order inside the caller's write transaction; one outcome per
    gateway. ``online`` ends an outage (its open ``gateway_offline`` alerts auto-resolve);
    ``offline`` (the last will) starts one. ``speed``: the clock's seconds per real second
    (heartbeat intervals are real time)."""
    at = format_utc(now)
    outcomes: dict[str, StatusOutcome] = {}
    coming_back = sorted({item.gateway_id for item in items if item.state == "online"})
    # One query for the batch: which of these gateways have a gateway_offline still open.
    open_offline = set(conn.execute(
        sa.select(alerts.c.gateway_id).distinct().where(
            alerts.c.gateway_id.in_(coming_back), alerts.c.type == "gateway_offline",
            alerts.c.status.not_in(sorted(CLOSED_STATES)))
    ).scalars()) if coming_back else set()
    for item in items:
        row = ensure_gateway(conn, item.gateway_id, lock=True)
        values: dict[str, Any] = {"status": item.status_json, "state": item.state,
                                  "last_seen": at, "clock_ok": item.clock_ok,
                                  "offline_deadline": offline_deadline_of(item, now, speed)}
        if item.state == "offline" and row.state != "offline":
            values["offline_since"] = at
        elif item.state == "online":
            values["offline_since"] = None
        if item.caught_up:
            values["caught_up_at"] = at
        conn.execute(sa.update(gateways).where(gateways.c.id == item.gateway_id)
                     .values(**values))
        changed = row.state != item.state or (
            item.state == "online"
            and _heartbeat(row.status) != _heartbeat(item.status_json))
        outcome = outcomes.get(item.gateway_id)
        if outcome is None:
            outcomes[item.gateway_id] = StatusOutcome(item.gateway_id, item.state, changed)
        else:
            outcome.state = item.state
            outcome.changed = outcome.changed or changed
        if item.state == "online" and item.gateway_id in open_offline:
            # Every online status (not only a change) clears a gateway_offline left open,
            # e.g. one raised by supervision just as the gateway came back.
            open_offline.discard(item.gateway_id)
            outcomes[item.gateway_id].resolved += auto_resolve(
                conn, [alerts.c.gateway_id == item.gateway_id,
                       alerts.c.type == "gateway_offline"],
                "gateway_back", f"gateway {item.gateway_id} online again at {at}", now)
    online = [gid for gid, outcome in outcomes.items() if outcome.state == "online"]
    if online:
        for position in conn.execute(
            sa.select(gateways.c.id, gateways.c.contiguous_seq, gateways.c.max_seq)
            .where(gateways.c.id.in_(online))
        ):
            outcomes[position.id].position = (int(position.contiguous_seq),
                                              int(position.max_seq))
    return outcomes
