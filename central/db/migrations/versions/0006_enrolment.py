"""Gateway enrolment: one-time enrolment codes (stored hashed) and the certificates issued.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_codes",
        sa.Column("code_hash", sa.Text, nullable=False),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("used_at", sa.Text),
        sa.PrimaryKeyConstraint("code_hash", name="pk_enrolment_codes"),
    )
    op.create_table(
        "gateway_certificates",
        sa.Column("serial", sa.Text, nullable=False),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("issued_at", sa.Text, nullable=False),
        sa.Column("not_after", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Text),
        sa.PrimaryKeyConstraint("serial", name="pk_gateway_certificates"),
    )
    op.create_index("gateway_certificates_gateway", "gateway_certificates", ["gateway_id"])


def downgrade() -> None:
    op.drop_table("gateway_certificates")
    op.drop_table("enrolment_codes")
