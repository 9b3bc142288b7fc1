"""Which process runs the time-based jobs (gateway liveness, backup alerts, escalation,
webhook retries): exactly one at a time, chosen by the database itself so it needs no
coordinator of our own. On PostgreSQL the leader holds a session advisory lock on a
connection it keeps open; if the process dies, PostgreSQL drops the connection and the lock
with it, and another worker takes the lead on its next try (every ``RETRY_S``). On SQLite
(one machine) the leader holds an exclusive ``flock`` on a file beside the database, which
the kernel releases when the process dies."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from central.db.engine import Database

log = logging.getLogger(__name__)

#: The advisory lock's key ("HomeCall" as ASCII, fits a bigint).
LOCK_KEY = 0x486F6D6543616C6C
RETRY_S = 5.0


class JobsLeader:
    def __init__(self, db: Database, name: str = "central") -> None:
        self.db = db
        self.name = name
        self._conn: Any = None
        self._fd: int | None = None

    @property
    def leading(self) -> bool:
        return self._conn is not None or self._fd is not None

    def check(self) -> bool:
        """Whether this process leads now: takes the lead if it is free, notices if it was
        lost (a dropped PostgreSQL connection)."""
        if self.db.is_sqlite:
            return self._check_file()
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.DBAPIError:
                log.warning("%s: lost the jobs lead (database connection dropped)", self.name)
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
        conn = self.db.engine.connect()
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                {"key": LOCK_KEY}).scalar())
        conn.commit()
        if got:
            self._conn = conn
            log.info("%s: took the jobs lead", self.name)
            return True
        conn.close()
        return False

    def _check_file(self) -> bool:
        if self._fd is not None:
            return True
        path = Path(self.db.engine.url.database or "central.db").with_suffix(".jobs.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("%s: took the jobs lead", self.name)
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": LOCK_KEY})
                self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
