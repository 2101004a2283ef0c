"""DuckDB: the embedded default warehouse.

One database connection is opened per warehouse; each calling thread gets its own cursor
on it (DuckDB cursors are cheap connections to the same database), so previews from many
threads run at once without paying for a connection each. Sessions run in UTC.

Like a hosted warehouse's concurrency slots, at most `max_queries` reads (`query`) run at
once (by default as many as DuckDB has threads); the others wait their turn inside
`query`. DuckDB already spreads each query over every thread, so twenty queries at once on
two cores only make each slower, hold twenty sets of hash tables in memory, and starve
the process's other threads (the studio's HTTP server) of CPU.

>>> from sqlglot import exp
>>> warehouse = DuckDBWarehouse()
>>> warehouse.query(exp.select(exp.Literal.number(1).as_("one"))).to_pylist()
[{'one': 1}]
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa
from sqlglot import exp

from corral.errors import ConfigurationError
from corral.sql import render
from corral.warehouse._common import (
    create_schema_statement,
    drop_table_statement,
    quoted,
    timed,
    type_family,
)
from corral.warehouse._errors import missing_table_error, warehouse_error
from corral.warehouse.base import ColumnInfo, TableRef

logger = logging.getLogger(__name__)

_ERROR_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (duckdb.CatalogException, "missing"),
    (duckdb.BinderException, "missing"),
    (duckdb.ParserException, "syntax"),
    (duckdb.PermissionException, "permission"),
    (duckdb.IOException, "connection"),
)


class DuckDBWarehouse:
    """A DuckDB database file, or an in-memory database for ":memory:"."""

    dialect = "duckdb"

    def __init__(
        self, path: str = ":memory:", *, read_only: bool = False, max_queries: int | None = None
    ) -> None:
        self.path = path
        self.read_only = read_only
        with _errors(f"open {path}"):
            self._connection = duckdb.connect(path, read_only=read_only)
            # Cursors opened later inherit global settings; TimeZone needs ICU, loaded by now.
            self._connection.execute("SET GLOBAL TimeZone = 'UTC'")
            (threads,) = self._connection.execute("SELECT current_setting('threads')").fetchall()
        self.max_queries = int(threads[0]) if max_queries is None else max_queries
        if self.max_queries < 1:
            raise ConfigurationError(
                f"max_queries must be at least 1 for the DuckDB warehouse {path}, "
                f"not {self.max_queries}",
                hint="leave it out to run as many queries at once as DuckDB has threads",
            )
        self._slots = threading.BoundedSemaphore(self.max_queries)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"DuckDBWarehouse({self.path!r}, read_only={self.read_only}, "
            f"max_queries={self.max_queries})"
        )

    def query(self, statement: exp.Expr) -> pa.Table:
        sql = render(statement, self.dialect)
        asked = time.perf_counter()
        with self._slots:
            self._local.queued = self.queued_seconds() + time.perf_counter() - asked
            with self._thread_cursor(sql) as cursor:
                return cursor.sql(sql).to_arrow_table()

    def queued_seconds(self) -> float:
        """How long the calling thread has waited, in all, for a free query slot."""
        queued: float = getattr(self._local, "queued", 0.0)
        return queued

    def stream(self, statement: exp.Expr, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        sql = render(statement, self.dialect)
        # A reader holds its cursor until it is read out, so each stream gets its own.
        cursor = self._connection.cursor()
        try:
            with _errors(sql), timed(logger, "duckdb stream", sql):
                reader = cursor.sql(sql).to_arrow_reader(batch_size)
            with _errors(sql):
                yield from reader
        finally:
            cursor.close()

    def execute(self, statement: exp.Expr) -> None:
        self._execute(render(statement, self.dialect))

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        # DuckDB's own catalog function answers in a third of the time its
        # information_schema view over it takes (a sync's plan asks several times).
        database: exp.Expr = exp.Anonymous(this="current_database")
        if table.catalog:
            database = exp.Literal.string(table.catalog)
        schema: exp.Expr = exp.Literal.string(table.schema) if table.schema else exp.CurrentSchema()
        statement = (
            exp.select("column_name", "data_type", "is_nullable")
            .from_(exp.Table(this=exp.Anonymous(this="duckdb_columns")))
            .where(
                exp.and_(
                    exp.column("table_name").eq(exp.Literal.string(table.name)),
                    exp.column("schema_name").eq(schema),
                    exp.column("database_name").eq(database),
                )
            )
            .order_by("column_index")
        )
        rows = self.query(statement).to_pylist()
        if not rows:
            raise missing_table_error("duckdb", table)
        return [_column(r["column_name"], r["data_type"], bool(r["is_nullable"])) for r in rows]

    def query_columns(self, statement: exp.Expr) -> list[ColumnInfo]:
        sql = render(exp.Describe(this=statement.copy()), self.dialect)
        with self._thread_cursor(sql) as cursor:
            rows = cursor.sql(sql).fetchall()
        return [_column(name, native, True) for name, native, *_ in rows]

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        view = f"_corral_arrow_{uuid.uuid4().hex}"
        source = exp.select("*").from_(exp.Table(this=quoted(view)))
        create = exp.Create(
            this=table.to_expression(), kind="TABLE", replace=replace, expression=source
        )
        sql = render(create, self.dialect)
        with self._thread_cursor(sql) as cursor:
            cursor.register(view, data)
            try:
                cursor.execute(sql)
            finally:
                cursor.unregister(view)

    def append(self, table: TableRef, data: pa.Table) -> None:
        view = f"_corral_arrow_{uuid.uuid4().hex}"
        names = [quoted(n) for n in data.column_names]
        source = exp.select(*names).from_(exp.Table(this=quoted(view)))
        sql = render(exp.insert(source, table.to_expression(), columns=names), self.dialect)
        with self._thread_cursor(sql) as cursor:
            cursor.register(view, data)
            try:
                cursor.execute(sql)
            finally:
                cursor.unregister(view)

    def drop_table(self, table: TableRef, *, if_exists: bool = True) -> None:
        self.execute(drop_table_statement(table, if_exists=if_exists))

    def ensure_schema(self, schema: str) -> None:
        self.execute(create_schema_statement(schema))

    def close(self) -> None:
        with self._lock:
            cursors, self._cursors = self._cursors, []
        for cursor in cursors:
            cursor.close()
        self._connection.close()

    def _execute(self, sql: str) -> None:
        with self._thread_cursor(sql) as cursor:
            cursor.execute(sql)
            # A statement that returns rows would otherwise block the cursor's next query.
            cursor.complete()

    @contextmanager
    def _thread_cursor(self, sql: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The calling thread's cursor, with errors mapped and the SQL and timing logged."""
        cursor = self._cursor()
        try:
            with _errors(sql), timed(logger, "duckdb", sql):
                yield cursor
        except BaseException:
            # A failed statement may leave a pending result behind; start clean next time.
            self._discard_cursor(cursor)
            raise

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection.cursor()
            self._local.cursor = cursor
            with self._lock:
                self._cursors.append(cursor)
        return cursor

    def _discard_cursor(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._local.cursor = None
        with self._lock:
            if cursor in self._cursors:
                self._cursors.remove(cursor)
        cursor.close()


def _column(name: str, native: str, nullable: bool) -> ColumnInfo:
    return ColumnInfo(name=name, type=type_family(native), native_type=native, nullable=nullable)


@contextmanager
def _errors(sql: str) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as error:
        kind = next((k for cls, k in _ERROR_KINDS if isinstance(error, cls)), "other")
        if kind == "connection" and "Could not set lock on file" in str(error):
            kind = "locked"
        raise warehouse_error("duckdb", sql, str(error), kind) from error
