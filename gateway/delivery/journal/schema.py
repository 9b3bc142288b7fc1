"""The journal's schema, as numbered migrations (``PRAGMA user_version`` records the last one
applied). A journal written by any earlier version is brought up to date at open, one step
per transaction; a journal from a newer version is refused rather than guessed at.

Tables (see docs/delivery.md): ``events`` (unacked events, the exact JSON published),
``gaps`` (tombstones for shed or lost seqs), ``meta`` (gateway id, counter, chain head, ack),
``state`` (engine snapshot and plan in force), ``inputs`` (engine inputs since the snapshot).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.delivery.journal.records import JournalNotOurs
from gateway.delivery.journal.transaction import transaction

if TYPE_CHECKING:  # imported only to migrate: a journal at the current schema never needs it
    import sqlite_utils


def _v1_tables(db: sqlite_utils.Database) -> None:
    """The tables as first released (journals from before versioning already have them)."""
    db["events"].create(  # type: ignore[union-attr]
        {"seq": int, "id": str, "type": str, "vital": int, "time": str, "payload": bytes},
        pk="seq", not_null={"id", "type", "vital", "time", "payload"}, if_not_exists=True,
    )
    db["gaps"].create(  # type: ignore[union-attr]
        {"first_seq": int, "last_seq": int, "payload": bytes},
        pk="first_seq", not_null={"last_seq", "payload"}, if_not_exists=True,
    )
    for name in ("meta", "state"):
        db[name].create({"key": str, "value": str}, pk="key",  # type: ignore[union-attr]
                        if_not_exists=True)
    db["inputs"].create({"n": int, "body": str}, pk="n",  # type: ignore[union-attr]
                        not_null={"body"}, if_not_exists=True)


def _v2_alerts_first(db: sqlite_utils.Database) -> None:
    """An ``alert`` flag and index, so unsent alerts can be published ahead of the backlog."""
    events = db.table("events")
    if "alert" not in events.columns_dict:
        events.add_column("alert", int, not_null_default=0)
    events.create_index(["alert", "seq"], index_name="events_alert", if_not_exists=True)


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1_tables,
    _v2_alerts_first,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this journal has not had yet; returns the version it is now at."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalNotOurs(
            f"journal schema version {version} is newer than this gateway's ({SCHEMA_VERSION})"
        )
    if version == SCHEMA_VERSION:
        return version
    import sqlite_utils  # ~4 MB of RSS (pluggy, csv, lzma...) a running gateway need not keep

    db = sqlite_utils.Database(conn)
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with transaction(conn, f"migration to schema {number}"):
            step(db)
            conn.execute(f"PRAGMA user_version={number}")
    return SCHEMA_VERSION
