"""Pieces every adapter shares: type families, Arrow-to-SQL types, DDL trees, timing logs.

Nothing here talks to an engine. Each adapter renders the trees built here in its own
dialect, so a quoting or typing rule lives in one place for all of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp

from corral.errors import ConfigurationError
from corral.warehouse.base import ColumnInfo, TableRef

# Normalized type families, as documented on `ColumnInfo.type`.
FAMILIES = ("string", "integer", "decimal", "float", "boolean", "date", "timestamp", "other")

_STRING = {
    "varchar", "text", "string", "char", "character", "character varying", "bpchar", "name",
    "nvarchar", "nchar", "ntext", "uuid", "uniqueidentifier", "citext", "enum",
}  # fmt: skip
_INTEGER = {
    "tinyint", "smallint", "int", "integer", "bigint", "hugeint", "int1", "int2", "int4", "int8",
    "int16", "int32", "int64", "int128", "utinyint", "usmallint", "uinteger", "ubigint",
    "uhugeint", "byteint", "long", "short", "byte", "serial", "bigserial", "smallserial",
}  # fmt: skip
_DECIMAL = {"decimal", "numeric", "number", "bignumeric", "bigdecimal", "money", "smallmoney"}
_FLOAT = {
    "real", "float", "float4", "float8", "double", "double precision", "float32", "float64",
    "binary_float", "binary_double",
}  # fmt: skip
_BOOLEAN = {"boolean", "bool", "bit", "logical"}
_DATE = {"date"}
_TIMESTAMP_PREFIXES = ("timestamp", "datetime", "smalldatetime")
_PARAMS = re.compile(r"\(([^)]*)\)")


def type_family(native: str) -> str:
    """The normalized family of an engine's own type spelling.

    >>> type_family("DECIMAL(10,2)"), type_family("timestamp with time zone")
    ('decimal', 'timestamp')
    """
    text = native.strip().lower()
    params = _PARAMS.search(text)
    base = _PARAMS.sub("", text).strip()
    if base.startswith(_TIMESTAMP_PREFIXES):
        return "timestamp"
    if base == "number" and params and _is_zero_scale(params.group(1)):
        # Snowflake spells every integer NUMBER(38,0).
        return "integer"

    for family, names in (
        ("string", _STRING),
        ("integer", _INTEGER),
        ("decimal", _DECIMAL),
        ("float", _FLOAT),
        ("boolean", _BOOLEAN),
        ("date", _DATE),
    ):
        if base in names:
            return family
    return "other"


def _is_zero_scale(params: str) -> bool:
    parts = [p.strip() for p in params.split(",")]
    return len(parts) == 2 and parts[1] == "0"


def arrow_family(arrow_type: pa.DataType) -> str:
    """The normalized family of an Arrow type."""
    if pa.types.is_dictionary(arrow_type):
        return arrow_family(arrow_type.value_type)
    checks = (
        ("string", pa.types.is_string),
        ("string", pa.types.is_large_string),
        ("string", pa.types.is_string_view),
        ("integer", pa.types.is_integer),
        ("decimal", pa.types.is_decimal),
        ("float", pa.types.is_floating),
        ("boolean", pa.types.is_boolean),
        ("date", pa.types.is_date),
        ("timestamp", pa.types.is_timestamp),
    )
    for family, check in checks:
        if check(arrow_type):
            return family
    return "other"


def sql_type(arrow_type: pa.DataType, *, column: str) -> exp.DataType:
    """The generic SQL type for an Arrow column type; sqlglot spells it per dialect."""
    if pa.types.is_dictionary(arrow_type):
        return sql_type(arrow_type.value_type, column=column)
    if pa.types.is_decimal(arrow_type):
        return exp.DataType.build(f"DECIMAL({arrow_type.precision}, {arrow_type.scale})")
    if pa.types.is_timestamp(arrow_type):
        return exp.DataType.build("TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP")

    for check, name in _SIMPLE_SQL_TYPES:
        if check(arrow_type):
            return exp.DataType.build(name)
    raise ConfigurationError(
        f"column {column!r} has Arrow type {arrow_type}, which has no portable SQL type",
        hint="cast it to a string, number, boolean, date or timestamp column first",
    )


_SIMPLE_SQL_TYPES = (
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_int8, "SMALLINT"),
    (pa.types.is_int16, "SMALLINT"),
    (pa.types.is_int32, "INT"),
    (pa.types.is_int64, "BIGINT"),
    (pa.types.is_uint8, "SMALLINT"),
    (pa.types.is_uint16, "INT"),
    (pa.types.is_uint32, "BIGINT"),
    (pa.types.is_uint64, "DECIMAL(20, 0)"),
    (pa.types.is_float16, "REAL"),
    (pa.types.is_float32, "REAL"),
    (pa.types.is_float64, "DOUBLE"),
    (pa.types.is_string, "TEXT"),
    (pa.types.is_large_string, "TEXT"),
    (pa.types.is_string_view, "TEXT"),
    (pa.types.is_null, "TEXT"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_time, "TIME"),
    (pa.types.is_binary, "VARBINARY"),
    (pa.types.is_large_binary, "VARBINARY"),
)


def quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def create_table_statement(table: TableRef, schema: pa.Schema) -> exp.Create:
    """CREATE TABLE with one typed column per Arrow field, every name quoted."""
    columns = [
        exp.ColumnDef(this=quoted(field.name), kind=sql_type(field.type, column=field.name))
        for field in schema
    ]
    return exp.Create(
        this=exp.Schema(this=table.to_expression(), expressions=columns), kind="TABLE"
    )


def drop_table_statement(table: TableRef, *, if_exists: bool) -> exp.Drop:
    return exp.Drop(tables=[table.to_expression()], kind="TABLE", exists=if_exists)


def create_schema_statement(schema: str, *, catalog: str | None = None) -> exp.Create:
    namespace = exp.Table(db=quoted(schema), catalog=quoted(catalog) if catalog else None)
    return exp.Create(this=namespace, kind="SCHEMA", exists=True)


def drop_schema_statement(schema: str) -> exp.Drop:
    """DROP SCHEMA IF EXISTS ... CASCADE (tests and the demo clean up with it)."""
    return exp.Drop(tables=[exp.Table(db=quoted(schema))], kind="SCHEMA", exists=True, cascade=True)


def limit_zero(statement: exp.Expr) -> exp.Select:
    """The query wrapped so it returns its columns and no rows."""
    if not isinstance(statement, exp.Query):
        raise ConfigurationError(
            f"expected a query, got a {type(statement).__name__} statement",
            hint="query_columns takes a SELECT (or UNION) tree",
        )
    return exp.select("*").from_(statement.subquery("_corral_q")).limit(0)


def value_literal(value: object, sql_type_: exp.DataType) -> exp.Expression:
    """A Python value as an inert SQL literal of the column's type (for INSERT ... VALUES)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, bytes):
        return exp.HexString(this=value.hex())
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), sql_type_.copy())
    if isinstance(value, dt.date | dt.time):
        return exp.cast(exp.Literal.string(value.isoformat()), sql_type_.copy())
    raise ConfigurationError(f"cannot write a {type(value).__name__} value as a SQL literal")


