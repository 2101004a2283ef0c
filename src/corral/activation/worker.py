"""`corral worker`: claims queued sync runs, runs them, and keeps schedules.

A worker is one process. Each poll it

1. beats its heartbeat (its row in the store's `workers` table, and its running runs);
2. enqueues the runs that interval and cron schedules made due (`tick`);
3. hands queued runs from the store to DBOS, the durable queue that runs them (`dispatch`);
4. takes up the runs of workers that stopped beating (`recover`).

DBOS (see docs/decisions/0004-dbos-for-workers.md) keeps the job queue in its system
tables next to the store: a SQLite file beside `metadata.db` by default, or the same
PostgreSQL database (schema `corral_dbos`) when many workers share it. Its queue is
partitioned by sync with at most one running workflow per partition, so no sync runs twice
at once across all workers; the workflow id is the run id, so a run is queued into DBOS
once however many workers dispatch it. DBOS recovers a killed executor's workflows only
when that same executor restarts, so a live worker watches heartbeats and recovers a dead
worker's workflows itself. The store stays the history users see; DBOS is bookkeeping.

    worker = Worker(store_url, executor=engine.run, syncs=workspace.syncs)
    worker.run_forever()  # until SIGTERM or SIGINT

One worker per process: DBOS keeps process-wide state.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

import corral
from corral.activation.runs import RunRecorder, RunReport, RunStatus
from corral.activation.schedules import fingerprint, followers, is_timed, next_due
from corral.activation.syncs import CronSchedule, SyncDefinition
from corral.errors import ConfigurationError, CorralError
from corral.store import RunRecord, Store, StoreRecorder, Trigger

logger = logging.getLogger(__name__)

QUEUE_NAME = "corral_sync_runs"
WORKFLOW_NAME = "corral_sync_run"
DBOS_SCHEMA = "corral_dbos"
# Workers recover each other's runs only when they run the same Corral version.
APP_VERSION = f"corral-{corral.__version__}"


@dataclass(frozen=True)
class RunRequest:
    """What the sync engine is asked to do; it reports to `recorder` as it goes."""

    run_id: str
    sync: str
    dry_run: bool
    trigger: Trigger
    attempt: int  # 2 or more: an earlier worker stopped mid-run; the engine resumes
    recorder: RunRecorder


Executor = Callable[[RunRequest], RunReport]
SyncSource = Callable[[], Mapping[str, SyncDefinition]]

_active: Worker | None = None
_registered = False


def dbos_system_url(store_url: str) -> str:
    """Where DBOS keeps its queue for a store: a sibling SQLite file, or the same
    PostgreSQL database."""
    store = Store(store_url)
    try:
        url = store.engine.url
        if store.dialect == "postgresql":
            return url.render_as_string(hide_password=False)
        if not url.database or url.database == ":memory:":
            raise ConfigurationError(
                "workers need a metadata store on disk, not an in-memory SQLite database",
                hint="set `metadata:` to a sqlite:/// file or a PostgreSQL URL",
            )
        path = Path(url.database)
        return url.set(database=str(path.with_name(f"{path.stem}-dbos.db"))).render_as_string(
            hide_password=False
        )
    finally:
        store.close()


class Worker:
    """Runs queued sync runs with `executor`, and enqueues scheduled runs of `syncs()`.

    `concurrency` is how many runs this worker runs at once (DBOS keeps one value per
    queue: the last worker to start sets it for all). A worker that misses heartbeats
    for `dead_after` seconds is taken for dead and its runs start again elsewhere.
    """

    def __init__(
        self,
        store_url: str,
        executor: Executor,
        *,
        syncs: SyncSource | None = None,
        worker_id: str | None = None,
        poll_interval: float = 1.0,
        concurrency: int = 2,
        dead_after: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"worker concurrency must be at least 1, not {concurrency}")
        if dead_after <= 2 * poll_interval:
            raise ConfigurationError(
                f"dead_after ({dead_after}s) must exceed two poll intervals ({poll_interval}s)"
            )
        self.store_url = store_url
        self.executor = executor
        self.syncs = syncs
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.dead_after = timedelta(seconds=dead_after)
        self.store = Store(store_url)
        self._stopping = threading.Event()
        self._loop_thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> None:
        """Launch DBOS and the poll loop; returns at once."""
        global _active
        if _active is not None:
            raise ConfigurationError(
                f"worker {_active.worker_id} already runs in this process",
                hint="start one worker per process; run more `corral worker` processes",
            )
        _active = self
        try:
            self.store.upgrade()
            self.store.register_worker(self.worker_id)
            self._launch_dbos()
        except BaseException:
            _active = None
            raise
        self._loop_thread = threading.Thread(target=self._loop, name="corral-worker", daemon=True)
        self._loop_thread.start()
        logger.info(
            "worker %s started on %r (concurrency %d)", self.worker_id, self.store, self.concurrency
        )

    def stop(self, *, wait_seconds: int = 30) -> None:
        """Stop taking runs, give running ones `wait_seconds` to finish, then shut down."""
        global _active
        from dbos import DBOS

        self._stopping.set()
        if self._loop_thread is not None:
            self._loop_thread.join()
        DBOS.destroy(workflow_completion_timeout_sec=wait_seconds)
        # A run still going is left to the heartbeat: once this process has exited and
        # `dead_after` has passed, another worker takes it up.
        still_running = [
            run
            for run in self.store.runs(statuses=[RunStatus.RUNNING], limit=1000)
            if run.worker_id == self.worker_id
        ]
        if not still_running:
            self.store.worker_stopped(self.worker_id)
        self.store.close()
        _active = None
        logger.info("worker %s stopped", self.worker_id)

    def run_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT (or `stop()` from another thread)."""
        self.start()
        if threading.current_thread() is threading.main_thread():

            def _on_signal(number: int, _frame: FrameType | None) -> None:
                logger.info("worker %s got signal %d; stopping", self.worker_id, number)
                self._stopping.set()

            signal.signal(signal.SIGTERM, _on_signal)
            signal.signal(signal.SIGINT, _on_signal)
        self._stopping.wait()
        self.stop()

    def _launch_dbos(self) -> None:
        from dbos import DBOS, DBOSConfig

        _register_workflow()
        config: DBOSConfig = {
            "name": "corral",
            "system_database_url": dbos_system_url(self.store_url),
            "dbos_system_schema": DBOS_SCHEMA,
            "executor_id": self.worker_id,
            "application_version": APP_VERSION,
            "log_level": "WARNING",
        }
        DBOS(config=config)
        DBOS.launch()
        DBOS.register_queue(
            QUEUE_NAME,
            partition_concurrency=1,
            worker_concurrency=self.concurrency,
            polling_interval_sec=self.poll_interval,
            on_conflict="always_update",
        )

    # The poll loop

    def _loop(self) -> None:
        steps: list[tuple[str, Callable[[], object]]] = [
            ("heartbeat", self.heartbeat),
            ("schedules", self.tick),
            ("dispatch", self.dispatch),
            ("recovery", self.recover),
        ]
        while not self._stopping.is_set():
            for name, step in steps:
                if self._stopping.is_set():
                    break
                try:
                    step()
                except Exception:
                    # One failing step (a lost connection) must not stop the heartbeat.
                    logger.warning("worker %s: %s step failed", self.worker_id, name, exc_info=True)
            self._stopping.wait(self.poll_interval)

    def heartbeat(self) -> None:
        self.store.worker_heartbeat(self.worker_id)
        self.store.heartbeat_runs(self.worker_id)

    def tick(self, now: datetime | None = None) -> list[str]:
        """Enqueue the runs that interval and cron schedules made due; returns their ids.

        Every worker ticks; a due time is enqueued once (see `Store.enqueue_due`).
        """
        if self.syncs is None:
            return []
        now = now or datetime.now(UTC)
        queued = []
        for name, definition in sorted(self.syncs().items()):
            if not is_timed(definition.schedule):
                continue
            try:
                run_id = self._tick_sync(definition, now)
            except CorralError as error:
                logger.warning("schedule of sync %r skipped: %s", name, error)
                continue
            if run_id is not None:
                queued.append(run_id)
        return queued

    def _tick_sync(self, definition: SyncDefinition, now: datetime) -> str | None:
        name, schedule = definition.name, definition.schedule
        schedule_text = fingerprint(schedule)
        state = self.store.schedule_state(name)

        if state is None or state.schedule != schedule_text:
            # A new or changed schedule: a cron counts from now, an interval from the
            # last run (at once if there was none).
            last = self.store.last_finished(name)
            anchor = (
                None if isinstance(schedule, CronSchedule) or last is None else last.finished_at
            )
            due = next_due(schedule, last_finished_at=anchor, now=now, sync=name)
            expected = None if state is None else state.version
            self.store.set_schedule(name, schedule_text, due, expected_version=expected, now=now)
            state = self.store.schedule_state(name)

        if state is not None and state.next_due_at is None:
            # The last scheduled run is out; the next is due counting from its end.
            if state.last_run_id is not None:
                last_run = self.store.run(state.last_run_id)
                if last_run is not None and not last_run.status.finished:
                    return None
            last = self.store.last_finished(name)
            due = next_due(
                schedule, last_finished_at=last.finished_at if last else now, now=now, sync=name
            )
            self.store.set_schedule(
                name, schedule_text, due, expected_version=state.version, now=now
            )
            state = self.store.schedule_state(name)

        if state is None or state.next_due_at is None or state.next_due_at > now:
            return None
        if self.store.has_active_run(name):
            return None  # a manual run is queued or going; the due run waits for it
        run_id = self.store.enqueue_due(state, now=now)
        if run_id is not None:
            logger.info("sync %r due at %s: run %s queued", name, state.next_due_at, run_id)
        return run_id

    def dispatch(self) -> list[str]:
        """Hand the store's queued runs to DBOS; returns the run ids handed over."""
        from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

        handed = []
        queue = DBOS.retrieve_queue(QUEUE_NAME)
        if queue is None:
            return []
        for record in self.store.undispatched_runs():
            # The run id is the workflow id: a second dispatch of the same run (by
            # another worker, or after a crash here) attaches to the first.
            with SetWorkflowID(record.id), SetEnqueueOptions(queue_partition_key=record.sync):
                queue.enqueue(_sync_run_workflow, record.id)
            self.store.mark_dispatched(record.id)
            handed.append(record.id)
        return handed

    def recover(self, now: datetime | None = None) -> list[str]:
        """Take up the runs of workers that stopped or missed heartbeats; returns their ids."""
        from dbos import DBOS

        recovered = []
        for worker_id in self.store.gone_workers(self.dead_after, now=now):
            if worker_id == self.worker_id:
                continue
            handles = DBOS._recover_pending_workflows([worker_id])
            self.store.mark_recovered(worker_id, by=self.worker_id, now=now)
            if handles:
                logger.warning(
                    "worker %s stopped beating; %d of its runs start again: %s",
                    worker_id,
                    len(handles),
                    ", ".join(handle.workflow_id for handle in handles),
                )
            recovered.append(worker_id)
        return recovered

    # Running one run (inside the DBOS workflow)

    def execute(self, run_id: str) -> None:
        """Run one queued run to its end and record it; called by the DBOS workflow."""
        record = self.store.start(run_id, self.worker_id)
        if record is None:
            logger.info("run %s was finished or canceled before it started", run_id)
            return
        recorder = StoreRecorder(self.store, run_id)
        if record.attempt > 1:
            recorder.log(
                logging.WARNING,
                f"attempt {record.attempt}: the worker that ran it before stopped; "
                f"running again on {self.worker_id}",
            )
        logger.info(
            "run %s of sync %r started on %s (attempt %d)",
            run_id,
            record.sync,
            self.worker_id,
            record.attempt,
        )
        report = self._call_executor(record, recorder)
        queued = self._finish(report)
        logger.info(
            "run %s of sync %r %s in %.1fs%s",
            run_id,
            record.sync,
            report.status.value,
            report.seconds or 0.0,
            f"; queued {', '.join(queued)}" if queued else "",
        )

    def _call_executor(self, record: RunRecord, recorder: StoreRecorder) -> RunReport:
        request = RunRequest(
            run_id=record.id,
            sync=record.sync,
            dry_run=record.dry_run,
            trigger=record.trigger,
            attempt=record.attempt,
            recorder=recorder,
        )
        try:
            report = self.executor(request)
        except Exception as error:
            message = str(error) if isinstance(error, CorralError) else repr(error)
            recorder.log(logging.ERROR, f"the run failed: {message}")
            if not isinstance(error, CorralError):
                logger.exception("run %s of sync %r raised", record.id, record.sync)
            report = RunReport(
                sync=record.sync, run_id=record.id, status=RunStatus.FAILED, error=message
            )
        report.run_id, report.sync, report.dry_run = record.id, record.sync, record.dry_run
        report.started_at = report.started_at or record.started_at
        if not report.status.finished:
            report.error = f"the sync engine returned a {report.status.value} run; a bug in Corral"
            report.status = RunStatus.FAILED
        report.finished_at = report.finished_at or datetime.now(UTC)
        return report

    def _finish(self, report: RunReport) -> list[str]:
        names = followers(self.syncs(), report.sync) if self.syncs is not None else []
        for delay in (0.5, 2.0, 8.0, 0.0):
            try:
                return self.store.finish(report, followers=names)
            except SQLAlchemyError:
                if not delay:
                    raise
                logger.warning("run %s: saving its outcome failed; retrying", report.run_id)
                time.sleep(delay)
        return []


def _register_workflow() -> None:
    """Register the DBOS workflow once per process, before DBOS launches."""
    global _registered, _sync_run_workflow
    if _registered:
        return
    from dbos import DBOS

    _sync_run_workflow = DBOS.workflow(name=WORKFLOW_NAME)(_run_workflow_body)
    _registered = True


def _run_workflow_body(run_id: str) -> None:
    if _active is None:
        raise ConfigurationError(f"run {run_id} reached a process with no running worker")
    _active.execute(run_id)


_sync_run_workflow: Callable[[str], None] = _run_workflow_body
