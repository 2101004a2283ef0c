"""Audience versions: every saved definition of an audience, numbered per audience.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audience_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("audience", sa.String(400), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("author", sa.String(320), nullable=True),
        sa.Column("saved_at", UTCDateTime, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.UniqueConstraint("audience", "version", name="uq_audience_versions_number"),
    )


def downgrade() -> None:
    op.drop_table("audience_versions")
