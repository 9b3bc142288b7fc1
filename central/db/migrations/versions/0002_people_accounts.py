"""People and accounts: organisations, households, service users, carers and their tags;
staff users, sessions/bearer tokens (hashed) and failed login attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
        sa.UniqueConstraint("name", name="uq_organisations_name"),
    )
    op.create_table(
        "households",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("key_safe_notes", sa.Text, nullable=False, server_default=""),
        sa.Column("access_notes", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_households"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_households_organisation_id_organisations"),
        sa.UniqueConstraint("gateway_id", name="uq_households_gateway_id"),
    )
    op.create_index("ix_households_organisation_id", "households", ["organisation_id"])
    op.create_table(
        "service_users",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("date_of_birth", sa.Text, nullable=False),
        sa.Column("next_of_kin", sa.Text, nullable=False, server_default="[]"),
        sa.Column("risk_notes", sa.Text, nullable=False, server_default=""),
        sa.Column("medication", sa.Text, nullable=False, server_default=""),
        sa.Column("lives_alone", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_service_users"),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"],
                                name="fk_service_users_household_id_households"),
    )
    op.create_index("ix_service_users_household_id", "service_users", ["household_id"])
    op.create_table(
        "carers",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_carers"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_carers_organisation_id_organisations"),
    )
    op.create_index("ix_carers_organisation_id", "carers", ["organisation_id"])
    op.create_table(
        "carer_tags",
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("carer_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tag", name="pk_carer_tags"),
        sa.ForeignKeyConstraint(["carer_id"], ["carers.id"], ondelete="CASCADE",
                                name="fk_carer_tags_carer_id_carers"),
    )
    op.create_index("ix_carer_tags_carer_id", "carer_tags", ["carer_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("organisation_id", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_users_organisation_id_organisations"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_index("ix_users_organisation_id", "users", ["organisation_id"])
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_sessions_user_id_users"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", _ROWID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_login_failures_key", "login_failures", ["key"])


def downgrade() -> None:
    for name in ("login_failures", "sessions", "users", "carer_tags", "carers",
                 "service_users", "households", "organisations"):
        op.drop_table(name)
