"""Messages ingest set aside: what came, on which topic, and why it was refused.

``rejected_messages`` keeps a bounded prefix of each payload (with the size and sha256 of
the whole in the reason) and at most :data:`MAX_REJECTED_ROWS` rows, pruning the oldest, so
a hostile gateway cannot fill central's disk through it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.db.tables import rejected_messages
from homecall.clock import format_utc

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
