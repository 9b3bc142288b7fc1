"""The journal on its own, on real SQLite files: privacy of its files, schema migrations,
shedding at the disk budget, reconciling with central's position, failed writes that change
nothing, and the ``homecall gateway journal`` support command."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.delivery.journal import Journal, JournalError, NewEvent
from gateway.delivery.journal.schema import SCHEMA_VERSION
from gateway.journal_cli import verify
from homecall.cli import main
from homecall.clock import ManualClock
from homecall.wire import ALERT_SEVERITY, EventGap, EventType

GW = "gw-journal-1"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def battery(i: int) -> NewEvent:
    return NewEvent(EventType.BATTERY, T0 + timedelta(seconds=i), float(i), data={"mv": 3000 + i})


def alert(i: int) -> NewEvent:
    return NewEvent(EventType.UNKNOWN_TAG, T0 + timedelta(seconds=i), float(i),
                    severity=ALERT_SEVERITY[EventType.UNKNOWN_TAG],
                    data={"tag": f"em4100:#{i:012x}", "pad": "x" * 200})


def open_journal(path: Path, **kwargs: object) -> Journal:
    return Journal(path, GW, "b" * 32, clock=ManualClock(T0), **kwargs)  # type: ignore[arg-type]


def held(path: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    try:
        return [json.loads(p) for (p,) in conn.execute("SELECT payload FROM events ORDER BY seq")]
    finally:
        conn.close()


def test_journal_files_are_readable_by_the_gateway_only(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    for path in (tmp_path / "new.db", old):
        journal = open_journal(path)
        journal.append([battery(1)], clock_ok=True)
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(Path(str(path) + suffix).stat().st_mode)
            assert mode == 0o600, (path.name + suffix, oct(mode))
        journal.close()


def test_a_journal_from_before_versioned_schemas_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v0.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,
            vital INTEGER NOT NULL, time TEXT NOT NULL, payload BLOB NOT NULL);
        CREATE TABLE gaps (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
            payload BLOB NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('gateway_id', 'gw-journal-1');
    """)
    conn.close()
    journal = open_journal(path)
    assert journal.damage is None
    journal.append([alert(1)], clock_ok=True)
    journal.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT type, alert FROM events").fetchall() == [("unknown_tag", 1)]
    assert conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 0
    conn.close()


