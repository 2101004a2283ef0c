"""The metadata store's tables, as SQLAlchemy declarative models.

Every timestamp is stored as a naive UTC value and read back as an aware UTC datetime,
so SQLite (which has no time zones) and PostgreSQL hold and return the same thing.
The migrations in `migrations/versions/` create these tables; a change here needs a new
revision there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Alembic's bookkeeping table, named so that it never meets a user's own Alembic table.
VERSION_TABLE = "corral_alembic_version"


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp without time zone that always holds UTC."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class SyncRunRow(Base):
    __tablename__ = "sync_runs"
    # A scheduled due time is enqueued once, however many workers see it.
    __table_args__ = (sa.UniqueConstraint("sync_name", "scheduled_for", name="uq_sync_runs_due"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    sync_name: Mapped[str] = mapped_column(sa.String(400), index=True)
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    trigger: Mapped[str] = mapped_column(sa.String(16))
    dry_run: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    triggered_by: Mapped[str | None] = mapped_column(sa.String(36))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str | None] = mapped_column(sa.String(200))
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    timings: Mapped[dict[str, float]] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    samples: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class SyncRunLogRow(Base):
    __tablename__ = "sync_run_logs"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[int] = mapped_column(sa.Integer)
    message: Mapped[str] = mapped_column(sa.Text)


class SyncScheduleStateRow(Base):
    __tablename__ = "sync_schedule_state"

    sync_name: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    schedule: Mapped[str] = mapped_column(sa.Text)  # the schedule it was computed for
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: a run is out
    last_run_id: Mapped[str | None] = mapped_column(sa.String(36))
    version: Mapped[int] = mapped_column(sa.Integer)  # bumped by every change (compare-and-set)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_by: Mapped[str | None] = mapped_column(sa.String(200))


class AudienceSizeRow(Base):
    __tablename__ = "audience_sizes"
    __table_args__ = (sa.Index("ix_audience_sizes_latest", "audience", "measured_at"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    audience: Mapped[str] = mapped_column(sa.String(400))
    definition_hash: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    parent_rows: Mapped[int] = mapped_column(sa.BigInteger)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(16))  # studio, cli, demo, sync
