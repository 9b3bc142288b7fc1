"""Tables for the people and homes central knows: organisations, households (each with one
gateway), the service users who live there, and the carers who visit with their tags.

Ids are opaque text (``org-…``, ``hh-…``, ``su-…``, ``c-…``); service-user and carer ids are
what plans and the gateway use, so they carry no personal data. Next of kin are stored as a
JSON list on the service user (they are always read and written with it).
"""

from __future__ import annotations

import sqlalchemy as sa

from central.db.metadata import metadata

organisations = sa.Table(
    "organisations", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.Text, nullable=False),
)

households = sa.Table(
    "households", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("organisations.id"), nullable=False,
              index=True),
    sa.Column("gateway_id", sa.Text, nullable=False, unique=True),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("key_safe_notes", sa.Text, nullable=False, server_default=""),
    sa.Column("access_notes", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Text, nullable=False),
)

service_users = sa.Table(
    "service_users", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("household_id", sa.Text, sa.ForeignKey("households.id"), nullable=False,
              index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("date_of_birth", sa.Text, nullable=False),
    sa.Column("next_of_kin", sa.Text, nullable=False, server_default="[]"),
    sa.Column("risk_notes", sa.Text, nullable=False, server_default=""),
    sa.Column("medication", sa.Text, nullable=False, server_default=""),
    sa.Column("lives_alone", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Text, nullable=False),
    # retention: the day care ended (data kept for the retention period from then), and
    # when the record was erased (kept as a stub with no personal details)
    sa.Column("care_ended_on", sa.Text),
    sa.Column("erased_at", sa.Text),
)

carers = sa.Table(
    "carers", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("organisations.id"), nullable=False,
              index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)

#: One row per physical tag; a tag has one holder.
carer_tags = sa.Table(
    "carer_tags", metadata,
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Column("carer_id", sa.Text, sa.ForeignKey("carers.id", ondelete="CASCADE"),
              nullable=False, index=True),
)
