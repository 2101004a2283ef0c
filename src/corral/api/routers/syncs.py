"""Syncs: the files in `syncs/`, runs now and dry runs, run history, logs, rejected rows.

Permissions about a sync are scoped to the destination it sends to. Rows (dry-run
samples, rejected keys) also need data:view on the warehouse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlglot import exp

from corral.activation.engine import RunOptions
from corral.activation.mapping import KEY
from corral.activation.planner import Planner
from corral.activation.schedules import describe, validate_schedule
from corral.activation.syncs import SyncDefinition
from corral.api import runs
from corral.api.deps import (
    SOURCE_SCOPE,
    DataViewer,
    IfMatch,
    RunViewer,
    SomeSyncViewer,
    StudioDep,
    SyncCreator,
    SyncManager,
    SyncRunner,
    SyncViewer,
    audit,
)
from corral.api.documents import check_if_match, dump_yaml, etag_of, new_file
from corral.api.errors import ERROR_RESPONSES
from corral.api.pagination import Cursor, Limit, Page, offset_of, page_of_fetched, paginate
from corral.api.security import Principal
from corral.api.studio import Studio
from corral.errors import ConflictError, UnknownReferenceError, WarehouseError
from corral.sql.build import column
from corral.store import RunRecord
from corral.workspace import Workspace

router = APIRouter(tags=["syncs"], responses=ERROR_RESPONSES)
MAX_REJECTED = 10_000


class SyncView(BaseModel):
    name: str
    description: str | None
    file: str
    etag: str
    definition: dict[str, Any]
    schedule: str = Field(description="The schedule in words")
    latest_run: dict[str, Any] | None


class RunAccepted(BaseModel):
    run_id: str
    status: str
    url: str


class LogLineView(BaseModel):
    at: datetime
    level: str
    message: str


class RejectedRowView(BaseModel):
    key: str
    reason: str
    attempts: int


@router.get("/syncs", summary="Syncs, with their latest runs")
def list_syncs(
    principal: SomeSyncViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[SyncView]:
    """Only the syncs to destinations the caller holds syncs:view for."""
    workspace = studio.workspace()
    latest = studio.store.latest_runs()
    names = [
        n
        for n in sorted(workspace.syncs)
        if principal.can("syncs:view", f"destination:{workspace.syncs[n].destination}")
    ]
    views = [_view(studio, workspace, n, latest.get(n)) for n in names]
    return paginate(views, limit, cursor)


@router.post("/syncs", status_code=201, summary="Create a sync")
def create_sync(
    principal: SyncCreator,
    body: SyncDefinition,
    studio: StudioDep,
    request: Request,
    response: Response,
) -> SyncView:
    with studio.changing() as change:
        workspace = studio.workspace()
        if body.name in workspace.syncs:
            raise ConflictError(
                f"there is already a sync named {body.name!r}",
                where=f"sync {body.name}",
                hint="pick another name, or PUT /api/v1/syncs/{name} to change it",
            )
        _check(workspace, body, {**workspace.syncs, body.name: body})
        change.write(new_file(studio.root / "syncs", body.name), _yaml(body))
    audit(request, principal, "sync.create", body.name)
    return _respond(studio, body.name, response)


@router.get("/syncs/{name}", summary="A sync")
def get_sync(principal: SyncViewer, name: str, studio: StudioDep, response: Response) -> SyncView:
    return _respond(studio, _name(studio.workspace(), name), response)


@router.put("/syncs/{name}", summary="Change a sync")
def put_sync(
    principal: SyncManager,
    name: str,
    body: SyncDefinition,
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> SyncView:
    """The name cannot change while other syncs run `after:` it."""
    with studio.changing() as change:
        workspace = studio.workspace()
        name = _name(workspace, name)
        path = workspace.files[f"sync:{name}"]
        check_if_match(if_match, etag_of(path), what=f"sync {name}")
        others = {n: s for n, s in workspace.syncs.items() if n != name}
        if body.name != name:
            _check_rename(workspace, name, body.name)
        _check(workspace, body, {**others, body.name: body})
        if body.name != name:
            change.delete(path)
            path = new_file(studio.root / "syncs", body.name)
        change.write(path, _yaml(body))
    audit(request, principal, "sync.update", body.name)
    return _respond(studio, body.name, response)


@router.delete("/syncs/{name}", status_code=204, summary="Delete a sync")
def delete_sync(
    principal: SyncManager, name: str, studio: StudioDep, request: Request, if_match: IfMatch = None
) -> Response:
    """Its run history stays in the metadata store; its planner tables stay in the
    warehouse (a sync created again with the same name continues from them)."""
    with studio.changing() as change:
        workspace = studio.workspace()
        name = _name(workspace, name)
        path = workspace.files[f"sync:{name}"]
        check_if_match(if_match, etag_of(path), what=f"sync {name}")
        _check_rename(workspace, name, None)
        change.delete(path)
    audit(request, principal, "sync.delete", name)
    return Response(status_code=204)


@router.post(
    "/syncs/{name}/run",
    status_code=202,
    summary="Run a sync now, in the background",
    response_model=RunAccepted,
)
def run_sync(principal: SyncRunner, name: str, studio: StudioDep, request: Request) -> JSONResponse:
    """Answers at once with the run's id; follow it at `GET /runs/{run_id}`."""
    name = _name(studio.workspace(), name)
    run_id = runs.start(studio, name)
    audit(request, principal, "sync.run", name, {"run_id": run_id})
    url = f"/api/v1/runs/{run_id}"
    body = RunAccepted(run_id=run_id, status="running", url=url)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": url})


