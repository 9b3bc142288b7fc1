"""Gap tombstones as ranges: ``event_gaps`` holds one row per gap (before, one placeholder
row per seq in ``events``, up to a million rows for one tombstone); existing placeholders
are folded into ranges and removed from ``events``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    gaps = op.create_table(
        "event_gaps",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("gap", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text),
        sa.Column("hash", sa.Text),
        sa.Column("chain_ok", sa.Integer),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_gaps"),
        sa.UniqueConstraint("gateway_id", "first_seq", "last_seq", "gap",
                            name="uq_event_gaps_gateway_id_first_seq_last_seq_gap"),
        sqlite_autoincrement=True,
    )
    op.create_index("event_gaps_gateway_last", "event_gaps", ["gateway_id", "last_seq"])
    bind = op.get_bind()
    events = sa.table("events", sa.column("gateway_id"), sa.column("seq"), sa.column("type"),
                      sa.column("chain_ok"), sa.column("payload"), sa.column("received_at"))
    placeholders = bind.execute(
        sa.select(events.c.gateway_id, events.c.seq, events.c.type, events.c.chain_ok,
                  events.c.payload, events.c.received_at)
        .where(events.c.type.in_(["dropped", "lost"]))
        .order_by(events.c.gateway_id, events.c.seq)).all()
    ranges: dict[tuple[str, int, int, str], dict[str, object]] = {}
    for row in placeholders:
        tombstone = json.loads(row.payload)
        key = (row.gateway_id, int(tombstone["first_seq"]), int(tombstone["last_seq"]),
               row.type)
        entry = ranges.setdefault(key, {
            "gateway_id": key[0], "first_seq": key[1], "last_seq": key[2], "gap": key[3],
            "prev_hash": tombstone.get("prev_hash"), "hash": tombstone.get("hash"),
            "chain_ok": None, "payload": row.payload, "received_at": row.received_at})
        if int(row.seq) == key[1]:
            entry["chain_ok"] = row.chain_ok
    if ranges:
        bind.execute(sa.insert(gaps), list(ranges.values()))
    bind.execute(sa.delete(events).where(events.c.type.in_(["dropped", "lost"])))


def downgrade() -> None:
    op.drop_index("event_gaps_gateway_last", table_name="event_gaps")
    op.drop_table("event_gaps")
