"""Sync runs started from the studio: recorded in the metadata store like every other run.

A run started here uses the studio's own warehouse connection (an embedded DuckDB file
opens once per process) and the studio's secrets store, so destinations whose YAML holds
`{secret: NAME}` can be opened. This is `corral.store.execution.run_now` with those two
things passed in; see `start` for why the run is claimed before its thread starts.
"""

from __future__ import annotations

import logging
import socket
import threading
from datetime import datetime

from corral.activation.engine import RunOptions, SyncContext, run_sync
from corral.activation.runs import RunReport, RunStatus
from corral.activation.schedules import followers
from corral.activation.worker import Executor, RunRequest
from corral.api.studio import Studio
from corral.errors import ConflictError
from corral.store import StoreRecorder, Trigger

logger = logging.getLogger(__name__)


def claim(studio: Studio, sync: str, *, dry_run: bool) -> str:
    """Queue a run of `sync` and mark it running here at once, so no worker takes it."""
    active = studio.store.runs(sync, limit=1, statuses=[RunStatus.QUEUED, RunStatus.RUNNING])
    if active:
        raise ConflictError(
            f"sync {sync!r} already has a {active[0].status.value} run ({active[0].id})",
            where=f"sync {sync}",
            hint=f"follow it at /api/v1/runs/{active[0].id}, then run again",
        )
    run_id = studio.store.enqueue_run(sync, Trigger.MANUAL, dry_run=dry_run)
    studio.store.start(run_id, f"studio@{socket.gethostname()}")
    return run_id


def execute(
    studio: Studio,
    sync: str,
    run_id: str,
    *,
    options: RunOptions,
    as_of: datetime | None = None,
) -> RunReport:
    """Run a claimed run to its end and record the outcome; never raises."""
    recorder = StoreRecorder(studio.store, run_id)
    try:
        context = sync_context(studio, as_of)
        report = run_sync(context, sync, options=options, recorder=recorder, run_id=run_id)
        after = () if report.dry_run else followers(context.workspace.syncs, sync)
    except Exception as error:  # a run that cannot start still ends, as failed
        logger.exception("run %s of sync %r could not run", run_id, sync)
        report = RunReport(sync, run_id, RunStatus.FAILED, dry_run=options.dry_run)
        report.error = str(error)
        after = ()
    studio.store.finish(report, followers=after)
    return report


def sync_context(studio: Studio, as_of: datetime | None = None) -> SyncContext:
    """What a run needs, from the studio's own warehouse connection and secrets store."""
    return SyncContext(
        studio.workspace(),
        studio.warehouse(),
        studio.schema(),
        as_of or studio.as_of(),
        secrets=studio.secrets.get if studio.secrets is not None else None,
    )


def executor(studio: Studio) -> Executor:
    """Runs a worker's claimed runs through the studio's warehouse connection and secrets:
    the worker `corral serve` starts in its own process (see corral.cli.serve)."""

    def run(request: RunRequest) -> RunReport:
        return run_sync(
            sync_context(studio),
            request.sync,
            options=RunOptions(dry_run=request.dry_run),
            recorder=request.recorder,
            run_id=request.run_id,
        )

    return run


def start(studio: Studio, sync: str, *, as_of: datetime | None = None) -> str:
    """Claim a run of `sync` and run it in a background thread; returns the run id."""
    run_id = claim(studio, sync, dry_run=False)
    thread = threading.Thread(
        target=execute,
        args=(studio, sync, run_id),
        kwargs={"options": RunOptions(), "as_of": as_of},
        name=f"corral-run-{run_id[:8]}",
        daemon=True,
    )
    for finished in [i for i, t in studio.runs.items() if not t.is_alive()]:
        del studio.runs[finished]
    studio.runs[run_id] = thread
    thread.start()
    return run_id
