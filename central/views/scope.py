"""The one filter every read model shares: WHERE clauses that limit a gateway-id column to
one gateway and/or the set of gateways the caller may see (``gateways``: ``None`` = all),
the hook organisation scoping uses to show staff only their own households' gateways.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa


def scoped(column: sa.ColumnElement[Any], gateway_id: str | None,
           gateways: Collection[str] | None) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses limiting ``column`` (a gateway id) to one gateway and/or a set."""
    clauses: list[sa.ColumnElement[bool]] = []
    if gateway_id:
        clauses.append(column == gateway_id)
    if gateways is not None:
        clauses.append(column.in_(sorted(gateways)))
    return clauses
