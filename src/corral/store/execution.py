"""Sync runs with a history: run one now, or execute one a worker claimed.

The CLI, the API and `corral worker` all come through here, so every run, however it
started, lands in the metadata store with its counts, log and rejected rows.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from corral.activation.engine import RunOptions, SyncContext, run_sync
from corral.activation.runs import RunRecorder, RunReport, RunStatus
from corral.activation.schedules import followers
from corral.activation.syncs import SyncDefinition
from corral.activation.worker import Executor, RunRequest, SyncSource
from corral.errors import DefinitionError
from corral.governance import Governance
from corral.schema import bind_schema
from corral.store.recorder import StoreRecorder
from corral.store.records import Trigger
from corral.store.store import Store
from corral.warehouse import connect
from corral.workspace import Workspace, load_workspace

logger = logging.getLogger(__name__)


def open_store(workspace: Workspace) -> Store:
    """The workspace's metadata store, migrated to the current version."""
    store = Store(workspace.metadata_url())
    store.upgrade()
    return store


class Fanout:
    """Passes a run's log and progress to several recorders (the store and a progress bar)."""

    def __init__(self, recorders: Sequence[RunRecorder]) -> None:
        self.recorders = list(recorders)

    def log(self, level: int, message: str) -> None:
        for recorder in self.recorders:
            recorder.log(level, message)

    def progress(self, report: RunReport) -> None:
        for recorder in self.recorders:
            recorder.progress(report)


def execute(
    workspace: Workspace,
    sync: str,
    run_id: str,
    recorder: RunRecorder,
    *,
    options: RunOptions | None = None,
    as_of: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    secrets: Callable[[str], str] | None = None,
) -> RunReport:
    """Run `sync` as the recorded run `run_id`, against the workspace's warehouse.

    `secrets` reads the `{secret: NAME}` values of destination settings (see
    `stored_secrets`).
    """
    warehouse = connect(workspace.warehouse_url())
    try:
        schema = bind_schema(workspace.schema, warehouse)
        moment = as_of or workspace.settings.as_of or datetime.now(UTC)
        context = SyncContext(
            workspace, warehouse, schema, moment, transport=transport, secrets=secrets
        )
        return run_sync(context, sync, options=options, recorder=recorder, run_id=run_id)
    finally:
        warehouse.close()


def run_now(
    workspace: Workspace,
    store: Store,
    sync: str,
    *,
    options: RunOptions | None = None,
    as_of: datetime | None = None,
    recorder: RunRecorder | None = None,
    triggered_by: str | None = None,
) -> RunReport:
    """Run a sync in this process, recorded in the store like a worker's run.

    Refuses when a run of the same sync is already going, so the CLI never races a worker.
    """
    options = options or RunOptions()
    running = store.runs(sync, limit=1, statuses=[RunStatus.RUNNING])
    if running:
        raise DefinitionError(
            f"sync {sync!r} is already running (run {running[0].id} on "
            f"{running[0].worker_id or 'a worker'})",
            hint="wait for it to finish; 'corral sync status' shows its progress",
        )
    run_id = store.enqueue_run(
        sync, Trigger.MANUAL, dry_run=options.dry_run, triggered_by=triggered_by
    )
    store.start(run_id, f"cli@{socket.gethostname()}")
    recorders: list[RunRecorder] = [StoreRecorder(store, run_id)]
    if recorder is not None:
        recorders.append(recorder)
    report = execute(
        workspace,
        sync,
        run_id,
        Fanout(recorders),
        options=options,
        as_of=as_of,
        secrets=stored_secrets(workspace, store),
    )
    store.finish(report, followers=() if report.dry_run else followers(workspace.syncs, sync))
    return report


def stored_secrets(workspace: Workspace, store: Store) -> Callable[[str], str]:
    """Reads secrets the studio stored (encrypted with the workspace's key) by name."""
    return Governance(store, workspace=workspace.root).secrets.get


def worker_executor(root: Path) -> tuple[Executor, SyncSource]:
    """The executor and sync source a `corral worker` for the workspace at `root` uses.

    The workspace is read again for every run, so edited YAML takes effect without a
    restart.
    """

    def syncs() -> Mapping[str, SyncDefinition]:
        return load_workspace(root).syncs

    def executor(request: RunRequest) -> RunReport:
        workspace = load_workspace(root)
        if request.attempt > 1:
            request.recorder.log(
                logging.WARNING,
                f"attempt {request.attempt}: an earlier worker stopped; resuming from the "
                "warehouse state",
            )
        store = open_store(workspace)
        try:
            return execute(
                workspace,
                request.sync,
                request.run_id,
                request.recorder,
                options=RunOptions(dry_run=request.dry_run),
                secrets=stored_secrets(workspace, store),
            )
        finally:
            store.close()

    return executor, syncs