def columns_from_arrow(schema: pa.Schema) -> list[ColumnInfo]:
    """ColumnInfo for an Arrow schema (used where the engine reports Arrow, not SQL, types)."""
    return [
        ColumnInfo(
            name=f.name, type=arrow_family(f.type), native_type=str(f.type), nullable=f.nullable
        )
        for f in schema
    ]


def rows_to_arrow(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    types: Sequence[pa.DataType | None] | None = None,
) -> pa.Table:
    """Build an Arrow table from DB-API rows; a None type lets Arrow infer it from the values."""
    hints = list(types) if types is not None else [None] * len(names)
    arrays = []
    for index, hint in enumerate(hints):
        values = [row[index] for row in rows]
        arrays.append(pa.array(values, type=hint) if hint is not None else pa.array(values))
    return pa.Table.from_arrays(arrays, names=list(names))


def first_line(sql: str) -> str:
    """The SQL's first line, cut to a readable length, for error messages."""
    line = sql.strip().splitlines()[0] if sql.strip() else ""
    return line if len(line) <= 160 else line[:157] + "..."


@contextmanager
def timed(logger: logging.Logger, engine: str, sql: str) -> Iterator[None]:
    """Log the SQL before it runs and the time it took after, both at DEBUG."""
    logger.debug("%s: running\n%s", engine, sql)
    started = time.perf_counter()
    try:
        yield
    finally:
        logger.debug("%s: done in %.1f ms", engine, (time.perf_counter() - started) * 1000)


def columns_statement(table: TableRef, *, default_schema: exp.Expression) -> exp.Select:
    """SELECT column_name, data_type, is_nullable FROM information_schema.columns for a table.

    `default_schema` is the engine's expression for the schema unqualified names resolve in
    (usually CURRENT_SCHEMA()); the names are inert literals, never pasted text.
    """
    schema = exp.Literal.string(table.schema) if table.schema else default_schema
    condition = exp.and_(
        exp.column("table_name").eq(exp.Literal.string(table.name)),
        exp.column("table_schema").eq(schema),
    )
    source = exp.table_("columns", db="information_schema")
    if table.catalog:
        # Each catalog (database) has its own information_schema on most engines.
        source = exp.table_("columns", db="information_schema", catalog=quoted(table.catalog))
        condition = exp.and_(
            condition, exp.column("table_catalog").eq(exp.Literal.string(table.catalog))
        )
    return (
        exp.select("column_name", "data_type", "is_nullable")
        .from_(source)
        .where(condition)
        .order_by("ordinal_position")
    )


def portable_arrow(data: pa.Table) -> pa.Table:
    """The table with types every engine loads: microsecond timestamps, plain strings.

    Nanosecond timestamps are cut to microseconds (no engine Corral targets keeps more),
    dictionary columns are decoded, and all-null columns become strings.
    """
    columns = []
    for column in data.columns:
        arrow_type = column.type
        if pa.types.is_dictionary(arrow_type):
            column = column.cast(arrow_type.value_type)
        elif pa.types.is_timestamp(arrow_type) and arrow_type.unit == "ns":
            column = column.cast(pa.timestamp("us", tz=arrow_type.tz), safe=False)
        elif pa.types.is_null(arrow_type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names)
