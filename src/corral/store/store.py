"""The metadata store: sync runs, their logs, schedule state, live workers and the
measured sizes of audiences.

A `Store` wraps one SQLAlchemy engine on a SQLite file (the default, one machine) or a
PostgreSQL database (many workers on many machines). Every method is one short
transaction, so a `Store` may be shared by threads. Runs are never deleted: their rows
are the history that `corral sync status` and the studio show.

    store = Store("sqlite:///warehouse/.corral/metadata.db")
    store.upgrade()
    run_id = store.enqueue_run("VIPs to CRM", Trigger.MANUAL)
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from corral.activation.runs import RejectedRow, RunCounts, RunReport, RunStatus
from corral.errors import ConfigurationError, InternalError
from corral.store.models import (
    VERSION_TABLE,
    SyncRunLogRow,
    SyncRunRow,
    SyncScheduleStateRow,
    WorkerRow,
)
from corral.store.records import (
    LogLine,
    RunRecord,
    ScheduleState,
    Trigger,
    WorkerRecord,
)

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Statuses in which a run still holds its sync.
ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
# Follow-up runs start only after the sync they follow delivered.
_DELIVERED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)


def default_store_url(workspace: Path) -> str:
    """The SQLite file a workspace uses when corral.yaml sets no `metadata:` URL."""
    return f"sqlite:///{(workspace / '.corral' / 'metadata.db').resolve()}"


def normalize_url(url: str) -> str:
    """Point PostgreSQL URLs at psycopg 3, the driver Corral installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        try:
            parsed = sa.engine.make_url(self.url)
        except sa.exc.ArgumentError as error:
            raise ConfigurationError(
                f"the metadata store URL {url!r} does not parse: {error}",
                hint="write `metadata: sqlite:///path/metadata.db` or "
                "`metadata: postgresql+psycopg://user@host/db` in corral.yaml",
            ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigurationError(
                f"the metadata store must be SQLite or PostgreSQL, not {self.dialect!r}",
                hint="use a sqlite:/// file or a postgresql+psycopg:// URL",
            )
        self.engine = self._create_engine(parsed)

    def _create_engine(self, url: sa.URL) -> sa.Engine:
        if self.dialect != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        options: dict[str, Any] = {}
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            # One in-memory database shared by every connection and thread.
            options["poolclass"] = sa.pool.StaticPool
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **options
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            # WAL lets readers (the studio) go on while a worker writes; foreign keys are
            # off by default in SQLite.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # Migrations

    def upgrade(self, revision: str = "head") -> None:
        """Create or migrate the tables; safe to call on every start."""
        from alembic import command

        with self.engine.begin() as connection:
            command.upgrade(self._alembic_config(connection), revision)

    def downgrade(self, revision: str = "base") -> None:
        from alembic import command

        with self.engine.begin() as connection:
            command.downgrade(self._alembic_config(connection), revision)

    def revision(self) -> str | None:
        """The migration the database is at, or None before the first `upgrade()`."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()

    def _alembic_config(self, connection: sa.Connection) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        return config

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as connection:
            yield connection

    # Runs: enqueue, start, progress, finish

    def enqueue_run(
        self,
        sync: str,
        trigger: Trigger | str = Trigger.MANUAL,
        *,
        dry_run: bool = False,
        triggered_by: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """Queue a run of `sync`; a worker picks it up. Returns the run id."""
        with self._transaction() as connection:
            return self._insert_run(
                connection, sync, Trigger(trigger), dry_run, now or _now(), None, triggered_by
            )

    def retry_run(self, run_id: str, *, now: datetime | None = None) -> str:
        """Queue a new run of a finished run's sync, with the same dry-run setting."""
        record = self._require(run_id)
        with self._transaction() as connection:
            return self._insert_run(
                connection, record.sync, Trigger.RETRY, record.dry_run, now or _now(), None, run_id
            )

    def _insert_run(
        self,
        connection: sa.Connection,
        sync: str,
        trigger: Trigger,
        dry_run: bool,
        now: datetime,
        scheduled_for: datetime | None,
        triggered_by: str | None,
    ) -> str:
        run_id = str(uuid.uuid4())
        connection.execute(
            sa.insert(SyncRunRow).values(
                id=run_id,
                sync_name=sync,
                status=RunStatus.QUEUED.value,
                trigger=trigger.value,
                dry_run=dry_run,
                scheduled_for=scheduled_for,
                triggered_by=triggered_by,
                queued_at=now,
                attempt=0,
                counts=RunCounts().to_dict(),
                timings={},
                rejected=[],
                samples={},
            )
        )
        logger.info("run %s of sync %r queued (%s)", run_id, sync, trigger.value)
        return run_id

    def start(
        self, run_id: str, worker_id: str, *, now: datetime | None = None
    ) -> RunRecord | None:
        """Mark a run as running on `worker_id` and count the attempt.

        A run that is already running (its worker died) starts again as the next attempt.
        Returns None when the run has finished or was canceled: there is nothing to do.
        """
        now = now or _now()
        with self._transaction() as connection:
            result = connection.execute(
                sa.update(SyncRunRow)
                .where(SyncRunRow.id == run_id, SyncRunRow.status.in_(ACTIVE))
                .values(
                    status=RunStatus.RUNNING.value,
                    worker_id=worker_id,
                    started_at=now,
                    heartbeat_at=now,
                    attempt=SyncRunRow.attempt + 1,
                )
            )
            if result.rowcount == 0:
                return None
        return self._require(run_id)

    def record_progress(self, report: RunReport, *, now: datetime | None = None) -> None:
        """Save a running run's counts and timings so far; also a heartbeat."""
        with self._transaction() as connection:
            connection.execute(
                sa.update(SyncRunRow)
                .where(SyncRunRow.id == report.run_id)
                .values(
                    counts=report.counts.to_dict(),
                    timings=dict(report.timings),
                    heartbeat_at=now or _now(),
                )
            )

    def heartbeat_runs(self, worker_id: str, *, now: datetime | None = None) -> None:
        """Touch every run that `worker_id` is running."""
        with self._transaction() as connection:
            connection.execute(
                sa.update(SyncRunRow)
                .where(
                    SyncRunRow.worker_id == worker_id,
                    SyncRunRow.status == RunStatus.RUNNING.value,
                )
                .values(heartbeat_at=now or _now())
            )

    def append_log(
        self, run_id: str, level: int, message: str, *, at: datetime | None = None
    ) -> None:
        with self._transaction() as connection:
            connection.execute(
                sa.insert(SyncRunLogRow).values(
                    run_id=run_id, at=at or _now(), level=level, message=message
                )
            )

    def finish(self, report: RunReport, *, followers: Sequence[str] = ()) -> list[str]:
        """Record a run's outcome; queue a run of each follower when it delivered.

        `followers` are the syncs scheduled `after:` this one
        (`corral.activation.schedules.followers`). A follower that already has a queued
        run gets no second one. Returns the ids of the follow-up runs.
        """
        if not report.status.finished:
            raise InternalError(
                f"run {report.run_id} of sync {report.sync!r} was finished with status "
                f"{report.status.value!r}; finish() needs a final status"
            )
        finished_at = report.finished_at or _now()
        with self._transaction() as connection:
            connection.execute(
                sa.update(SyncRunRow)
                .where(SyncRunRow.id == report.run_id)
                .values(
                    status=report.status.value,
                    started_at=report.started_at or SyncRunRow.started_at,
                    finished_at=finished_at,
                    heartbeat_at=finished_at,
                    counts=report.counts.to_dict(),
                    timings=dict(report.timings),
                    error=report.error,
                    rejected=[asdict(row) for row in report.rejected[:100]],
                    samples=report.samples,
                )
            )
            if report.dry_run or report.status not in _DELIVERED:
                return []
            queued = []
            for follower in followers:
                if self._has_run(connection, follower, (RunStatus.QUEUED.value,)):
                    continue
                queued.append(
                    self._insert_run(
                        connection, follower, Trigger.AFTER, False, finished_at, None, report.run_id
                    )
                )
            return queued

    def cancel(self, run_id: str, *, now: datetime | None = None) -> bool:
        """Cancel a queued run; a run that started already is not stopped."""
        now = now or _now()
        with self._transaction() as connection:
            result = connection.execute(
                sa.update(SyncRunRow)
                .where(SyncRunRow.id == run_id, SyncRunRow.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.CANCELED.value, finished_at=now)
            )
            return result.rowcount > 0

    # Runs: reading

    def run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(SyncRunRow).where(SyncRunRow.id == run_id)).first()
        return None if row is None else _run_record(row)

    def _require(self, run_id: str) -> RunRecord:
        record = self.run(run_id)
        if record is None:
            raise InternalError(f"run {run_id} is not in the metadata store")
        return record

    def runs(
        self,
        sync: str | None = None,
        *,
        limit: int = 50,
        statuses: Sequence[RunStatus] | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first."""
        query = sa.select(SyncRunRow).order_by(SyncRunRow.queued_at.desc(), SyncRunRow.id.desc())
        if sync is not None:
            query = query.where(SyncRunRow.sync_name == sync)
        if statuses is not None:
            query = query.where(SyncRunRow.status.in_([status.value for status in statuses]))
        with self.engine.connect() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [_run_record(row) for row in rows]

    def latest_runs(self) -> dict[str, RunRecord]:
        """The newest run of every sync that has run, by sync name."""
        newest = (
            sa.select(
                SyncRunRow.id,
                sa.func.row_number()
                .over(
                    partition_by=SyncRunRow.sync_name,
                    order_by=(SyncRunRow.queued_at.desc(), SyncRunRow.id.desc()),
                )
                .label("position"),
            )
        ).subquery()
        query = (
            sa.select(SyncRunRow)
            .join(newest, newest.c.id == SyncRunRow.id)
            .where(newest.c.position == 1)
            .order_by(SyncRunRow.sync_name)
        )
        with self.engine.connect() as connection:
            return {row.sync_name: _run_record(row) for row in connection.execute(query)}

    def last_finished(self, sync: str, *, include_dry_runs: bool = False) -> RunRecord | None:
        query = (
            sa.select(SyncRunRow)
            .where(SyncRunRow.sync_name == sync, SyncRunRow.finished_at.is_not(None))
            .order_by(SyncRunRow.finished_at.desc())
            .limit(1)
        )
        if not include_dry_runs:
            query = query.where(SyncRunRow.dry_run.is_(False))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _run_record(row)

    def has_active_run(self, sync: str) -> bool:
        with self.engine.connect() as connection:
            return self._has_run(connection, sync, ACTIVE)

    def _has_run(self, connection: sa.Connection, sync: str, statuses: Sequence[str]) -> bool:
        query = sa.select(SyncRunRow.id).where(
            SyncRunRow.sync_name == sync, SyncRunRow.status.in_(statuses)
        )
        return connection.execute(query.limit(1)).first() is not None

    def logs(self, run_id: str, *, min_level: int = logging.NOTSET) -> list[LogLine]:
        query = (
            sa.select(SyncRunLogRow)
            .where(SyncRunLogRow.run_id == run_id, SyncRunLogRow.level >= min_level)
            .order_by(SyncRunLogRow.id)
        )
        with self.engine.connect() as connection:
            return [
                LogLine(run_id=row.run_id, at=row.at, level=row.level, message=row.message)
                for row in connection.execute(query)
            ]

    # Dispatch: handing queued runs to the worker's job queue

    def undispatched_runs(self, *, limit: int = 100) -> list[RunRecord]:
        """Queued runs that no worker has handed to its job queue yet, oldest first."""
        query = (
            sa.select(SyncRunRow)
            .where(SyncRunRow.status == RunStatus.QUEUED.value, SyncRunRow.dispatched_at.is_(None))
            .order_by(SyncRunRow.queued_at, SyncRunRow.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_run_record(row) for row in connection.execute(query)]

    def mark_dispatched(self, run_id: str, *, now: datetime | None = None) -> None:
        with self._transaction() as connection:
            connection.execute(
                sa.update(SyncRunRow)
                .where(SyncRunRow.id == run_id)
                .values(dispatched_at=now or _now())
            )

    # Schedules

    def schedule_state(self, sync: str) -> ScheduleState | None:
        query = sa.select(SyncScheduleStateRow).where(SyncScheduleStateRow.sync_name == sync)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _schedule_state(row)

    def set_schedule(
        self,
        sync: str,
        schedule: str,
        next_due_at: datetime | None,
        *,
        expected_version: int | None,
        now: datetime | None = None,
    ) -> bool:
        """Set a sync's schedule and next due time, if nobody changed it since
        `expected_version` (None: only if the sync has no state yet)."""
        now = now or _now()
        values = {"schedule": schedule, "next_due_at": next_due_at, "updated_at": now}
        if expected_version is None:
            try:
                with self._transaction() as connection:
                    connection.execute(
                        sa.insert(SyncScheduleStateRow).values(
                            sync_name=sync, version=1, last_run_id=None, **values
                        )
                    )
            except IntegrityError:
                return False
            return True
        with self._transaction() as connection:
            result = connection.execute(
                sa.update(SyncScheduleStateRow)
                .where(
                    SyncScheduleStateRow.sync_name == sync,
                    SyncScheduleStateRow.version == expected_version,
                )
                .values(version=expected_version + 1, **values)
            )
            return result.rowcount > 0

    def enqueue_due(self, state: ScheduleState, *, now: datetime | None = None) -> str | None:
        """Queue the scheduled run for `state.next_due_at`, exactly once.

        Many workers may call this for the same due time; the compare-and-set on the
        state's version, and the unique (sync, due time) pair, let one of them win.
        Returns the run id, or None when another worker won.
        """
        if state.next_due_at is None:
            return None
        now = now or _now()
        try:
            with self._transaction() as connection:
                run_id = self._insert_run(
                    connection, state.sync, Trigger.SCHEDULE, False, now, state.next_due_at, None
                )
                result = connection.execute(
                    sa.update(SyncScheduleStateRow)
                    .where(
                        SyncScheduleStateRow.sync_name == state.sync,
                        SyncScheduleStateRow.version == state.version,
                    )
                    .values(
                        version=state.version + 1,
                        next_due_at=None,
                        last_run_id=run_id,
                        updated_at=now,
                    )
                )
                if result.rowcount == 0:
                    raise _LostRace
        except (_LostRace, IntegrityError):
            return None
        return run_id

    # Workers

    def register_worker(self, worker_id: str, *, now: datetime | None = None) -> None:
        now = now or _now()
        values = {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "heartbeat_at": now,
            "stopped_at": None,
            "recovered_at": None,
            "recovered_by": None,
        }
        with self._transaction() as connection:
            updated = connection.execute(
                sa.update(WorkerRow).where(WorkerRow.id == worker_id).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(sa.insert(WorkerRow).values(id=worker_id, **values))

    def worker_heartbeat(self, worker_id: str, *, now: datetime | None = None) -> None:
        with self._transaction() as connection:
            connection.execute(
                sa.update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(heartbeat_at=now or _now())
            )

    def worker_stopped(self, worker_id: str, *, now: datetime | None = None) -> None:
        with self._transaction() as connection:
            connection.execute(
                sa.update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(stopped_at=now or _now())
            )

    def workers(self) -> list[WorkerRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(WorkerRow).order_by(WorkerRow.started_at))
            return [_worker_record(row) for row in rows]

    def gone_workers(self, dead_after: timedelta, *, now: datetime | None = None) -> list[str]:
        """Workers that stopped or missed their heartbeats and whose runs nobody took up."""
        cutoff = (now or _now()) - dead_after
        query = sa.select(WorkerRow.id).where(
            WorkerRow.recovered_at.is_(None),
            sa.or_(WorkerRow.stopped_at.is_not(None), WorkerRow.heartbeat_at < cutoff),
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def mark_recovered(self, worker_id: str, by: str, *, now: datetime | None = None) -> None:
        with self._transaction() as connection:
            connection.execute(
                sa.update(WorkerRow)
                .where(WorkerRow.id == worker_id, WorkerRow.recovered_at.is_(None))
                .values(recovered_at=now or _now(), recovered_by=by)
            )


class _LostRace(Exception):
    """Another worker changed the schedule state first."""


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        sync=row.sync_name,
        status=RunStatus(row.status),
        trigger=Trigger(row.trigger),
        dry_run=bool(row.dry_run),
        queued_at=row.queued_at,
        scheduled_for=row.scheduled_for,
        triggered_by=row.triggered_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        worker_id=row.worker_id,
        attempt=row.attempt,
        counts=RunCounts(**row.counts),
        timings=dict(row.timings),
        error=row.error,
        rejected=tuple(RejectedRow(**item) for item in row.rejected),
        samples=dict(row.samples),
    )


def _schedule_state(row: Any) -> ScheduleState:
    return ScheduleState(
        sync=row.sync_name,
        schedule=row.schedule,
        next_due_at=row.next_due_at,
        last_run_id=row.last_run_id,
        version=row.version,
    )


def _worker_record(row: Any) -> WorkerRecord:
    return WorkerRecord(
        id=row.id,
        hostname=row.hostname,
        pid=row.pid,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        stopped_at=row.stopped_at,
        recovered_at=row.recovered_at,
        recovered_by=row.recovered_by,
    )
