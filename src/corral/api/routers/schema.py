"""The schema: models, relationships, traits, column settings and value suggestions.

`schema.yaml` is one document with one ETag: `PUT /schema` replaces it whole, and
`PUT /schema/models/{model}/columns/{column}` changes one column's settings in it. Both
check the new schema's structure and its relationships before writing; `POST
/schema/check` compares it with the warehouse and compiles every audience.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from corral.api.deps import (
    IfMatch,
    SchemaEditor,
    SchemaViewer,
    StudioDep,
    audit,
)
from corral.api.documents import check_if_match, dump_yaml, etag_of
from corral.api.errors import ERROR_RESPONSES
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.studio import Studio
from corral.audiences.compiler import check_audiences
from corral.audiences.preview import jsonable
from corral.errors import UnknownReferenceError, WarehouseError
from corral.schema import ColumnSettings, SchemaDefinition, bind_schema, check_schema
from corral.schema.check import read_columns
from corral.schema.model import ModelDefinition
from corral.schema.suggestions import MAX_LIMIT as MAX_SUGGESTIONS
from corral.schema.suggestions import suggest_values
from corral.workspace.files import definition_error

router = APIRouter(tags=["schema"], responses=ERROR_RESPONSES)


class ModelSummary(BaseModel):
    name: str
    kind: Literal["parent", "related", "event"]
    table: str | None
    sql: str | None
    primary_key: str
    description: str | None = None


class ModelColumn(BaseModel):
    name: str
    type: str | None = Field(description="The type Corral uses: the setting, else the warehouse's")
    native_type: str | None = Field(description="The warehouse's own type; null if not found")
    in_warehouse: bool
    settings: ColumnSettings


class ModelDetail(ModelSummary):
    label_columns: list[str]
    time_column: str | None
    event: dict[str, Any] | None
    columns: list[ModelColumn]
    relations: list[str] = Field(description="Relations audiences can follow from this model")


class Problem(BaseModel):
    where: str
    message: str
    hint: str | None = None


class CheckResult(BaseModel):
    ok: bool
    problems: list[Problem]


class Suggestion(BaseModel):
    value: Any
    count: int


def _document(studio: Studio) -> dict[str, Any]:
    data: dict[str, Any] = studio.workspace().schema.model_dump(
        mode="json", by_alias=True, exclude_defaults=True
    )
    return data


@router.get("/schema", summary="The whole schema.yaml, as JSON")
def get_schema(principal: SchemaViewer, studio: StudioDep, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = etag_of(studio.root / "schema.yaml")
    return _document(studio)


@router.put("/schema", summary="Replace schema.yaml")
def put_schema(
    principal: SchemaEditor,
    body: dict[str, Any],
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """The body is the schema as `GET /schema` returns it (or as schema.yaml holds it)."""
    try:
        definition = SchemaDefinition.model_validate(body)
    except ValidationError as error:
        raise definition_error(error, "schema.yaml") from None
    _write_schema(studio, definition, if_match, response)
    audit(request, principal, "schema.update", "schema.yaml")
    return _document(studio)


@router.get("/schema/models", summary="Models of the schema")
def list_models(
    principal: SchemaViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ModelSummary]:
    definition = studio.workspace().schema
    models = [_summary(definition.parent, definition.parent.name)]
    models += [_summary(m, definition.parent.name) for m in definition.models]
    return paginate(models, limit, cursor)


@router.get("/schema/models/{name}", summary="A model, its columns and their settings")
def get_model(principal: SchemaViewer, name: str, studio: StudioDep) -> ModelDetail:
    """Columns as the warehouse reports them, merged with the settings in schema.yaml."""
    definition = studio.workspace().schema
    model = _model(definition, name)
    try:
        found = {c.name: c for c in read_columns(model, studio.warehouse())}
    except WarehouseError:
        found = {}
    columns = [
        ModelColumn(
            name=column.name,
            type=model.settings(column.name).type or column.type,
            native_type=column.native_type,
            in_warehouse=True,
            settings=model.settings(column.name),
        )
        for column in found.values()
    ]
    columns += [
        ModelColumn(name=n, type=s.type, native_type=None, in_warehouse=False, settings=s)
        for n, s in model.columns.items()
        if n not in found
    ]
    relations = studio.schema().relation_names(model.name) if found else []
    return ModelDetail(
        **_summary(model, definition.parent.name).model_dump(),
        label_columns=list(model.label_columns),
        time_column=model.time_column,
        event=model.event.model_dump(mode="json") if model.event else None,
        columns=columns,
        relations=relations,
    )


@router.put("/schema/models/{model}/columns/{column}", summary="Change one column's settings")
def put_column_settings(
    principal: SchemaEditor,
    model: str,
    column: str,
    body: ColumnSettings,
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ColumnSettings:
    """Writes the settings into schema.yaml; `If-Match` takes the ETag of `GET /schema`."""
    definition = studio.workspace().schema
    target = _model(definition, model)
    columns = dict(target.columns)
    if body == ColumnSettings():
        columns.pop(column, None)
    else:
        columns[column] = body
    changed = target.model_copy(update={"columns": columns})
    if definition.parent.name == model:
        updated = definition.model_copy(update={"parent": changed})
    else:
        models = tuple(changed if m.name == model else m for m in definition.models)
        updated = definition.model_copy(update={"models": models})
    _write_schema(studio, updated, if_match, response)
    audit(request, principal, "schema.update", f"{model}.{column}")
    return body


@router.get("/schema/relationships", summary="Relationships between models")
def list_relationships(
    principal: SchemaViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[dict[str, Any]]:
    relationships = [
        r.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        for r in studio.workspace().schema.relationships
    ]
    return paginate(relationships, limit, cursor)


@router.get("/schema/traits", summary="Traits of the parent model")
def list_traits(
    principal: SchemaViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[dict[str, Any]]:
    traits = [
        t.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        for t in studio.workspace().schema.traits
    ]
    return paginate(traits, limit, cursor)


@router.post("/schema/check", summary="Check the schema against the warehouse")
def check(
    principal: SchemaViewer,
    studio: StudioDep,
    unique_keys: Annotated[bool, Query(description="Also check primary keys (scans)")] = False,
) -> CheckResult:
    """Every problem at once: unknown tables and columns, join types, then audiences that
    do not compile (as `corral schema check`)."""
    workspace = studio.workspace()
    warehouse = studio.warehouse()
    problems = check_schema(workspace.schema, warehouse, unique_keys=unique_keys)
    if not problems:
        problems = check_audiences(
            studio.schema(),
            workspace.audiences,
            as_of=studio.as_of(),
            source_dialect=warehouse.dialect,
        )
    found = [Problem(where=p.where, message=p.message, hint=p.hint) for p in problems]
    return CheckResult(ok=not found, problems=found)


@router.get(
    "/schema/models/{model}/columns/{column}/values", summary="Value suggestions for a column"
)
def suggest(
    principal: SchemaViewer,
    model: str,
    column: str,
    studio: StudioDep,
    prefix: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS)] = 20,
) -> list[Suggestion]:
    """The most frequent values, most frequent first; never for hidden, pii or sensitive
    columns (422)."""
    found = studio.schema().model(model, where="schema")
    values = suggest_values(found, column, studio.warehouse(), prefix=prefix, limit=limit)
    return [Suggestion(value=jsonable(v), count=n) for v, n in values]


def _summary(model: ModelDefinition, parent: str) -> ModelSummary:
    kind: Literal["parent", "related", "event"] = (
        "parent" if model.name == parent else "event" if model.is_event_model else "related"
    )
    return ModelSummary(
        name=model.name,
        kind=kind,
        table=model.table,
        sql=model.sql,
        primary_key=model.primary_key,
        description=model.description,
    )


def _model(definition: SchemaDefinition, name: str) -> ModelDefinition:
    for model in (definition.parent, *definition.models):
        if model.name == name:
            return model
    raise UnknownReferenceError(
        f"there is no model {name!r}",
        where="schema",
        hint="models are: " + ", ".join(m.name for m in (definition.parent, *definition.models)),
    )


def _write_schema(
    studio: Studio, definition: SchemaDefinition, if_match: str | None, response: Response
) -> None:
    """Bind the schema to the warehouse (every table readable, every relationship's columns
    there), then write schema.yaml if it is still as read."""
    bind_schema(definition, studio.warehouse())
    path = studio.root / "schema.yaml"
    data = definition.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    with studio.changing() as change:
        check_if_match(if_match, etag_of(path), what="schema.yaml")
        change.write(path, dump_yaml(data))
    response.headers["ETag"] = etag_of(path)
