"""The fault suite's database parameter: each case that takes ``central_db`` runs twice, with
central on an SQLite file (the default) and on a fresh PostgreSQL database of the session's
private server (``tests/conftest.py::postgres_server``; a missing PostgreSQL fails the run)."""

from __future__ import annotations

import pytest

from tests.support.postgres import PrivatePostgres


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest) -> str | None:
    """Central's database for a fault rig: None (the stack's SQLite file) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    server: PrivatePostgres = request.getfixturevalue("postgres_server")
    return server.new_database()
