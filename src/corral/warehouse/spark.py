"""Spark SQL: a local (or given) SparkSession, and Databricks SQL warehouses.

`SparkWarehouse` runs SQL on a SparkSession in this process. Without a session it starts
a local one (see `local_session`) whose tables live in a temporary warehouse directory,
removed on `close()`. Sessions run in UTC with ANSI mode on: Spark 4's default and
Databricks', so an invalid cast or an overflow fails instead of quietly becoming NULL,
and SQL that passes here behaves the same on Databricks.

`DatabricksWarehouse` reaches a Databricks SQL warehouse through databricks-sql-connector
(`pip install 'corral[databricks]'`) and renders the same "spark" dialect.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from sqlglot import exp

from corral.errors import ConfigurationError
from corral.sql import render
from corral.warehouse._common import (
    columns_from_arrow,
    create_schema_statement,
    drop_table_statement,
    limit_zero,
    portable_arrow,
    timed,
    type_family,
)
from corral.warehouse._errors import warehouse_error
from corral.warehouse.base import ColumnInfo, TableRef
from corral.warehouse.dbapi import DBAPIWarehouse, import_driver, parse_url, require

logger = logging.getLogger(__name__)

# Spark error conditions, by the kind of fix they need.
_CONDITION_KINDS = {
    "TABLE_OR_VIEW_NOT_FOUND": "missing",
    "SCHEMA_NOT_FOUND": "missing",
    "UNRESOLVED_COLUMN": "missing",
    "TABLE_OR_VIEW_ALREADY_EXISTS": "exists",
    "PARSE_SYNTAX_ERROR": "syntax",
}
# The Python-side loggers pyspark uses to repeat every SQL error with its JVM stack.
_QUERY_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError as error:
        raise ConfigurationError(
            "Spark support needs pyspark (and a Java runtime)",
            hint="pip install 'corral[spark]'",
        ) from error
    return pyspark.sql


def local_session(
    master: str = "local[2]", *, warehouse_dir: str | None = None, app_name: str = "corral"
) -> Any:
    """A local SparkSession set up the way Corral expects (UTC, ANSI, few partitions, no UI).

    If a session is already active in this process, Spark returns it and only the runtime
    settings below apply to it.
    """
    sql = _pyspark()
    builder = (
        sql.SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.catalogImplementation", "in-memory")
    )
    if warehouse_dir is not None:
        builder = builder.config("spark.sql.warehouse.dir", warehouse_dir)
    session = builder.getOrCreate()

    for key, value in (
        ("spark.sql.shuffle.partitions", "2"),
        ("spark.sql.session.timeZone", "UTC"),
        ("spark.sql.ansi.enabled", "true"),
        ("spark.sql.execution.arrow.pyspark.enabled", "true"),
    ):
        session.conf.set(key, value)
    session.sparkContext.setLogLevel("ERROR")
    # Corral re-raises every Spark error as a WarehouseError carrying the same message.
    for name in _QUERY_CONTEXT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return session


class SparkWarehouse:
    """Spark SQL on a SparkSession.

    Without `session`, the session already active in this process is used as if it had
    been given; if there is none, a local one is started on `master`, and `close()` stops
    it and removes its warehouse directory. A session Corral did not start is never stopped.
    """

    dialect = "spark"

    def __init__(self, session: Any = None, *, master: str = "local[2]") -> None:
        self._owned_dir: str | None = None
        if session is None:
            session = _pyspark().SparkSession.getActiveSession()
        if session is None:
            self._owned_dir = tempfile.mkdtemp(prefix="corral-spark-")
            session = local_session(master, warehouse_dir=self._owned_dir)
        self.session = session

    def __repr__(self) -> str:
        return f"SparkWarehouse(master={self.session.sparkContext.master!r})"

    def query(self, statement: exp.Expr) -> pa.Table:
        sql = render(statement, self.dialect)
        with _errors(sql), timed(logger, "spark", sql):
            table: pa.Table = self.session.sql(sql).toArrow()
        return table

    def stream(self, statement: exp.Expr, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        # Rows come to the driver one partition at a time, so memory holds one partition
        # and one batch, never the whole result.
        sql = render(statement, self.dialect)
        with _errors(sql), timed(logger, "spark stream", sql):
            frame = self.session.sql(sql)
            schema = _arrow_schema(frame.schema)
            converters = [_converter(f.dataType) for f in frame.schema.fields]
            rows: list[Sequence[Any]] = []
            for row in frame.toLocalIterator():
                rows.append(row)
                if len(rows) == batch_size:
                    yield _record_batch(rows, schema, converters)
                    rows = []
            if rows:
                yield _record_batch(rows, schema, converters)

    def execute(self, statement: exp.Expr) -> None:
        sql = render(statement, self.dialect)
        with _errors(sql), timed(logger, "spark", sql):
            self.session.sql(sql)

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        name = render(table.to_expression(), self.dialect)
        with _errors(f"columns of {name}"):
            fields = self.session.table(name).schema.fields
        return [_column(f.name, f.dataType.simpleString(), f.nullable) for f in fields]

    def query_columns(self, statement: exp.Expr) -> list[ColumnInfo]:
        sql = render(statement, self.dialect)
        with _errors(sql):
            fields = self.session.sql(sql).schema.fields
        return [_column(f.name, f.dataType.simpleString(), f.nullable) for f in fields]

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        name = render(table.to_expression(), self.dialect)
        description = f"saveAsTable {name}"
        with _errors(description), timed(logger, "spark", description):
            frame = self.session.createDataFrame(portable_arrow(data))
            frame.write.saveAsTable(name, mode="overwrite" if replace else "errorifexists")

    def append(self, table: TableRef, data: pa.Table) -> None:
        name = render(table.to_expression(), self.dialect)
        description = f"insertInto {name}"
        with _errors(description), timed(logger, "spark", description):
            columns = [c.name for c in self.columns(table)]
            frame = self.session.createDataFrame(portable_arrow(data).select(columns))
            frame.write.insertInto(name)

    def drop_table(self, table: TableRef, *, if_exists: bool = True) -> None:
        self.execute(drop_table_statement(table, if_exists=if_exists))

    def ensure_schema(self, schema: str) -> None:
        self.execute(create_schema_statement(schema))

    def close(self) -> None:
        if self._owned_dir is None:
            return
        self.session.stop()
        shutil.rmtree(self._owned_dir, ignore_errors=True)
        self._owned_dir = None


def _column(name: str, native: str, nullable: bool) -> ColumnInfo:
    return ColumnInfo(name=name, type=type_family(native), native_type=native, nullable=nullable)


def _arrow_schema(schema: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow_schema: pa.Schema = to_arrow_schema(schema, timezone="UTC")
    return arrow_schema


def _converter(data_type: Any) -> Callable[[Any], Any] | None:
    """How to fix a collected value before Arrow reads it; None when it needs nothing."""
    from pyspark.sql.types import TimestampType

    if isinstance(data_type, TimestampType):
        # pyspark hands out instants as naive datetimes in this process's local time zone.
        return lambda value: None if value is None else value.astimezone(dt.UTC)
    return None


def _record_batch(
    rows: Sequence[Sequence[Any]],
    schema: pa.Schema,
    converters: Sequence[Callable[[Any], Any] | None],
) -> pa.RecordBatch:
    arrays = []
    for index, field in enumerate(schema):
        values = [row[index] for row in rows]
        convert = converters[index]
        arrays.append(pa.array(values if convert is None else map(convert, values), field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _condition(error: Exception) -> str:
    for getter in ("getCondition", "getErrorClass"):
        method = getattr(error, getter, None)
        if method is not None:
            return str(method() or "")
    return ""


def _message(error: Exception) -> str:
    """Spark's message without the query plan and JVM stack it appends."""
    lines = []
    for line in str(error).splitlines():
        if line.startswith(("'", "+-", "== ", "JVM stacktrace:", "\tat ")):
            break
        lines.append(line)
    return "\n".join(lines)


