"""Schema migrations (Alembic), run on ``central serve`` start and by
``homecall central migrate``. A database made before migrations existed (tables but no
``alembic_version``) is upgraded in place: the first revision creates only what is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from central.db.engine import Database

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision`` (the newest by default). On
    PostgreSQL a transaction-scoped advisory lock serialises processes that start together
    (several ingest workers): the second waits, then finds the schema current."""
    config = _config(db)
    with db.engine.begin() as conn:
        if not db.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


#: The advisory lock key that serialises migrations ("HCmigrat" as ASCII).
_MIGRATION_LOCK = 0x48436D6967726174


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(_SCRIPTS)).get_current_head()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None,
                        help="database URL or SQLite path (default: the settings' database)")


def run(args: argparse.Namespace) -> int:
    """``homecall central migrate``: upgrade the database and say where it stands."""
    from central.settings import CentralSettings

    settings = CentralSettings()
    db = Database(args.db or settings.database_url)
    db.check()
    before = current_revision(db)
    upgrade(db)
    after = current_revision(db)
    print(f"database {db.describe()}: schema {before or 'empty'} -> {after}")
    db.dispose()
    return 0
