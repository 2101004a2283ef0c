"""`corral sync ...`: list syncs, run one (or plan it dry), and show recent runs."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from corral.activation.engine import RunOptions
from corral.activation.runs import RunReport, RunStatus
from corral.activation.schedules import validate_schedules
from corral.activation.syncs import AfterSchedule, CronSchedule, IntervalSchedule, Schedule
from corral.activation.worker import Worker
from corral.cli import output
from corral.cli.common import (
    AsOfOption,
    JsonOption,
    WorkspaceOption,
    err,
    handles_errors,
    open_workspace,
    out,
    resolve_as_of,
)
from corral.store import RunRecord
from corral.store.execution import open_store, run_now, worker_executor
from corral.workspace import Workspace

app = typer.Typer(help="Run syncs to destinations and look at their runs.", no_args_is_help=True)

SyncArgument = Annotated[str, typer.Argument(help="A sync's name or its file name without .yaml.")]
FAILED_EXIT = 1


@app.command("list")
@handles_errors
def list_syncs(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """List the workspace's syncs."""
    ws = open_workspace(workspace)
    rows = [
        {
            "name": s.name,
            "source": f"audience {s.audience}" if s.audience else f"model {s.model}",
            "destination": s.destination,
            "type": ws.destinations[s.destination].type,
            "mode": s.mode.value,
            "schedule": _schedule_text(s.schedule),
        }
        for s in ws.syncs.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Syncs in {ws.root}", title_justify="left")
    for heading in ("Sync", "Source", "Destination", "Mode", "Schedule"):
        table.add_column(heading)
    for row in rows:
        table.add_row(
            row["name"],
            row["source"],
            f"{row['destination']} [dim]({row['type']})[/]",
            row["mode"],
            row["schedule"],
        )
    out().print(table)


@app.command("run")
@handles_errors
def run(
    sync: SyncArgument,
    workspace: WorkspaceOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and show counts and samples; send nothing.")
    ] = False,
    confirm_removals: Annotated[
        bool,
        typer.Option("--confirm-removals", help="Send removals a guard held back last time."),
    ] = False,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a sync now: plan in the warehouse, send the changes, record the run."""
    ws = open_workspace(workspace)
    definition = ws.sync(sync)
    report = run_with_progress(
        ws,
        definition.name,
        options=RunOptions(dry_run=dry_run, confirm_removals=confirm_removals),
        as_of=as_of,
        show_progress=not as_json,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str, ensure_ascii=False))
    else:
        out().print(output.run_report(report))
    if report.status is RunStatus.FAILED:
        raise typer.Exit(FAILED_EXIT)


def run_with_progress(
    ws: Workspace,
    name: str,
    *,
    options: RunOptions,
    as_of: str | None = None,
    show_progress: bool = True,
) -> RunReport:
    """Run one sync now, recorded in the metadata store, with a progress bar on stderr."""
    moment = resolve_as_of(ws, as_of)
    store = open_store(ws)
    try:
        recorder = _ProgressRecorder(name, enabled=show_progress)
        with recorder.progress_bar:
            return run_now(ws, store, name, options=options, as_of=moment, recorder=recorder)
    finally:
        store.close()


@app.command("status")
@handles_errors
def status(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """The latest run of every sync: status, counts, when it ran."""
    ws = open_workspace(workspace)
    store = open_store(ws)
    try:
        latest = store.latest_runs()
    finally:
        store.close()
    if as_json:
        rows = [_record_dict(latest[name]) for name in ws.syncs if name in latest]
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    reports = [latest[name].to_report() for name in ws.syncs if name in latest]
    never = [name for name in ws.syncs if name not in latest]
    out().print(output.runs_table(reports, title=f"Latest sync runs in {ws.root}"))
    if never:
        out().print(f"[dim]Never run: {', '.join(never)}[/]")


@app.command("runs")
@handles_errors
def runs(
    sync: SyncArgument,
    workspace: WorkspaceOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    log: Annotated[
        str | None, typer.Option("--log", help="Print the log of this run id instead.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A sync's run history, newest first; or one run's log with --log RUN_ID."""
    ws = open_workspace(workspace)
    definition = ws.sync(sync)
    store = open_store(ws)
    try:
        if log is not None:
            lines = store.logs(log)
            if as_json:
                typer.echo(json.dumps([asdict(line) for line in lines], indent=2, default=str))
            else:
                for line in lines:
                    level = logging.getLevelName(line.level)
                    out().print(f"{line.at:%Y-%m-%d %H:%M:%S} {level:<7} {line.message}")
            return
        records = store.runs(definition.name, limit=limit)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([_record_dict(r) for r in records], indent=2, default=str))
        return
    out().print(output.history_table(records, title=f"Runs of {definition.name}"))


@app.command("worker")
@handles_errors
def worker(
    workspace: WorkspaceOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Runs at once in this worker.")
    ] = 2,
    worker_id: Annotated[
        str | None, typer.Option("--id", help="This worker's id (default: host and pid).")
    ] = None,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between polls.")] = 1.0,
) -> None:
    """Claim and run due and queued sync runs until stopped (Ctrl-C or SIGTERM)."""
    ws = open_workspace(workspace)
    validate_schedules(ws.syncs)
    store = open_store(ws)
    store.close()
    executor, syncs = worker_executor(ws.root)
    process = Worker(
        ws.metadata_url(),
        executor,
        syncs=syncs,
        worker_id=worker_id,
        poll_interval=poll,
        concurrency=concurrency,
    )
    err().print(
        f"Worker {process.worker_id} on {ws.root}: {len(ws.syncs)} syncs, "
        f"metadata at {ws.settings.metadata}; Ctrl-C stops it"
    )
    process.run_forever()


def _record_dict(record: RunRecord) -> dict[str, object]:
    data = record.to_report().to_dict()
    data.update(trigger=record.trigger.value, attempt=record.attempt, worker=record.worker_id)
    return data


class _ProgressRecorder:
    """Shows a run's progress: a spinner while planning, then a bar of rows sent."""

    def __init__(self, name: str, *, enabled: bool) -> None:
        self.progress_bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err(),
            disable=not enabled,
            transient=True,
        )
        self.task = self.progress_bar.add_task(f"{name}: planning", total=None)
        self.name = name
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._logger = logging.getLogger("corral.sync")

    def log(self, level: int, message: str) -> None:
        with self._lock:
            self.lines.append(message)
        self._logger.log(level, message)

    def progress(self, report: RunReport) -> None:
        c = report.counts
        planned = c.planned_added + c.planned_changed + c.planned_removed - c.held_removals
        done = c.added + c.changed + c.removed + c.rejected
        if planned or done:
            self.progress_bar.update(
                self.task,
                description=f"{self.name}: sending",
                total=max(planned, done),
                completed=done,
            )


def _schedule_text(schedule: Schedule) -> str:
    if isinstance(schedule, IntervalSchedule):
        return f"every {schedule.every}"
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.cron} ({schedule.time_zone})"
    if isinstance(schedule, AfterSchedule):
        return f"after {schedule.after}"
    return "manual"
