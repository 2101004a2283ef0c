"""Audience sizes: every measured size of an audience, with the definition it was
measured on, so the studio lists sizes across restarts and tells stale ones apart.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audience_sizes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("audience", sa.String(400), nullable=False),
        sa.Column("definition_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("parent_rows", sa.BigInteger, nullable=False),
        sa.Column("as_of", UTCDateTime, nullable=False),
        sa.Column("measured_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_audience_sizes_latest", "audience_sizes", ["audience", "measured_at"])


def downgrade() -> None:
    op.drop_index("ix_audience_sizes_latest", table_name="audience_sizes")
    op.drop_table("audience_sizes")
