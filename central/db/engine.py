"""Connections to central's database, SQLite or PostgreSQL, from one URL.

:class:`Database` owns a pooled SQLAlchemy engine. Every caller takes a connection for one
unit of work and gives it back: ``with db.write() as conn`` runs a write transaction
(``BEGIN IMMEDIATE`` on SQLite, so two writers queue instead of deadlocking on a lock
upgrade), ``with db.read() as conn`` a read-only one. HTTP handlers and ingest therefore
never share a connection. SQLite runs in WAL mode with ``synchronous=FULL`` (an acked event
survives a power cut) and enforces foreign keys; the database file is created 0600.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central import CentralError

_WRITE = "homecall_write"


class DatabaseError(CentralError):
    """The database cannot be opened or used."""


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL from either a URL or a path to an SQLite file."""
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text)}"


def _sqlite_file(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with central's connection settings applied."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
            except OSError as err:
                reason = err.strerror
                if isinstance(err, FileExistsError):  # mkdir met a file on the way
                    reason = "a parent of it is a file, not a directory"
                raise DatabaseError(f"cannot open database file {path}: {reason}") from err
        engine = sa.create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN, not pysqlite's
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(_WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    raise DatabaseError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


class Database:
    """A pooled engine and the two ways central uses it: write and read transactions."""

    def __init__(self, url: str | Path, **engine_kwargs: Any) -> None:
        self.url = database_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.dialect = self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def describe(self) -> str:
        """The URL without its password, for start-up lines and logs."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def check(self) -> None:
        """Open one connection now, so a bad URL or path is one clear error at start-up."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.SQLAlchemyError as err:
            reason = getattr(err, "orig", None) or err
            raise DatabaseError(f"cannot open database {self.describe()}: {reason}") from err

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot on both engines)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
