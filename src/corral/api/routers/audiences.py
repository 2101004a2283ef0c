"""Audiences: the files in `audiences/`, their versions, previews, members and SQL.

An audience is saved as YAML in `audiences/<slug of its name>.yaml` and, on every save,
appended to its version history in the metadata store. A save compiles the audience
against the schema first, so an unknown column is a 422 before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from sqlglot import exp

from corral.api.deps import (
    SOURCE_SCOPE,
    AudienceEditor,
    AudienceViewer,
    DataViewer,
    IfMatch,
    StudioDep,
    audit,
    author,
)
from corral.api.documents import check_if_match, dump_yaml, etag_of, etag_of_bytes, new_file
from corral.api.errors import ERROR_RESPONSES
from corral.api.pagination import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    offset_of,
    paginate,
)
from corral.api.studio import Studio
from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import AudienceCondition, AudienceDefinition, Group
from corral.audiences.dimensions import PRIVATE
from corral.audiences.plan import Plan
from corral.audiences.preview import jsonable, preview
from corral.audiences.samples import REDACTED, sample_dimensions
from corral.errors import (
    ConfigurationError,
    ConflictError,
    DefinitionError,
    PermissionDeniedError,
    UnknownReferenceError,
    WarehouseError,
)
from corral.sql import canonical_dialect, render
from corral.sql.build import alias, column, literal
from corral.store.sizes import definition_hash
from corral.workspace import Workspace
from corral.workspace.files import definition_error

router = APIRouter(tags=["audiences"], responses=ERROR_RESPONSES)
MAX_SAMPLE = 100
_KEY = "__corral_key"


class SyncUse(BaseModel):
    name: str
    destination: str
    status: str | None = Field(description="Status of its latest run; null if it never ran")
    finished_at: datetime | None = None


class AudienceSummary(BaseModel):
    name: str
    description: str | None
    file: str
    etag: str
    conditions: int
    size: int | None = Field(
        description="Members when last measured (on this definition if it ever was), "
        "else null: never measured"
    )
    parent_rows: int | None = Field(default=None, description="Parent rows at that measure")
    sized_at: datetime | None = Field(default=None, description="When that size was measured")
    size_as_of: datetime | None = Field(
        default=None, description="The as-of time relative windows were measured from"
    )
    size_stale: bool = Field(
        default=False,
        description="True when the size was measured on another definition than the "
        "current one (the audience, or one it refers to, changed since)",
    )
    size_source: str | None = Field(
        default=None, description="Who measured it: studio, cli, demo or sync"
    )
    syncs: list[SyncUse]


class MeasuredSize(BaseModel):
    size: int
    parent_rows: int
    as_of: datetime = Field(description="The as-of time relative windows were measured from")
    measured_at: datetime
    source: str = Field(description="studio, cli, demo or sync")
    current: bool = Field(description="Measured on the audience's current definition")


class AudienceDetail(BaseModel):
    name: str
    description: str | None
    file: str
    etag: str
    definition: dict[str, Any] = Field(description="The condition tree, canonical form")
    yaml: str = Field(description="The file as saved")
    used_by: list[str] = Field(description="Syncs and audiences that refer to this audience")


class Version(BaseModel):
    audience: str
    version: int
    action: str
    author: str | None
    saved_at: datetime
    definition: str = Field(description="The YAML saved")


class LivePreviewRequest(BaseModel):
    definition: AudienceDefinition
    blocks: bool = True
    as_of: datetime | None = None


class PreviewRequest(BaseModel):
    breakdowns: list[str] = Field(default=[], max_length=10)
    sample: int = Field(default=0, ge=0, le=MAX_SAMPLE)
    sample_columns: list[str] = Field(default=[], max_length=30)
    reveal: bool = Field(default=False, description="Show pii and sensitive values (data:view)")
    blocks: bool = True
    as_of: datetime | None = None


class Members(BaseModel):
    columns: list[str]
    redacted: list[str]
    items: list[dict[str, Any]]
    next_cursor: str | None = None


class AudienceSql(BaseModel):
    audience: str
    dialect: str
    sql: str


# -- list, read, create, change, delete -----------------------------------------------------------


@router.get("/audiences/schema", summary="JSON Schema of an audience definition")
def condition_schema(
    principal: AudienceViewer,
) -> dict[str, Any]:
    return AudienceDefinition.model_json_schema()


@router.get("/audiences", summary="Audiences, with their sizes and the syncs that use them")
def list_audiences(
    principal: AudienceViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[AudienceSummary]:
    """Each audience's latest measured size (kept in the metadata store by every preview
    in the studio, `corral audience preview` and `corral demo`); `size_stale` tells a
    size measured on an older definition."""
    workspace = studio.workspace()
    latest = studio.store.latest_runs()
    hashes = studio.definition_hashes()
    sizes = studio.sizes.latest(hashes)
    items = []
    for name in sorted(workspace.audiences):
        audience, path = workspace.audiences[name], workspace.audience_files[name]
        etag = etag_of(path)
        known = sizes.get(name)
        uses = [
            SyncUse(
                name=s.name,
                destination=s.destination,
                status=latest[s.name].status.value if s.name in latest else None,
                finished_at=latest[s.name].finished_at if s.name in latest else None,
            )
            for s in workspace.syncs.values()
            if s.audience == name
        ]
        items.append(
            AudienceSummary(
                name=name,
                description=audience.description,
                file=path.relative_to(studio.root).as_posix(),
                etag=etag,
                conditions=len(audience.conditions),
                size=known.size if known else None,
                parent_rows=known.parent_rows if known else None,
                sized_at=known.measured_at if known else None,
                size_as_of=known.as_of if known else None,
                size_stale=known is not None and known.definition_hash != hashes[name],
                size_source=known.source.value if known else None,
                syncs=uses,
            )
        )
    return paginate(items, limit, cursor)


@router.post("/audiences", status_code=201, summary="Create an audience")
def create_audience(
    principal: AudienceEditor,
    body: AudienceDefinition,
    studio: StudioDep,
    request: Request,
    response: Response,
) -> AudienceDetail:
    data = dump_yaml(compact(body))
    with studio.changing() as change:
        workspace = studio.workspace()
        if body.name in workspace.audiences:
            raise ConflictError(
                f"there is already an audience named {body.name!r}",
                where=f"audience {body.name}",
                hint="pick another name, or PUT /api/v1/audiences/{name} to change it",
            )
        _compiles(studio, body, {**workspace.audiences, body.name: body})
        path = new_file(studio.root / "audiences", body.name)
        change.write(path, data)
    studio.versions.append(body.name, data.decode(), author=author(principal), action="create")
    audit(request, principal, "audience.create", body.name)
    return _detail(studio, body.name, response)


@router.get("/audiences/{name}", summary="An audience")
def get_audience(
    principal: AudienceViewer, name: str, studio: StudioDep, response: Response
) -> AudienceDetail:
    return _detail(studio, _name(studio.workspace(), name), response)


@router.put("/audiences/{name}", summary="Change (or rename) an audience")
def put_audience(
    principal: AudienceEditor,
    name: str,
    body: AudienceDefinition,
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> AudienceDetail:
    data = dump_yaml(compact(body))
    with studio.changing() as change:
        workspace = studio.workspace()
        name = _name(workspace, name)
        path = workspace.audience_files[name]
        check_if_match(if_match, etag_of(path), what=f"audience {name}")
        renamed = body.name != name
        if renamed:
            _check_rename(workspace, name, body.name)
        audiences = {n: a for n, a in workspace.audiences.items() if n != name}
        _compiles(studio, body, {**audiences, body.name: body})
        if renamed:
            change.delete(path)
            path = new_file(studio.root / "audiences", body.name)
        change.write(path, data)
    if renamed:
        studio.versions.rename(name, body.name)
        studio.sizes.rename(name, body.name)
    studio.versions.append(body.name, data.decode(), author=author(principal), action="update")
    audit(
        request,
        principal,
        "audience.update",
        body.name,
        {"renamed_from": name} if renamed else None,
    )
    return _detail(studio, body.name, response)


@router.delete("/audiences/{name}", status_code=204, summary="Delete an audience")
def delete_audience(
    principal: AudienceEditor,
    name: str,
    studio: StudioDep,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Refused (409) while a sync or another audience refers to it."""
    with studio.changing() as change:
        workspace = studio.workspace()
        name = _name(workspace, name)
        path = workspace.audience_files[name]
        check_if_match(if_match, etag_of(path), what=f"audience {name}")
        users = _used_by(workspace, name)
        if users:
            raise ConflictError(
                f"audience {name!r} is used by {', '.join(users)}",
                where=f"audience {name}",
                hint="change or delete those first",
            )
        text = path.read_text(encoding="utf-8")
        change.delete(path)
    studio.versions.append(name, text, author=author(principal), action="delete")
    audit(request, principal, "audience.delete", name)
    return Response(status_code=204)


