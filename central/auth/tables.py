"""Tables for staff accounts: users (argon2 password hashes only), their sessions and bearer
tokens (stored as SHA-256 digests, never the token itself), and failed login attempts (for
throttling by user name and by client address)."""

from __future__ import annotations

import sqlalchemy as sa

from central.db.metadata import RowId, metadata

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    #: NULL only for an admin who spans every organisation.
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("organisations.id"), index=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.Text, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),  # "cookie" or "bearer"
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Text, nullable=False),
)

login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("key", sa.Text, nullable=False, index=True),  # "user:<name>" or "addr:<ip>"
    sa.Column("at", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)
