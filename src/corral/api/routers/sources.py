"""Sources: the workspace's warehouse, its connection test, its tables and columns.

A workspace has one source, `warehouse`, set by `warehouse:` in corral.yaml. Its URL is
shown with the password masked; changing it rewrites corral.yaml.
"""

from __future__ import annotations

import time
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlglot import exp

from corral.api.deps import (
    WAREHOUSE,
    IfMatch,
    SchemaViewer,
    SourceManager,
    StudioDep,
    audit,
)
from corral.api.documents import check_if_match, dump_yaml, etag_of
from corral.api.errors import ERROR_RESPONSES
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.errors import ConfigurationError, UnknownReferenceError, WarehouseError
from corral.sql.build import literal
from corral.warehouse import TableRef, Warehouse, connect
from corral.warehouse.dbapi import redact

router = APIRouter(tags=["sources"], responses=ERROR_RESPONSES)

# Catalogs that hold the engine's own tables, never customer data.
_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast", "sys")
MAX_TABLES = 1000


class Source(BaseModel):
    name: str
    dialect: str
    url: str = Field(description="The connection URL with its password masked")
    planner_schema: str


class SourceUpdate(BaseModel):
    url: str = Field(min_length=3, max_length=2000, description="A warehouse connection URL")
    planner_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Table(BaseModel):
    schema_name: str | None = Field(description="The table's schema (namespace)")
    name: str


class Column(BaseModel):
    name: str
    type: str = Field(
        description="string, integer, decimal, float, boolean, date, timestamp, other"
    )
    native_type: str
    nullable: bool


class ConnectionTest(BaseModel):
    ok: bool
    message: str
    dialect: str | None = None
    milliseconds: float
    tables: list[Table] = []


def _dialect_of(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    return {"postgres": "postgresql", "sqlserver": "mssql"}.get(scheme, scheme)


def _source(studio: StudioDep) -> Source:
    settings = studio.workspace().settings
    return Source(
        name=WAREHOUSE,
        dialect=_dialect_of(settings.warehouse),
        url=redact(settings.warehouse),
        planner_schema=settings.planner_schema,
    )


@router.get("/sources", summary="The workspace's sources")
def list_sources(
    principal: SchemaViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[Source]:
    return paginate([_source(studio)], limit, cursor)


@router.get("/sources/warehouse", summary="The warehouse source")
def get_source(principal: SchemaViewer, studio: StudioDep, response: Response) -> Source:
    response.headers["ETag"] = etag_of(studio.root / "corral.yaml")
    return _source(studio)


@router.put("/sources/warehouse", summary="Change the warehouse connection")
def put_source(
    principal: SourceManager,
    body: SourceUpdate,
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Source:
    path = studio.root / "corral.yaml"
    with studio.changing() as change:
        check_if_match(if_match, etag_of(path), what="source warehouse")
        data: dict[str, Any] = yaml.safe_load(path.read_bytes()) or {}
        data["warehouse"] = body.url
        if body.planner_schema is not None:
            data["planner_schema"] = body.planner_schema
        change.write(path, dump_yaml(data))
    studio.forget_warehouse()
    audit(request, principal, "source.update", WAREHOUSE, {"url": redact(body.url)})
    response.headers["ETag"] = etag_of(path)
    return _source(studio)


@router.post("/sources/warehouse/test", summary="Test the warehouse connection")
def test_source(principal: SourceManager, studio: StudioDep) -> ConnectionTest:
    """Connects with the workspace's URL (a new connection), runs SELECT 1 and lists tables."""
    started = time.perf_counter()
    url = studio.workspace().warehouse_url()
    # DuckDB opens a file once per process, so the test reuses the studio's connection.
    shared = url.startswith("duckdb://")
    try:
        warehouse = studio.warehouse() if shared else connect(url)
        try:
            warehouse.query(exp.select(exp.Literal.number(1).as_("one")))
            tables = _tables(warehouse, studio.workspace().settings.planner_schema)
        finally:
            if not shared:
                warehouse.close()
    except (WarehouseError, ConfigurationError) as error:
        return ConnectionTest(
            ok=False, message=str(error), milliseconds=_since(started), dialect=_dialect_of(url)
        )
    return ConnectionTest(
        ok=True,
        message=f"connected; {len(tables)} tables",
        dialect=warehouse.dialect,
        milliseconds=_since(started),
        tables=tables,
    )


@router.get("/sources/warehouse/tables", summary="Tables in the warehouse")
def list_tables(
    principal: SchemaViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[Table]:
    tables = _tables(studio.warehouse(), studio.workspace().settings.planner_schema)
    return paginate(tables, limit, cursor)


@router.get("/sources/warehouse/tables/{table}/columns", summary="Columns of a table")
def table_columns(
    principal: SchemaViewer, table: str, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[Column]:
    """`table` may be qualified by its schema: `analytics.users`."""
    schema_name, _, name = table.rpartition(".")
    ref = TableRef(name, schema_name or None)
    try:
        found = studio.warehouse().columns(ref)
    except WarehouseError:
        raise UnknownReferenceError(
            f"the warehouse has no table {table!r}",
            where=f"source {WAREHOUSE}",
            hint="GET /api/v1/sources/warehouse/tables lists them",
        ) from None
    columns = [Column(name=c.name, type=c.type, native_type=c.native_type, nullable=c.nullable)
               for c in found]  # fmt: skip
    return paginate(columns, limit, cursor)


def _tables(warehouse: Warehouse, planner_schema: str) -> list[Table]:
    """Tables and views the warehouse's information_schema lists, outside system schemas
    and Corral's planner schema."""
    hidden = [literal(s) for s in (*_SYSTEM_SCHEMAS, planner_schema)]
    query = (
        exp.select(exp.column("table_schema"), exp.column("table_name"))
        .from_(exp.table_("tables", db="information_schema"))
        .where(
            exp.not_(exp.In(this=exp.Lower(this=exp.column("table_schema")), expressions=hidden))
        )
        .order_by(exp.column("table_schema"), exp.column("table_name"))
        .limit(MAX_TABLES)
    )
    rows = warehouse.query(query).to_pylist()
    return [Table(schema_name=r["table_schema"], name=r["table_name"]) for r in rows]


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
