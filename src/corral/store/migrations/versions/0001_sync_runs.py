"""Sync runs, their logs, schedule state and workers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sync_name", sa.String(400), nullable=False, index=True),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("scheduled_for", UTCDateTime, nullable=True),
        sa.Column("triggered_by", sa.String(36), nullable=True),
        sa.Column("queued_at", UTCDateTime, nullable=False, index=True),
        sa.Column("dispatched_at", UTCDateTime, nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("heartbeat_at", UTCDateTime, nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("rejected", sa.JSON, nullable=False),
        sa.Column("samples", sa.JSON, nullable=False),
        sa.UniqueConstraint("sync_name", "scheduled_for", name="uq_sync_runs_due"),
    )
    op.create_table(
        "sync_run_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(36),
            sa.ForeignKey("sync_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "sync_schedule_state",
        sa.Column("sync_name", sa.String(400), primary_key=True),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("next_due_at", UTCDateTime, nullable=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
        sa.Column("stopped_at", UTCDateTime, nullable=True),
        sa.Column("recovered_at", UTCDateTime, nullable=True),
        sa.Column("recovered_by", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("sync_schedule_state")
    op.drop_table("sync_run_logs")
    op.drop_table("sync_runs")