# -- versions ---------------------------------------------------------------------------------


@router.get("/audiences/{name}/versions", summary="An audience's saved versions, newest first")
def list_versions(
    principal: AudienceViewer,
    name: str,
    studio: StudioDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Version]:
    """Also for a deleted audience, by its exact name."""
    start = offset_of(cursor)
    found = studio.versions.list(name, limit=limit + 1, offset=start)
    if not found and start == 0:
        _name(studio.workspace(), name)
    more = len(found) > limit
    return Page(
        items=[Version(**asdict(v)) for v in found[:limit]],
        next_cursor=encode_cursor({"o": start + limit}) if more else None,
    )


@router.post("/audiences/{name}/versions/{version}/restore", summary="Make an old version current")
def restore_version(
    principal: AudienceEditor,
    name: str,
    version: int,
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> AudienceDetail:
    """Writes the version's YAML back (recreating a deleted audience) and saves it as the
    newest version. `If-Match` is checked when given."""
    saved = studio.versions.get(name, version)
    if saved is None:
        raise UnknownReferenceError(
            f"audience {name!r} has no version {version}",
            where=f"audience {name}",
            hint=f"GET /api/v1/audiences/{name}/versions lists them",
        )
    data = saved.definition.encode()
    with studio.changing() as change:
        workspace = studio.workspace()
        path = workspace.audience_files.get(name)
        if path is not None and if_match is not None:
            check_if_match(if_match, etag_of(path), what=f"audience {name}")
        restored = _parse(data, f"audience {name} version {version}")
        _compiles(studio, restored, {**workspace.audiences, name: restored})
        change.write(path or new_file(studio.root / "audiences", name), data)
    studio.versions.append(name, saved.definition, author=author(principal), action="restore")
    audit(request, principal, "audience.restore", name, {"version": version})
    return _detail(studio, name, response)


@router.get("/audiences/{name}/sizes", summary="An audience's measured sizes, newest first")
def list_sizes(
    principal: AudienceViewer,
    name: str,
    studio: StudioDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[MeasuredSize]:
    """Every size measured by a preview, `corral audience preview` or `corral demo`;
    `current` is false for sizes measured on an older definition."""
    workspace = studio.workspace()
    name = _name(workspace, name)
    now = definition_hash(workspace.audiences[name], workspace.audiences)
    return [
        MeasuredSize(
            size=s.size,
            parent_rows=s.parent_rows,
            as_of=s.as_of,
            measured_at=s.measured_at,
            source=s.source.value,
            current=s.definition_hash == now,
        )
        for s in studio.sizes.history(name, limit=limit)
    ]


# -- previews, members, SQL -------------------------------------------------------------------


@router.post("/audiences/preview", summary="Live size of an unsaved definition")
def live_preview(
    principal: AudienceViewer, body: LivePreviewRequest, studio: StudioDep
) -> dict[str, Any]:
    """Size, parent rows, the size of each top-level condition and timings; no rows.

    When the definition is a saved audience's, unchanged, its size is recorded as that
    audience's (see GET /audiences)."""
    workspace = studio.workspace()
    definition = body.definition
    result = preview(
        definition,
        studio.schema(),
        studio.warehouse(),
        audiences={**workspace.audiences, definition.name: definition},
        as_of=body.as_of or studio.as_of(),
        time_zone=workspace.settings.time_zone,
        blocks=body.blocks,
    )
    saved = workspace.audiences.get(definition.name)
    if saved is not None and body.as_of is None:
        measured = definition_hash(definition, workspace.audiences)
        if measured == definition_hash(saved, workspace.audiences):
            studio.record_size(definition.name, result, measured)
    return result.to_dict()


@router.post("/audiences/{name}/preview", summary="Preview an audience")
def preview_audience(
    principal: AudienceViewer, name: str, body: PreviewRequest, studio: StudioDep
) -> dict[str, Any]:
    """Size, block sizes, breakdowns and a sample. A sample, and `reveal`, need data:view;
    pii and sensitive values are redacted in samples unless revealed. A preview at the
    default as-of time records the audience's size (see GET /audiences)."""
    if (body.sample or body.reveal) and not principal.can("data:view", SOURCE_SCOPE):
        raise PermissionDeniedError(
            "a sample of members (or revealing values) needs the data:view permission",
            where=f"audience {name}",
            hint="preview without `sample` and `reveal`, or ask an admin for data:view",
        )
    workspace = studio.workspace()
    name = _name(workspace, name)
    result = preview(
        workspace.audiences[name],
        studio.schema(),
        studio.warehouse(),
        audiences=workspace.audiences,
        as_of=body.as_of or studio.as_of(),
        time_zone=workspace.settings.time_zone,
        blocks=body.blocks,
        breakdowns=body.breakdowns,
        sample=body.sample,
        sample_columns=body.sample_columns,
        reveal=body.reveal,
    )
    if body.as_of is None:
        measured = definition_hash(workspace.audiences[name], workspace.audiences)
        studio.record_size(name, result, measured)
    return result.to_dict()


@router.get("/audiences/{name}/members", summary="Members of an audience, by primary key")
def members(
    principal: DataViewer,
    name: str,
    studio: StudioDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    columns: Annotated[
        str | None, Query(max_length=2000, description="Extra columns or traits: a,b,c")
    ] = None,
    reveal: Annotated[bool, Query(description="Show pii and sensitive values")] = False,
) -> Members:
    """The primary key, the label columns, then `columns`; private values are replaced by
    a mask in the warehouse unless `reveal`."""
    workspace = studio.workspace()
    name = _name(workspace, name)
    schema = studio.schema()
    warehouse = studio.warehouse()
    compiler = AudienceCompiler(
        schema,
        studio.as_of(),
        audiences=workspace.audiences,
        time_zone=workspace.settings.time_zone,
        source_dialect=warehouse.dialect,
    )
    plan = Plan.build(compiler, workspace.audiences[name], with_blocks=False)
    chosen = [c.strip() for c in (columns or "").split(",") if c.strip()]
    dimensions = sample_dimensions(plan, chosen)
    redacted = [d.name for d in dimensions if d.privacy in PRIVATE and not reveal]
    selected = [
        alias(literal(REDACTED) if d.name in redacted else d.value.copy(), d.name)
        for d in dimensions
    ]
    joins = [j for d in dimensions if d.name not in redacted for j in d.joins]
    key = column(schema.parent.primary_key, plan.alias)
    # The key pages the list even when it is shown redacted.
    query = plan.members_from(exp.select(*selected, alias(key.copy(), _KEY)), joins)
    if cursor is not None:
        query = query.where(exp.GT(this=key.copy(), expression=literal(_key_of(cursor))))
    query = query.order_by(key, copy=False).limit(limit + 1, copy=False)
    rows = warehouse.query(query).to_pylist()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][_KEY] if rows and more else None
    return Members(
        columns=[d.name for d in dimensions],
        redacted=redacted,
        items=[{k: jsonable(v) for k, v in row.items() if k != _KEY} for row in rows],
        next_cursor=encode_cursor({"k": jsonable(last)}) if more else None,
    )


@router.get("/audiences/{name}/sql", summary="The SQL that selects an audience's members")
def audience_sql(
    principal: AudienceViewer,
    name: str,
    studio: StudioDep,
    dialect: Annotated[
        str | None, Query(max_length=40, description="Target dialect; default the warehouse's")
    ] = None,
) -> AudienceSql:
    workspace = studio.workspace()
    name = _name(workspace, name)
    warehouse = studio.warehouse()
    try:
        target = canonical_dialect(dialect) if dialect else warehouse.dialect
    except ConfigurationError as error:
        raise DefinitionError(error.message, where="dialect", hint=error.hint) from None
    compiler = AudienceCompiler(
        studio.schema(),
        studio.as_of(),
        audiences=workspace.audiences,
        time_zone=workspace.settings.time_zone,
        source_dialect=warehouse.dialect,
    )
    members = compiler.members(workspace.audiences[name])
    return AudienceSql(audience=name, dialect=target, sql=render(members, target, pretty=True))


# -- helpers ----------------------------------------------------------------------------------


def compact(definition: AudienceDefinition) -> dict[str, Any]:
    """The definition as YAML should hold it: canonical, without the defaults (each
    condition keeps its `kind`, which the canonical form needs)."""
    data: dict[str, Any] = _compact_node(definition)
    return data


def _compact_node(node: Any) -> Any:
    if isinstance(node, BaseModel):
        data = {}
        for field_name, info in type(node).model_fields.items():
            value = getattr(node, field_name)
            if field_name != "kind" and value == info.get_default(call_default_factory=True):
                continue
            data[field_name] = _compact_node(value)
        return data
    if isinstance(node, list | tuple):
        return [_compact_node(v) for v in node]
    return jsonable(node)


def _name(workspace: Workspace, name: str) -> str:
    """An audience's name from its name or its file name (without .yaml)."""
    if name in workspace.audiences:
        return name
    for known, path in workspace.audience_files.items():
        if path.stem == name:
            return known
    raise UnknownReferenceError(
        f"there is no audience {name!r}",
        where="audiences",
        hint="GET /api/v1/audiences lists them",
    )


def _detail(studio: Studio, name: str, response: Response) -> AudienceDetail:
    workspace = studio.workspace()
    path = workspace.audience_files[name]
    data = path.read_bytes()
    etag = etag_of_bytes(data)
    response.headers["ETag"] = etag
    audience = workspace.audiences[name]
    return AudienceDetail(
        name=name,
        description=audience.description,
        file=path.relative_to(studio.root).as_posix(),
        etag=etag,
        definition=audience.model_dump(mode="json"),
        yaml=data.decode("utf-8"),
        used_by=_used_by(workspace, name),
    )


def _used_by(workspace: Workspace, name: str) -> list[str]:
    users = [f"sync {s.name!r}" for s in workspace.syncs.values() if s.audience == name]
    users += [
        f"audience {other!r}"
        for other, audience in workspace.audiences.items()
        if other != name and name in _referenced(audience.conditions)
    ]
    return users


def _referenced(conditions: Any) -> set[str]:
    found: set[str] = set()
    for condition in conditions:
        if isinstance(condition, AudienceCondition):
            found.add(condition.audience)
        elif isinstance(condition, Group):
            found |= _referenced(condition.conditions)
    return found


def _check_rename(workspace: Workspace, old: str, new: str) -> None:
    if new in workspace.audiences:
        raise ConflictError(
            f"there is already an audience named {new!r}",
            where=f"audience {old}",
            hint="pick another name",
        )
    users = _used_by(workspace, old)
    if users:
        raise ConflictError(
            f"audience {old!r} cannot be renamed while {', '.join(users)} refer to it by name",
            where=f"audience {old}",
            hint="keep the name, or change those first",
        )


def _compiles(
    studio: Studio, definition: AudienceDefinition, audiences: Mapping[str, AudienceDefinition]
) -> None:
    """Compile the audience against the bound schema; a warehouse that cannot be reached
    only skips this check (the file is still valid YAML and a valid tree)."""
    try:
        schema = studio.schema()
        dialect = studio.warehouse().dialect
    except (WarehouseError, ConfigurationError):
        return
    compiler = AudienceCompiler(
        schema,
        studio.as_of(),
        audiences=audiences,
        time_zone=studio.workspace().settings.time_zone,
        source_dialect=dialect,
    )
    compiler.members(definition)


def _parse(data: bytes, where: str) -> AudienceDefinition:
    try:
        return AudienceDefinition.model_validate(yaml.safe_load(data) or {})
    except ValidationError as error:
        raise definition_error(error, where) from None


def _key_of(cursor: str) -> Any:
    data = decode_cursor(cursor)
    key = data.get("k")
    if "k" not in data or not isinstance(key, str | int | float) or isinstance(key, bool):
        raise DefinitionError(
            "the cursor does not belong to a list of members",
            where="cursor",
            hint="pass `next_cursor` from the previous page unchanged",
        )
    return key