@router.post("/syncs/{name}/dry-run", summary="Plan a sync without sending anything")
def dry_run(principal: SyncRunner, name: str, studio: StudioDep) -> dict[str, Any]:
    """Counts of what a run would add, change and remove, and (with data:view) samples of
    those rows. Recorded in the run history as a dry run."""
    name = _name(studio.workspace(), name)
    run_id = runs.claim(studio, name, dry_run=True)
    report = runs.execute(studio, name, run_id, options=RunOptions(dry_run=True))
    data = report.to_dict()
    if not principal.can("data:view", SOURCE_SCOPE):
        data["samples"] = {}
        data["rejected"] = []
    return data


@router.get("/syncs/{name}/runs", summary="A sync's runs, newest first")
def sync_runs(
    principal: SyncViewer, name: str, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[dict[str, Any]]:
    name = _name(studio.workspace(), name)
    start = offset_of(cursor)
    fetched = studio.store.runs(name, limit=start + limit + 1)
    records = [_run_dict(r, principal) for r in fetched]
    return page_of_fetched(records, start, limit)


@router.get("/runs/{run_id}", summary="A run: status, counts, timings, error")
def get_run(principal: RunViewer, run_id: str, studio: StudioDep) -> dict[str, Any]:
    return _run_dict(_run(studio, run_id), principal)


@router.get("/runs/{run_id}/logs", summary="A run's log lines, oldest first")
def run_logs(
    principal: RunViewer, run_id: str, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[LogLineView]:
    _run(studio, run_id)
    lines = [
        LogLineView(at=line.at, level=line.level_name, message=line.message)
        for line in studio.store.logs(run_id)
    ]
    return paginate(lines, limit, cursor)


@router.get("/syncs/{name}/rejected", summary="Rows the destination rejected in the last run")
def rejected(
    principal: DataViewer, name: str, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[RejectedRowView]:
    """From the planner's table in the warehouse: each key, the reason and how many
    runs have tried it. Rejected rows are retried by the next run."""
    workspace = studio.workspace()
    name = _name(workspace, name)
    start = offset_of(cursor)
    planner = Planner(studio.warehouse(), name, schema=workspace.settings.planner_schema)
    try:
        studio.warehouse().query(
            exp.select(column(KEY)).from_(planner.rejected.to_expression()).limit(0)
        )
    except WarehouseError:
        return Page(items=[])  # the sync has not run yet
    found = planner.rejected_rows(limit=min(start + limit + 1, MAX_REJECTED))
    rows = [RejectedRowView(key=r.key, reason=r.reason, attempts=r.attempts) for r in found]
    return page_of_fetched(rows, start, limit)


# -- helpers ------------------------------------------------------------------------------------


def _name(workspace: Workspace, name: str) -> str:
    if name in workspace.syncs:
        return name
    for known in workspace.syncs:
        path = workspace.files.get(f"sync:{known}")
        if path is not None and path.stem == name:
            return known
    raise UnknownReferenceError(
        f"there is no sync {name!r}", where="syncs", hint="GET /api/v1/syncs lists them"
    )


def _run(studio: Studio, run_id: str) -> RunRecord:
    record = studio.store.run(run_id)
    if record is None:
        raise UnknownReferenceError(
            f"there is no run {run_id!r}",
            where="runs",
            hint="GET /api/v1/syncs/{name}/runs lists a sync's runs",
        )
    return record


def _run_dict(record: RunRecord, principal: Principal) -> dict[str, Any]:
    data = record.to_dict()
    data["url"] = f"/api/v1/runs/{record.id}"
    if not principal.can("data:view", SOURCE_SCOPE):
        data["rejected"] = []  # the keys of rejected rows are row data
    return data


def _view(studio: Studio, workspace: Workspace, name: str, latest: RunRecord | None) -> SyncView:
    sync = workspace.syncs[name]
    path = workspace.files[f"sync:{name}"]
    return SyncView(
        name=name,
        description=sync.description,
        file=path.relative_to(studio.root).as_posix(),
        etag=etag_of(path),
        definition=sync.model_dump(mode="json", exclude_none=True),
        schedule=describe(sync.schedule),
        # Without the rejected keys: they are row data, shown by GET /runs/{id} to data:view.
        latest_run={**latest.to_dict(), "rejected": []} if latest is not None else None,
    )


def _respond(studio: Studio, name: str, response: Response) -> SyncView:
    workspace = studio.workspace()
    latest = studio.store.runs(name, limit=1)
    view = _view(studio, workspace, name, latest[0] if latest else None)
    response.headers["ETag"] = view.etag
    return view


def _yaml(sync: SyncDefinition) -> bytes:
    return dump_yaml(sync.model_dump(mode="json", exclude_none=True, exclude_defaults=True))


def _check(workspace: Workspace, sync: SyncDefinition, syncs: dict[str, SyncDefinition]) -> None:
    """The sync's destination and audience exist, and its schedule is valid."""
    where = f"sync {sync.name}"
    workspace.destination(sync.destination, where=where)
    if sync.audience is not None and sync.audience not in workspace.audiences:
        raise UnknownReferenceError(
            f"there is no audience {sync.audience!r}",
            where=f"{where} > audience",
            hint="audiences are: " + (", ".join(sorted(workspace.audiences)) or "(none)"),
        )
    validate_schedule(sync, syncs)


def _check_rename(workspace: Workspace, old: str, new: str | None) -> None:
    """A sync others follow (`schedule: {after: ...}`) keeps its name and is not deleted."""
    if new is not None and new in workspace.syncs:
        raise ConflictError(f"there is already a sync named {new!r}", where=f"sync {old}")
    followers = sorted(
        s.name
        for s in workspace.syncs.values()
        if getattr(s.schedule, "after", None) == old and s.name != old
    )
    if followers:
        raise ConflictError(
            f"the syncs {', '.join(followers)} run after sync {old!r}",
            where=f"sync {old}",
            hint="change their schedules first",
        )