def test_a_journal_from_a_newer_gateway_is_refused_not_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_journal(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(JournalError, match="newer than this gateway"):
        open_journal(path)
    assert sorted(p.name for p in tmp_path.iterdir() if "damaged" in p.name) == []


def test_shedding_drops_telemetry_oldest_first_keeps_alerts_and_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = open_journal(path, budget_bytes=64 * 1024)
    alerts = 0
    for i in range(0, 1200, 10):
        journal.append([battery(i + k) for k in range(9)] + [alert(i + 9)], clock_ok=True)
        alerts += 1
    assert journal.shed_total > 0
    events = held(path)
    assert sum(e["type"] == "unknown_tag" for e in events) == alerts  # never shed
    reports = [e for e in events if e["type"] == "events_dropped"]
    assert len(reports) == 1  # earlier unsent reports are folded into the newest
    conn = sqlite3.connect(path)
    gaps = [EventGap.from_bytes(p) for (p,) in conn.execute("SELECT payload FROM gaps")]
    assert verify(conn) == []  # the chain still links across every gap
    conn.close()
    assert gaps and all(g.gap == "dropped" for g in gaps)
    tombstoned = sum(g.last_seq - g.first_seq + 1 for g in gaps)
    assert reports[0]["data"]["count"] == tombstoned
    assert all(e["type"] != "battery" or e["seq"] > max(g.last_seq for g in gaps)
               for e in events), "the oldest telemetry goes first"
    journal.close()


def test_a_failed_write_changes_nothing_and_numbering_continues(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.db")
    journal.append([battery(1)], clock_ok=True)
    journal._conn.execute("PRAGMA query_only=ON")
    with pytest.raises(JournalError, match="readonly"):
        journal.append([alert(2)], clock_ok=True, inputs=[(1, "{}")])
    assert (journal.last_seq, journal.inputs_after(0)) == (1, [])
    journal._conn.execute("PRAGMA query_only=OFF")
    [envelope] = journal.append([alert(2)], clock_ok=True)
    assert envelope.seq == 2
    journal.close()
    conn = sqlite3.connect(tmp_path / "j.db")
    assert verify(conn) == []
    conn.close()


def test_reconcile_renumbers_provisional_events_above_central(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = open_journal(path)  # a fresh journal: everything in it is provisional
    journal.append([alert(1), battery(2), alert(3)], clock_ok=True)
    assert journal.pending(0) == []  # nothing goes out before central's position is known
    journal._conn.set_authorizer(
        lambda action, *_: sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_DELETE
        else sqlite3.SQLITE_OK)
    with pytest.raises(JournalError):
        journal.reconcile(5, 10)  # a refused write: nothing changed, the next ack retries
    assert (journal.position_known, journal.last_seq) == (False, 3)
    journal._conn.set_authorizer(None)
    result = journal.reconcile(5, 10)
    assert (result.shifted_by, result.lost) == (10, [(6, 10)])
    assert [e["seq"] for e in held(path)] == [11, 12, 13]
    pending = journal.pending(5)
    assert [(e.first_seq, e.seq, e.type) for e in pending] == [
        (6, 10, "gap"), (11, 11, "unknown_tag"), (12, 12, "battery"), (13, 13, "unknown_tag")]
    journal.close()
    conn = sqlite3.connect(path)
    assert verify(conn) == []
    conn.close()


def test_journal_command_backlog_verify_export(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.db"
    journal = open_journal(path)
    journal.append([alert(1), battery(2), alert(3)], clock_ok=True)
    journal.close()
    assert main(["gateway", "journal", "backlog", str(path)]) == 0
    out = capsys.readouterr().out
    assert "backlog                        3" in out and "alerts                         2" in out
    assert main(["gateway", "journal", "verify", str(path)]) == 0
    assert "3 item(s) checked: chain ok" in capsys.readouterr().out
    assert main(["gateway", "journal", "export", str(path), "--after", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in lines] == [2, 3]
    # Tamper with one stored event: verify says where, and fails.
    conn = sqlite3.connect(path)
    body = json.loads(conn.execute("SELECT payload FROM events WHERE seq=2").fetchone()[0])
    body["data"]["mv"] = 1
    conn.execute("UPDATE events SET payload=? WHERE seq=2", (json.dumps(body).encode(),))
    conn.commit()
    conn.close()
    assert main(["gateway", "journal", "verify", str(path)]) == 1
    assert "BROKEN: seq 2: hash does not match" in capsys.readouterr().out


def test_an_ack_commits_without_its_fsync_and_leaves_the_journal_durable(tmp_path: Path) -> None:
    """Forgetting acked events may skip the fsync (a lost delete only means a resend that
    central stores once); every event commit after it is fully synchronous again."""
    journal = open_journal(tmp_path / "j.db")
    journal.append([battery(1), battery(2)], clock_ok=True)
    full = journal._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert full == 2  # FULL
    assert journal.mark_acked(1) == 1
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == full
    journal.close()


def test_an_event_is_not_committed_while_the_journal_cannot_be_made_durable_again(
    tmp_path: Path,
) -> None:
    journal = open_journal(tmp_path / "j.db")
    journal.append([battery(1), battery(2)], clock_ok=True)
    journal._conn.set_authorizer(
        lambda action, *_: sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_PRAGMA
        else sqlite3.SQLITE_OK)
    with pytest.raises(JournalError):
        journal.mark_acked(1)  # could not relax: nothing deleted, the next ack retries
    with pytest.raises(JournalError, match="restoring synchronous"):
        journal.append([alert(3)], clock_ok=True)  # never committed without its fsync
    assert journal.last_seq == 2
    journal._conn.set_authorizer(None)
    [envelope] = journal.append([alert(3)], clock_ok=True)
    assert envelope.seq == 3
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    journal.close()
