"""Every demo audience gives the same members on DuckDB, PostgreSQL and Spark.

The demo warehouse (a few thousand users) is generated once in DuckDB, copied table by
table into PostgreSQL and Spark, and each demo audience is compiled for each engine and
run there. Member sets must be identical, and not trivially empty.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from corral.audiences.compiler import AudienceCompiler
from corral.demo.generate import DEMO_AS_OF, generate_into
from corral.schema import SchemaDefinition, bind_schema
from corral.warehouse import DuckDBWarehouse
from corral.warehouse._common import drop_schema_statement
from corral.warehouse.base import TableRef, Warehouse
from tests.helpers.demo_schema import demo_workspace, qualified_schema

USERS = 3_000
WORKSPACE = demo_workspace()
DEMO_SCHEMA = f"corral_demo_{os.getpid()}"


@pytest.fixture(scope="module")
def demo_tables() -> dict[str, pa.Table]:
    con = duckdb.connect()
    stats = generate_into(con, users=USERS, seed=11)
    tables = {name: con.table(name).to_arrow_table() for name in stats.tables}
    con.close()
    return tables


@pytest.fixture(scope="module")
def duckdb_members(demo_tables: dict[str, pa.Table]) -> dict[str, set[int]]:
    warehouse = DuckDBWarehouse()
    load(warehouse, demo_tables, None)
    return members_by_audience(warehouse, None)


def load(warehouse: Warehouse, tables: dict[str, pa.Table], schema: str | None) -> None:
    if schema is not None:
        warehouse.ensure_schema(schema)
    for name, table in tables.items():
        warehouse.create_table(TableRef(name, schema), table, replace=True)


def qualified(schema: str | None) -> SchemaDefinition:
    """The demo schema with every table placed in `schema`."""
    return WORKSPACE.schema if schema is None else qualified_schema(WORKSPACE.schema, schema)


def members_by_audience(warehouse: Warehouse, schema: str | None) -> dict[str, set[int]]:
    bound = bind_schema(qualified(schema), warehouse)
    compiler = AudienceCompiler(
        bound, DEMO_AS_OF, WORKSPACE.audiences, source_dialect=warehouse.dialect
    )
    result = {}
    for name, audience in WORKSPACE.audiences.items():
        rows = warehouse.query(compiler.members(audience))
        result[name] = set(rows.column(0).to_pylist())
    return result


def test_demo_audiences_are_not_trivial(duckdb_members: dict[str, set[int]]) -> None:
    for name, found in duckdb_members.items():
        assert 0 < len(found) < USERS, f"{name}: {len(found)} members of {USERS}"


def test_postgres_agrees_with_duckdb(
    postgres_warehouse: Any, demo_tables: dict[str, pa.Table], duckdb_members: dict[str, set[int]]
) -> None:
    load(postgres_warehouse, demo_tables, DEMO_SCHEMA)
    try:
        assert members_by_audience(postgres_warehouse, DEMO_SCHEMA) == duckdb_members
    finally:
        postgres_warehouse.execute(drop_schema_statement(DEMO_SCHEMA))


def test_spark_agrees_with_duckdb(
    spark_warehouse: Any, demo_tables: dict[str, pa.Table], duckdb_members: dict[str, set[int]]
) -> None:
    load(spark_warehouse, demo_tables, DEMO_SCHEMA)
    try:
        assert members_by_audience(spark_warehouse, DEMO_SCHEMA) == duckdb_members
    finally:
        spark_warehouse.execute(drop_schema_statement(DEMO_SCHEMA))
