"""A gateway's row in ``gateways``, created on first sight, and the dialect-neutral upsert.

This module owns :func:`ensure_gateway` (the row, made with a fresh tag salt the first time a
gateway is heard of, and locked for the transaction on PostgreSQL so two writers to one
gateway queue) and :func:`upsert` (``INSERT ... ON CONFLICT`` for SQLite and PostgreSQL alike),
which the event record and status storage share.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from central.db.tables import gateways


def upsert(conn: Connection, table: sa.Table) -> Any:
    """``INSERT`` with the dialect's ``ON CONFLICT`` clauses (SQLite and PostgreSQL alike)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def ensure_gateway(conn: Connection, gateway_id: str, *, lock: bool = False) -> Row[Any]:
    """The gateway's row, created (with a fresh tag salt) on first sight.

    ``lock`` takes the row for the rest of the transaction on PostgreSQL (``FOR UPDATE``), so
    two writers to one gateway queue; SQLite's write transactions are serial already.
    """
    query = sa.select(gateways).where(gateways.c.id == gateway_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        conn.execute(
            upsert(conn, gateways)
            .values(id=gateway_id, tag_salt=secrets.token_hex(16))
            .on_conflict_do_nothing(index_elements=[gateways.c.id])
        )
        row = conn.execute(query).one()
    return row


def ensure_gateways(conn: Connection, gateway_ids: list[str]) -> dict[str, Row[Any]]:
    """:func:`ensure_gateway` with ``lock`` for many gateways in one round trip (plus one for
    any seen for the first time). Rows are locked in id order, the one order every writer
    uses, so two batches sharing gateways queue instead of deadlocking."""
    ordered = sorted(set(gateway_ids))
    query = (sa.select(gateways).where(gateways.c.id.in_(ordered))
             .order_by(gateways.c.id).with_for_update())
    rows = {row.id: row for row in conn.execute(query)}
    new = [gateway_id for gateway_id in ordered if gateway_id not in rows]
    if new:
        conn.execute(
            upsert(conn, gateways)
            .values([{"id": gateway_id, "tag_salt": secrets.token_hex(16)} for gateway_id in new])
            .on_conflict_do_nothing(index_elements=[gateways.c.id]))
        rows.update((row.id, row) for row in conn.execute(
            sa.select(gateways).where(gateways.c.id.in_(new))
            .order_by(gateways.c.id).with_for_update()))
    return rows
