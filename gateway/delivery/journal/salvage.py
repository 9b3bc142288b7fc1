"""Salvage of a damaged journal file: set it aside, find what is still intact in its raw
bytes, and seed the new journal with it.

A journal that fails SQLite's integrity check (or whose head does not match its newest row)
at open is renamed aside with its WAL and SHM (kept for inspection). Its raw pages are then
searched for event JSON and gap tombstones of this gateway; each event is parsed and its hash
verified, so nothing garbled is ever re-published. The new journal gets those events
unchanged (same seq, same hash: central stores each once whether or not it had it) and
continues numbering after the highest seq the damaged file shows.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.delivery.journal.records import INSERT_EVENT, Damage, event_row
from gateway.delivery.journal.transaction import transaction
from homecall.wire import GENESIS_HASH, EventEnvelope, EventGap

log = logging.getLogger(__name__)

_PAYLOAD_RE = re.compile(rb'\{"v":1,"id":"[0-9a-f]{1,64}","gateway_id":"([a-z0-9-]{3,64})",'
                         rb'"seq":(\d+),.*?"hash":"[0-9a-f]{64}"\}', re.DOTALL)
_GAP_RE = re.compile(rb'\{"v":1,"gap":"(?:dropped|lost)","gateway_id":"([a-z0-9-]{3,64})",'
                     rb'"first_seq":\d+,.*?"reason":"[^"\\]*"\}', re.DOTALL)


@dataclass(frozen=True, slots=True)
class SetAside:
    """A damaged journal renamed aside, and the intact events found in it."""

    damage: Damage
    kept_path: Path
    events: list[EventEnvelope]


def set_aside(path: Path, gateway_id: str, reason: str) -> SetAside:
    """Rename the damaged journal (and its WAL/SHM) aside; salvage what is readable."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    salvaged_last = salvage_last_seq(path)
    events = salvage_events(path, gateway_id)
    if events:
        salvaged_last = max(salvaged_last, events[-1].seq)
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(kept) + suffix))
    log.error("journal %s is damaged (%s): kept as %s, starting a new journal after seq %d",
              path, reason, kept, salvaged_last)
    damage = Damage(reason=reason, kept_as=kept.name, salvaged_last_seq=salvaged_last,
                    recovered=len(events))
    return SetAside(damage, kept, events)


def adopt_salvage(conn: sqlite3.Connection, aside: SetAside, gateway_id: str) -> tuple[int, str]:
    """Put the salvaged events and gaps into the new journal; returns its (last_seq, head)."""
    last_seq = aside.damage.salvaged_last_seq
    events = aside.events
    head = GENESIS_HASH
    if events and events[-1].seq == last_seq:
        head = events[-1].hash  # the chain continues unbroken
    with transaction(conn, "salvage"):
        conn.executemany(INSERT_EVENT.replace("INSERT", "INSERT OR IGNORE", 1),
                         [event_row(e) for e in events])
        held = {e.seq for e in events}
        for gap in salvage_gaps(aside.kept_path, gateway_id):
            if not held & set(range(gap.first_seq, gap.last_seq + 1)):
                conn.execute(
                    "INSERT OR IGNORE INTO gaps(first_seq, last_seq, payload) VALUES(?, ?, ?)",
                    (gap.first_seq, gap.last_seq, gap.to_bytes()),
                )
                held.update(range(gap.first_seq, gap.last_seq + 1))
                last_seq = max(last_seq, gap.last_seq)
        for key, value in (("last_seq", str(last_seq)), ("head_hash", head)):
            conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))
    if events:
        log.warning("recovered %d intact events (seq %d..%d) from the damaged journal",
                    len(events), events[0].seq, events[-1].seq)
    return last_seq, head


def salvage_events(path: Path, gateway_id: str) -> list[EventEnvelope]:
    """Intact events found in the raw bytes of a damaged journal and its WAL, sorted by seq."""
    found: dict[int, EventEnvelope] = {}
    for raw in _raw_matches(path, _PAYLOAD_RE, gateway_id):
        try:
            envelope = EventEnvelope.from_bytes(raw)
        except ValueError:
            continue
        if envelope.verify_hash():
            found[envelope.seq] = envelope
    return [found[seq] for seq in sorted(found)]


def salvage_gaps(path: Path, gateway_id: str) -> list[EventGap]:
    """Gap tombstones found in the raw bytes of a damaged journal (and its WAL)."""
    found: dict[int, EventGap] = {}
    for raw in _raw_matches(path, _GAP_RE, gateway_id):
        try:
            gap = EventGap.from_bytes(raw)
        except ValueError:
            continue
        if gap.first_seq not in found or found[gap.first_seq].last_seq < gap.last_seq:
            found[gap.first_seq] = gap
    return [found[k] for k in sorted(found)]


def salvage_last_seq(path: Path) -> int:
    """Best effort: the highest seq a damaged journal recorded (0 if nothing is readable)."""
    best = 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        for sql in ("SELECT value FROM meta WHERE key='last_seq'", "SELECT MAX(seq) FROM events"):
            try:
                row = conn.execute(sql).fetchone()
                if row and row[0] is not None:
                    best = max(best, int(row[0]))
            except (sqlite3.Error, ValueError):
                continue
    finally:
        conn.close()
    return best


def _raw_matches(path: Path, pattern: re.Pattern[bytes], gateway_id: str) -> Iterator[bytes]:
    """Byte runs matching ``pattern`` for this gateway in a journal file and its WAL."""
    for suffix in ("", "-wal"):
        try:
            raw = Path(str(path) + suffix).read_bytes()
        except OSError:
            continue
        for match in pattern.finditer(raw):
            if match.group(1).decode() == gateway_id:
                yield match.group(0)
