"""The whole of central's schema: imports every module that defines tables, so that
:data:`~central.db.metadata.metadata` is complete (for the migration check and tests).
A part of central that adds tables adds its module here."""

from __future__ import annotations

import central.db.tables  # noqa: F401  (the event record and projections)
from central.db.metadata import metadata

__all__ = ["metadata"]
