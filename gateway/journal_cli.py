"""``homecall gateway journal``: read a gateway's journal for support, without changing it.

* ``backlog`` — what the journal holds: how far central has acknowledged, how many events
  and gaps wait, how many of them are alerts, the oldest and newest, the schema version.
* ``verify`` — walk the hash chain of every held event and gap tombstone: each event's hash
  must match its body, each link must name the previous hash (a ``lost`` gap is the only
  place the chain may break), and the newest must match the recorded head. Exit 1 if not.
* ``export`` — the held events (and gap tombstones) as JSON lines, exactly as published.

The journal is opened read-only, so this is safe beside a running daemon.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from homecall.wire import EventEnvelope, EventGap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["backlog", "verify", "export"])
    parser.add_argument("journal", type=Path, help="the gateway's journal SQLite file")
    parser.add_argument("--after", type=int, default=0, metavar="SEQ",
                        help="export: only seqs above this")


def open_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"no journal at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def backlog(conn: sqlite3.Connection) -> dict[str, Any]:
    meta = _meta(conn)
    count, alerts, first, last, oldest, newest = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(alert), 0), MIN(seq), MAX(seq), MIN(time), MAX(time) "
        "FROM events").fetchone()
    gaps = conn.execute("SELECT COUNT(*), COALESCE(SUM(last_seq - first_seq + 1), 0) "
                        "FROM gaps").fetchone()
    last_seq, acked = int(meta.get("last_seq", 0)), int(meta.get("acked_seq", 0))
    return {
        "gateway_id": meta.get("gateway_id"),
        "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
        "last_seq": last_seq, "acked_seq": acked, "backlog": last_seq - acked,
        "events": count, "alerts": alerts, "first_seq": first, "newest_seq": last,
        "oldest_time": oldest, "newest_time": newest,
        "gaps": gaps[0], "seqs_in_gaps": gaps[1],
        "engine_inputs_since_snapshot": conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0],
    }


def _items(conn: sqlite3.Connection, after: int = 0) -> list[tuple[int, str, bytes]]:
    """Held events and gaps in seq order, as (first seq, kind, payload)."""
    rows = [(int(s), "event", bytes(p)) for s, p in
            conn.execute("SELECT seq, payload FROM events WHERE seq > ?", (after,))]
    rows += [(int(s), "gap", bytes(p)) for s, p in
             conn.execute("SELECT first_seq, payload FROM gaps WHERE last_seq > ?", (after,))]
    return sorted(rows)


def verify(conn: sqlite3.Connection) -> list[str]:
    """Every problem found in the held chain (empty: the chain is sound)."""
    problems: list[str] = []
    previous: str | None = None  # hash the next item must name; None: unknown (start, lost)
    expected_seq: int | None = None
    for first, kind, payload in _items(conn):
        if kind == "gap":
            gap = EventGap.from_bytes(payload)
            if gap.gap == "dropped" and previous is not None and gap.prev_hash != previous:
                problems.append(f"gap {gap.first_seq}..{gap.last_seq} does not link to seq "
                                f"{first - 1}")
            previous = gap.hash  # None after a lost gap: the chain restarts
            expected_seq = gap.last_seq + 1
            continue
        try:
            event = EventEnvelope.from_bytes(payload)
        except ValueError as err:
            problems.append(f"seq {first}: unreadable: {err}")
            previous, expected_seq = None, first + 1
            continue
        if not event.verify_hash():
            problems.append(f"seq {first}: hash does not match the event's body")
        if expected_seq is not None and first != expected_seq:
            problems.append(f"seqs {expected_seq}..{first - 1} missing with no gap tombstone")
        elif previous is not None and event.prev_hash != previous:
            problems.append(f"seq {first}: prev_hash does not name seq {first - 1}'s hash")
        previous, expected_seq = event.hash, first + 1
    meta = _meta(conn)
    newest = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    if newest is not None and int(newest) == int(meta.get("last_seq", 0)):
        head = EventEnvelope.from_bytes(bytes(conn.execute(
            "SELECT payload FROM events WHERE seq=?", (newest,)).fetchone()[0])).hash
        if head != meta.get("head_hash"):
            problems.append(f"newest seq {newest} does not match the recorded head")
    return problems


def run(args: argparse.Namespace) -> int:
    try:
        conn = open_read_only(args.journal)
        if args.action == "backlog":
            for key, value in backlog(conn).items():
                print(f"{key:30} {value}")
            return 0
        if args.action == "verify":
            problems = verify(conn)
            count = len(_items(conn))
            for problem in problems:
                print(f"BROKEN: {problem}")
            print(f"{count} item(s) checked: " + ("chain broken" if problems else "chain ok"))
            return 1 if problems else 0
        out = sys.stdout
        for _, _, payload in _items(conn, args.after):
            out.write(json.dumps(json.loads(payload), separators=(",", ":")) + "\n")
        return 0
    except (OSError, sqlite3.Error) as err:
        print(f"homecall gateway journal: {args.journal}: {err}", file=sys.stderr)
        return 2