@contextmanager
def _errors(sql: str) -> Iterator[None]:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as error:
        condition = _condition(error)
        kind = next((k for c, k in _CONDITION_KINDS.items() if condition.startswith(c)), "other")
        raise warehouse_error("spark", sql, _message(error), kind) from error


class DatabricksWarehouse(DBAPIWarehouse):
    """A Databricks SQL warehouse (or cluster) through databricks-sql-connector.

    URL: `databricks://token:<access token>@<host>/<http path>?catalog=main&schema=default`;
    `databricks://<access token>@<host>/...` and `?http_path=...` are accepted too.
    """

    engine = "databricks"

    def __init__(
        self,
        server_hostname: str,
        http_path: str,
        access_token: str,
        catalog: str | None = None,
        schema: str | None = None,
        *,
        max_connections: int = 8,
        **options: Any,
    ) -> None:
        driver = import_driver("databricks.sql", "databricks")
        kwargs = {
            "server_hostname": server_hostname,
            "http_path": http_path,
            "access_token": access_token,
            "catalog": catalog,
            "schema": schema,
            **options,
        }
        super().__init__(
            driver,
            {k: v for k, v in kwargs.items() if v is not None},
            dialect="spark",
            schema=schema,
            max_connections=max_connections,
        )
        self.catalog = catalog

    @classmethod
    def from_url(cls, url: str) -> DatabricksWarehouse:
        parsed = parse_url(url)
        example = "databricks://token:<access token>@<host>/sql/1.0/warehouses/<id>"
        params: dict[str, Any] = dict(parsed.params)
        token = parsed.password if parsed.user == "token" else parsed.user
        http_path = params.pop("http_path", None) or "/" + "/".join(parsed.path)
        return cls(
            require(parsed.host, "host", url, example),
            require(http_path if http_path != "/" else None, "HTTP path", url, example),
            require(token, "access token", url, example),
            catalog=params.pop("catalog", None),
            schema=params.pop("schema", None),
            **params,
        )

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        # information_schema exists only in Unity Catalog; a LIMIT 0 query works everywhere.
        return self.query_columns(exp.select("*").from_(table.to_expression()))

    def query_columns(self, statement: exp.Expr) -> list[ColumnInfo]:
        sql = render(limit_zero(statement), self.dialect)
        with self._cursor(sql) as cursor:
            cursor.execute(sql)
            schema = cursor.fetchall_arrow().schema
        return columns_from_arrow(schema)

    def ensure_schema(self, schema: str) -> None:
        self.execute(create_schema_statement(schema, catalog=self.catalog))

    def _fetch_all(self, cursor: Any) -> pa.Table:
        table: pa.Table = cursor.fetchall_arrow()
        return table

    def _fetch_tables(self, cursor: Any, batch_size: int) -> Iterator[pa.Table]:
        while (table := cursor.fetchmany_arrow(batch_size)).num_rows:
            yield table
