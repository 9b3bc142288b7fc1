"""The gateway's event journal: every event is committed here before it is published.

Read in this order: ``log`` (the journal itself: append, ack, read, engine snapshots),
``shedding`` (what goes when the disk budget is reached), ``reconcile`` (lining the journal
up with central's position after a start), ``salvage`` (recovering a damaged file),
``schema`` (versioned migrations), ``transaction`` (the one way to write), ``records`` (the
types they share). ``homecall gateway journal`` (``inspect``) reads a journal for support.
"""

from gateway.delivery.journal.log import Journal
from gateway.delivery.journal.records import (
    Damage,
    JournalEntry,
    JournalError,
    JournalFull,
    NewEvent,
    Reconciled,
    Snapshot,
)
from gateway.delivery.journal.shedding import SHED_RANK

__all__ = [
    "SHED_RANK",
    "Damage",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalFull",
    "NewEvent",
    "Reconciled",
    "Snapshot",
]
