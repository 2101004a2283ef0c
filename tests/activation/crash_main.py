"""Sync runs in child processes, for the crash tests in test_crash.py.

    python -m tests.activation.crash_main RUN.json      one run, then exit
    python -m tests.activation.crash_main --serve       one forked run per stdin line

RUN.json (or each stdin line) is a JSON object:

    {"warehouse": "/tmp/.../warehouse.duckdb",     the DuckDB file holding `people`
     "planner_schema": "corral_planner",
     "destination": {"type": "postgres", "config": {...}},
     "batch_size": 50, "ack_every": 50,
     "statement_pause": 0.005,                     seconds slept after each warehouse write
     "phase_file": ".../phases", "report_file": ".../report.json"}

The child appends the phase it enters to `phase_file` (start, prepare, recovery,
recovered, plan, deliver, fold, folded, finish, done), so the killer knows where each
SIGKILL landed, and writes the run's report to `report_file` when it ends.
`statement_pause` widens the gaps between warehouse statements, which is where a crash
leaves a partial state.

Importing Corral takes seconds on a small machine, longer than a run; `--serve` imports it
once and forks a fresh process per run, so each run still dies alone. For each line it
writes `pid <pid>` when the run starts and `exit <pid> <code>` when it has ended (a
negative code is the signal that ended it).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

import corral.activation.engine as engine
from corral.activation.engine import RunOptions, SyncContext, run_sync
from corral.activation.planner import Planner
from corral.activation.syncs import DestinationDefinition, SyncDefinition
from corral.audiences import AudienceDefinition
from corral.schema import SchemaDefinition, bind_schema
from corral.warehouse import DuckDBWarehouse
from corral.warehouse.base import TableRef
from corral.workspace.files import Workspace, WorkspaceSettings

SYNC = "Members to destination"
AUDIENCE = "Members"
PEOPLE = TableRef("people")
THRESHOLD = 50  # the audience: score at least this
AS_OF = datetime(2026, 12, 1)
PEOPLE_SCHEMA = pa.schema(
    [("id", pa.int64()), ("email", pa.string()), ("name", pa.string()), ("score", pa.int64())]
)
# Destination field: source column. No identifiers are normalized by the destinations used
# here, so the destination holds these values exactly.
MAPPING = {"email": "email", "name": "name", "score": "score"}


def build_workspace(root: Path, planner_schema: str, destination: dict[str, Any]) -> Workspace:
    """One audience (score >= THRESHOLD) synced in mirror mode to `destination`."""
    schema = SchemaDefinition.model_validate(
        {"parent": {"name": "people", "table": PEOPLE.name, "primary_key": "id"}}
    )
    audience = AudienceDefinition.model_validate(
        {"name": AUDIENCE, "conditions": [{"property": "score", "at_least": THRESHOLD}]}
    )
    sync = SyncDefinition.model_validate(
        {
            "name": SYNC,
            "audience": AUDIENCE,
            "destination": "Target",
            "mode": "mirror",
            "mapping": MAPPING,
        }
    )
    target = DestinationDefinition(
        name="Target", type=destination["type"], config=destination["config"]
    )
    return Workspace(
        root=root,
        settings=WorkspaceSettings(planner_schema=planner_schema),
        schema=schema,
        audiences={AUDIENCE: audience},
        destinations={"Target": target},
        syncs={SYNC: sync},
    )


class _Phases:
    """Appends phase names to a file with one unbuffered write each (SIGKILL keeps them)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.current = ""

    def enter(self, phase: str) -> None:
        self.current = phase
        os.write(self._fd, f"{phase}\n".encode())


class _PausingWarehouse(DuckDBWarehouse):
    """DuckDB that sleeps after each write, so kills land between statements more often."""

    pause = 0.0

    def execute(self, statement: Any) -> None:
        super().execute(statement)
        time.sleep(self.pause)

    def append(self, table: TableRef, data: pa.Table) -> None:
        super().append(table, data)
        time.sleep(self.pause)

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        super().create_table(table, data, replace=replace)
        time.sleep(self.pause)


def _traced_planner(phases: _Phases) -> type[Planner]:
    class TracedPlanner(Planner):
        def prepare(self) -> bool:
            phases.enter("prepare")
            return super().prepare()

        def plan(self, source: Any, fields: Any, **options: Any) -> Any:
            phases.enter("plan")
            return super().plan(source, fields, **options)

        def rows(
            self, operation: str, batch_size: int, *, in_key_order: bool = False
        ) -> Iterator[pa.RecordBatch]:
            phases.enter("deliver")
            yield from super().rows(operation, batch_size, in_key_order=in_key_order)

        def fold(self, *, recovering: bool = False) -> None:
            phases.enter("recovery" if recovering else "fold")
            super().fold(recovering=recovering)
            phases.enter("recovered" if recovering else "folded")

        def record_rejected(self, rows: Any, at: datetime) -> None:
            phases.enter("finish")
            super().record_rejected(rows, at)

    return TracedPlanner


def run_once(request: dict[str, Any]) -> int:
    """One sync run as `request` describes; 0 when it ended with a report."""
    phases = _Phases(request["phase_file"])
    phases.enter("start")
    engine.Planner = _traced_planner(phases)  # type: ignore[attr-defined]
    _PausingWarehouse.pause = float(request.get("statement_pause", 0.0))
    warehouse = _PausingWarehouse(request["warehouse"])
    try:
        workspace = build_workspace(
            Path(request["warehouse"]).parent, request["planner_schema"], request["destination"]
        )
        context = SyncContext(
            workspace=workspace,
            warehouse=warehouse,
            schema=bind_schema(workspace.schema, warehouse),
            as_of=AS_OF,
        )
        options = RunOptions(
            batch_size=request["batch_size"],
            ack_every=request["ack_every"],
            confirm_removals=True,  # the crash tests check delivery, not the shrink guard
            sleep=lambda seconds: time.sleep(min(seconds, 0.05)),
        )
        report = run_sync(context, SYNC, options=options)
    finally:
        warehouse.close()
    Path(request["report_file"]).write_text(json.dumps(report.to_dict(), default=str))
    phases.enter("done")
    return 0


def _run_or_report(request: dict[str, Any]) -> int:
    try:
        return run_once(request)
    except BaseException:
        Path(request["report_file"]).write_text(json.dumps({"crash": traceback.format_exc()}))
        return 1


def serve() -> None:
    """Fork one child per request line on stdin; report its pid, then how it ended."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os.dup2(2, 1)  # the child must not write into the protocol on stdout
            os._exit(_run_or_report(request))
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    request = json.loads(Path(sys.argv[1]).read_text())
    sys.exit(_run_or_report(request))


if __name__ == "__main__":
    main()
