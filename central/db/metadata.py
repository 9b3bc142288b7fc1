"""The one SQLAlchemy ``MetaData`` that every central table belongs to.

Constraint names follow one convention so that migrations can name them on SQLite and
PostgreSQL alike. Tables are defined next to the code that owns them (``central/db/tables.py``
for the event record and its projections, ``central/people/tables.py``,
``central/auth/tables.py`` …); :mod:`central.db.schema` imports them all.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: A 64-bit integer key that is still SQLite's rowid alias (``INTEGER PRIMARY KEY``).
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
