"""What the journal stores and returns: its errors, the event to journal, a publishable
entry, the damage and reconcile reports, and the sealing of an event into its hash chain.

Shared by every part of the journal package (log, shedding, reconcile, salvage) so none of
them imports another for a type.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway import GatewayError
from homecall.clock import format_utc
from homecall.wire import (
    VITAL_TYPES,
    EventEnvelope,
    EventType,
    Severity,
    chain_hash,
    is_alert,
)

#: One row of the ``events`` table: seq, id, type, vital, alert, time, payload.
EventRow = tuple[int, str, str, int, int, str, bytes]


class JournalError(GatewayError):
    """The journal cannot be opened, read or written (any SQLite error ends up here)."""


class JournalNotOurs(JournalError):
    """The file is a sound journal that this gateway must not use (another gateway's, or a
    newer schema): refused as it is, never set aside as damaged."""


class JournalFull(JournalError):
    """The disk (or the journal's hard size cap) is full even after shedding telemetry."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to journal; the journal adds seq, id, hashes and boot/clock fields."""

    type: EventType
    time: datetime
    mono: float
    severity: Severity | None = None
    visit_id: str | None = None
    service_user_id: str | None = None
    carer_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One publishable item: an event, or a gap tombstone (``type == "gap"``, seq = last)."""

    seq: int
    type: str
    payload: bytes
    first_seq: int = 0

    @property
    def is_gap(self) -> bool:
        return self.type == "gap"


@dataclass(frozen=True, slots=True)
class Damage:
    """Why the journal file was replaced at open, and where the damaged copy is."""

    reason: str
    kept_as: str
    salvaged_last_seq: int
    recovered: int = 0


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What :meth:`Journal.reconcile` did with central's position."""

    shifted_by: int  # provisional events renumbered by this much (0: nothing to fix)
    lost: list[tuple[int, int]]  # seq ranges neither journal nor central holds


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Engine state values to store, covering every engine input numbered <= ``upto``."""

    values: dict[str, str]
    upto: int


def seal(body: dict[str, Any], prev_hash: str) -> EventEnvelope:
    """Chain an event body to ``prev_hash`` and validate it, in one pass.

    The body is built from JSON-native values in the wire's own forms (``format_utc`` times,
    enum values), so hashing it directly gives what central recomputes from the parsed
    envelope (``EventEnvelope.expected_hash``); central rejects any event where they differ,
    which the end-to-end tests would show.
    """
    full = {**body, "prev_hash": prev_hash}
    return EventEnvelope.model_validate({**full, "hash": chain_hash(prev_hash, full)})


def event_row(envelope: EventEnvelope) -> EventRow:
    return (
        envelope.seq,
        envelope.id,
        envelope.type.value,
        int(envelope.type in VITAL_TYPES),
        int(is_alert(envelope.type)),
        format_utc(envelope.time),
        envelope.to_bytes(),
    )


INSERT_EVENT = ("INSERT INTO events(seq, id, type, vital, alert, time, payload) "
                "VALUES(?, ?, ?, ?, ?, ?, ?)")


def runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of ``seqs`` as (first, last) pairs."""
    found: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if found and found[-1][1] == seq - 1:
            found[-1] = (found[-1][0], seq)
        else:
            found.append((seq, seq))
    return found


def is_full(err: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk, or the journal's ``max_page_count`` cap, has no room."""
    return getattr(err, "sqlite_errorcode", None) == 13 or "full" in str(err).lower()
