"""The whole of central's schema: imports every module that defines tables, so that
:data:`~central.db.metadata.metadata` is complete (for the migration check and tests).
A part of central that adds tables adds its module here."""

from __future__ import annotations

import central.auth.tables  # (staff accounts, sessions, login failures)
import central.db.tables  # (the event record and projections)
import central.people.tables  # noqa: F401  (organisations, households, people)
from central.db.metadata import metadata

__all__ = ["metadata"]
