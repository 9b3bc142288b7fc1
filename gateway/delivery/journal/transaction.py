"""The journal's one way to write: :func:`transaction`, a ``BEGIN IMMEDIATE`` … ``COMMIT``
that rolls back on any error and turns every SQLite error into a :class:`JournalError`
(:class:`JournalFull` when the disk or the size cap is full), so no caller hand-writes a
transaction or sees a raw ``sqlite3`` exception.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from gateway.delivery.journal.records import JournalError, JournalFull, is_full


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """Run the block as one durable transaction; ``what`` names it in the error."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        kind = JournalFull if is_full(err) else JournalError
        raise kind(f"journal {what} failed: {type(err).__name__}: {err}") from err
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Translate an SQLite error raised by a read into a :class:`JournalError`."""
    try:
        yield
    except sqlite3.Error as err:
        raise JournalError(f"journal {what} failed: {type(err).__name__}: {err}") from err
