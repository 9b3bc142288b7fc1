"""Central's schema migrations on SQLite and PostgreSQL: from an empty database, and in
place from a database made by the store before migrations existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from central.db.engine import Database
from central.db.migrate import current_revision, head_revision, upgrade
from central.db.schema import metadata

# What the store created before migrations existed (kept verbatim: the upgrade must accept it).
_LEGACY_SCHEMA = """
CREATE TABLE events (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
  type TEXT NOT NULL, time TEXT NOT NULL, severity TEXT, visit_id TEXT, service_user_id TEXT,
  carer_id TEXT, clock_ok INTEGER NOT NULL, data TEXT NOT NULL, hash TEXT NOT NULL,
  prev_hash TEXT NOT NULL, chain_ok INTEGER, payload TEXT NOT NULL, received_at TEXT NOT NULL,
  PRIMARY KEY (gateway_id, seq));
CREATE INDEX events_visit ON events(gateway_id, visit_id);
CREATE TABLE gateways (id TEXT PRIMARY KEY, contiguous_seq INTEGER NOT NULL DEFAULT 0,
  max_seq INTEGER NOT NULL DEFAULT 0, tag_salt TEXT NOT NULL,
  plan_version INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'unknown', status TEXT,
  last_seen TEXT, chain_breaks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}');
INSERT INTO gateways(id, contiguous_seq, max_seq, tag_salt) VALUES ('gw-old-1', 7, 7, 'ab');
INSERT INTO events VALUES ('gw-old-1', 7, 'e7', 'arrival', '2026-03-02T08:00:00Z', NULL,
  'v-1', 'su-1', 'c-1', 1, '{}', 'h7', 'h6', 1, '{}', '2026-03-02T08:00:01Z');
INSERT INTO audit(at, who, action, target) VALUES ('2026-03-02T09:00:00Z', 'ann',
  'alert.acknowledged', 'alert:1');
INSERT INTO events VALUES ('gw-old-1', 8, 'dropped:gw-old-1:8', 'dropped',
  '2026-03-02T09:00:00Z', NULL, NULL, NULL, NULL, 0, '{}', '', 'h7', 1,
  '{"gap":"dropped","gateway_id":"gw-old-1","first_seq":8,"last_seq":9,"prev_hash":"h7","hash":"h9"}',
  '2026-03-02T09:00:00Z');
INSERT INTO events VALUES ('gw-old-1', 9, 'dropped:gw-old-1:9', 'dropped',
  '2026-03-02T09:00:00Z', NULL, NULL, NULL, NULL, 0, '{}', 'h9', '', 1,
  '{"gap":"dropped","gateway_id":"gw-old-1","first_seq":8,"last_seq":9,"prev_hash":"h7","hash":"h9"}',
  '2026-03-02T09:00:00Z');
"""


def test_empty_database_migrates_to_the_declared_schema(database_url: str) -> None:
    db = Database(database_url)
    assert current_revision(db) is None
    upgrade(db)
    assert current_revision(db) == head_revision()
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    upgrade(db)  # running it again changes nothing
    assert current_revision(db) == head_revision()
    db.dispose()


def test_database_from_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    conn = sqlite3.connect(path)
    conn.executescript(_LEGACY_SCHEMA)
    conn.close()
    db = Database(path)
    upgrade(db)
    assert current_revision(db) == head_revision()
    with db.read() as c:
        assert c.exec_driver_sql("SELECT seq, type FROM events").all() == [(7, "arrival")]
        # a gap's placeholder rows (one per seq, as stored before) folded into one range
        assert c.exec_driver_sql(
            "SELECT gateway_id, first_seq, last_seq, gap, prev_hash, hash, chain_ok "
            "FROM event_gaps").all() == [("gw-old-1", 8, 9, "dropped", "h7", "h9", 1)]
        assert c.exec_driver_sql("SELECT contiguous_seq FROM gateways").scalar() == 7
        assert c.exec_driver_sql("SELECT who FROM audit").scalar() == "ann"
        # tables the old store lacked were created
        assert c.exec_driver_sql("SELECT COUNT(*) FROM plans").scalar() == 0
    db.dispose()


def test_unopenable_database_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    try:
        Database(blocker / "central.db")
    except Exception as err:
        assert str(blocker / "central.db") in str(err)
        assert "Traceback" not in str(err)
    else:
        raise AssertionError("opening a database under a file should fail")
