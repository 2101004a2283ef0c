"""Warehouses reached through a PEP 249 (DB-API) driver, and the vendors that use one.

`DBAPIWarehouse` holds everything the drivers share: a small connection pool, rendering
in the vendor's dialect, error mapping, Arrow results, and planner tables written with
CREATE TABLE plus INSERT ... VALUES of inert literals. Each vendor is a small subclass
that imports its driver lazily, so Corral installs without any of them:

    SnowflakeWarehouse   snowflake-connector-python   pip install 'corral[snowflake]'
    RedshiftWarehouse    redshift-connector           pip install 'corral[redshift]'
    AthenaWarehouse      pyathena                     pip install 'corral[athena]'
    TrinoWarehouse       trino                        pip install 'corral[trino]'
    SQLServerWarehouse   pymssql                      pip install 'corral[mssql]'

None of these is exercised against a real service in Corral's test-suite; a fake driver
checks the SQL they send and the Arrow they return.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
from sqlglot import exp

from corral.errors import ConfigurationError, WarehouseError
from corral.sql import canonical_dialect, render
from corral.warehouse._common import (
    columns_statement,
    create_schema_statement,
    create_table_statement,
    drop_table_statement,
    limit_zero,
    portable_arrow,
    quoted,
    rows_to_arrow,
    timed,
    type_family,
    value_literal,
)
from corral.warehouse._errors import missing_table_error, warehouse_error
from corral.warehouse.base import ColumnInfo, TableRef

logger = logging.getLogger(__name__)

_MISSING = re.compile(
    r"does not exist|not found|cannot be found|invalid object name|unknown table", re.IGNORECASE
)
_EXISTS = re.compile(r"already exists", re.IGNORECASE)


def import_driver(module: str, extra: str) -> ModuleType:
    """Import a vendor driver, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigurationError(
            f"the {module} driver is not installed",
            hint=f"pip install 'corral[{extra}]'",
        ) from error


@dataclass(frozen=True)
class ParsedURL:
    """The parts of a warehouse URL, percent-decoded."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    path: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)


def parse_url(url: str) -> ParsedURL:
    """Split `scheme://user:password@host:port/a/b?k=v` into its parts."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as error:
        raise ConfigurationError(f"the port in {redact(url)!r} is not a number") from error
    return ParsedURL(
        scheme=parts.scheme.lower(),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname,
        port=port,
        path=[unquote(p) for p in parts.path.split("/") if p],
        params=dict(parse_qsl(parts.query)),
    )


def redact(url: str) -> str:
    """The URL with its password replaced, for messages."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def require(value: str | None, what: str, url: str, example: str) -> str:
    if not value:
        raise ConfigurationError(f"{redact(url)!r} has no {what}", hint=f"write it like {example}")
    return value


class _ConnectionPool:
    """At most `max_size` driver connections, reused last-in first-out, opened on demand."""

    def __init__(self, connect: Callable[[], Any], max_size: int) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(max_size)
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._slots:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection = self._connect()
            try:
                yield connection
            except BaseException:
                # A connection that cannot even roll back is broken: do not hand it out again.
                if _rolled_back(connection):
                    self._release(connection)
                else:
                    _close_quietly(connection)
                raise
            self._release(connection)

    def _release(self, connection: Any) -> None:
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            _close_quietly(connection)


def _rolled_back(connection: Any) -> bool:
    try:
        connection.rollback()
    except Exception:  # a broken connection may fail in any way
        return False
    return True


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # a broken connection may fail in any way
        logger.debug("closing a connection failed", exc_info=True)


class DBAPIWarehouse:
    """A warehouse behind any PEP 249 driver module.

    `driver` is the imported module (it must have `connect` and `Error`); `connect_kwargs`
    are passed to `driver.connect`. `schema` is where unqualified names resolve; when it is
    None, the engine's CURRENT_SCHEMA() is asked.
    """

    engine: ClassVar[str] = "dbapi"
    insert_batch_rows: ClassVar[int] = 1000  # SQL Server allows at most 1000 rows per VALUES

    def __init__(
        self,
        driver: ModuleType,
        connect_kwargs: Mapping[str, Any],
        *,
        dialect: str,
        schema: str | None = None,
        max_connections: int = 8,
    ) -> None:
        self.dialect = canonical_dialect(dialect)
        self.schema = schema
        self._driver = driver
        self._pool = _ConnectionPool(lambda: driver.connect(**connect_kwargs), max_connections)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dialect={self.dialect!r}, schema={self.schema!r})"

    def query(self, statement: exp.Expr) -> pa.Table:
        sql = render(statement, self.dialect)
        with self._cursor(sql) as cursor:
            cursor.execute(sql)
            return self._fetch_all(cursor)

    def stream(self, statement: exp.Expr, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        sql = render(statement, self.dialect)
        with self._cursor(sql) as cursor:
            cursor.execute(sql)
            for table in self._fetch_tables(cursor, batch_size):
                yield from table.to_batches(max_chunksize=batch_size)

    def execute(self, statement: exp.Expr) -> None:
        self._execute([render(statement, self.dialect)])

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        statement = columns_statement(table, default_schema=self._default_schema())
        rows = self.query(statement).to_pylist()
        if not rows:
            raise missing_table_error(self.engine, table)
        # Positional: some engines return the column labels upper-cased.
        return [_column(*row.values()) for row in rows]

    def query_columns(self, statement: exp.Expr) -> list[ColumnInfo]:
        sql = render(limit_zero(statement), self.dialect)
        with self._cursor(sql) as cursor:
            cursor.execute(sql)
            description = list(cursor.description or [])
            cursor.fetchall()
        return [
            ColumnInfo(name=d[0], type=type_family(native), native_type=native)
            for d in description
            for native in [self._native_type(d)]
        ]

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        data = portable_arrow(data)
        statements = []
        if replace:
            statements.append(render(drop_table_statement(table, if_exists=True), self.dialect))
        create = create_table_statement(table, data.schema)
        statements.append(render(create, self.dialect))
        statements.extend(self._insert_statements(table, create, data))
        self._execute(statements)

    def append(self, table: TableRef, data: pa.Table) -> None:
        data = portable_arrow(data)
        create = create_table_statement(table, data.schema)
        self._execute(self._insert_statements(table, create, data))

    def drop_table(self, table: TableRef, *, if_exists: bool = True) -> None:
        self.execute(drop_table_statement(table, if_exists=if_exists))

    def ensure_schema(self, schema: str) -> None:
        self.execute(create_schema_statement(schema))

    def close(self) -> None:
        self._pool.close()

    # Hooks a vendor may override.

    def _fetch_all(self, cursor: Any) -> pa.Table:
        names = [d[0] for d in cursor.description or []]
        return rows_to_arrow(names, cursor.fetchall())

    def _fetch_tables(self, cursor: Any, batch_size: int) -> Iterator[pa.Table]:
        names = [d[0] for d in cursor.description or []]
        # Types are inferred from the first batch and kept, so every batch has one schema.
        types: list[pa.DataType | None] | None = None
        while rows := cursor.fetchmany(batch_size):
            table = rows_to_arrow(names, rows, types)
            types = types or [None if pa.types.is_null(t) else t for t in table.schema.types]
            yield table

    def _native_type(self, description: Sequence[Any]) -> str:
        """The engine's type name for a cursor.description entry."""
        return str(description[1])

    def _default_schema(self) -> exp.Expression:
        return exp.Literal.string(self.schema) if self.schema else exp.CurrentSchema()

    # Shared machinery.

    def _insert_statements(self, table: TableRef, create: exp.Create, data: pa.Table) -> list[str]:
        types = [column.args["kind"] for column in create.this.expressions]
        names = [quoted(name) for name in data.column_names]
        statements = []
        for batch in data.to_batches(max_chunksize=self.insert_batch_rows):
            columns = [array.to_pylist() for array in batch.columns]
            rows = [
                exp.Tuple(
                    expressions=[value_literal(v, t) for v, t in zip(row, types, strict=True)]
                )
                for row in zip(*columns, strict=True)
            ]
            insert = exp.insert(exp.values(rows), table.to_expression(), columns=names)
            statements.append(render(insert, self.dialect))
        return statements

    def _execute(self, statements: Sequence[str]) -> None:
        if not statements:
            return
        with self._errors(statements[0]), self._pool.connection() as connection:
            cursor = connection.cursor()
            try:
                for sql in statements:
                    with self._errors(sql), timed(logger, self.engine, sql):
                        cursor.execute(sql)
                with self._errors(statements[-1]):
                    connection.commit()
            finally:
                _close_quietly(cursor)

    @contextmanager
    def _cursor(self, sql: str) -> Iterator[Any]:
        with self._errors(sql), self._pool.connection() as connection:
            cursor = connection.cursor()
            try:
                with timed(logger, self.engine, sql):
                    yield cursor
                connection.commit()
            finally:
                _close_quietly(cursor)

    @contextmanager
    def _errors(self, sql: str) -> Iterator[None]:
        try:
            yield
        except WarehouseError:
            raise
        except getattr(self._driver, "Error", Exception) as error:
            message = str(error)
            kind = "missing" if _MISSING.search(message) else "other"
            kind = "exists" if _EXISTS.search(message) else kind
            raise warehouse_error(self.engine, sql, message, kind) from error


def _column(name: str, native: str, nullable: str | bool | None) -> ColumnInfo:
    is_nullable = nullable in (True, "YES", "Y", "yes")
    return ColumnInfo(name=name, type=type_family(native), native_type=native, nullable=is_nullable)


class SnowflakeWarehouse(DBAPIWarehouse):
    """Snowflake through snowflake-connector-python; results arrive as Arrow natively.

    URL: `snowflake://user:password@account/database/schema?warehouse=WH&role=ROLE`;
    other query parameters (authenticator, private_key_file, ...) go to the connector.
    """

    engine = "snowflake"

    def __init__(
        self,
        account: str,
        user: str,
        password: str | None = None,
        *,
        database: str | None = None,
        schema: str | None = None,
        warehouse: str | None = None,
        role: str | None = None,
        max_connections: int = 8,
        **options: Any,
    ) -> None:
        driver = import_driver("snowflake.connector", "snowflake")
        kwargs = {
            "account": account,
            "user": user,
            "password": password,
            "database": database,
            "schema": schema,
            "warehouse": warehouse,
            "role": role,
            **options,
        }
        super().__init__(
            driver,
            {k: v for k, v in kwargs.items() if v is not None},
            dialect="snowflake",
            schema=schema,
            max_connections=max_connections,
        )

    @classmethod
    def from_url(cls, url: str) -> SnowflakeWarehouse:
        parsed = parse_url(url)
        example = "snowflake://user:password@account/database/schema?warehouse=WH"
        params: dict[str, Any] = dict(parsed.params)
        path = [*parsed.path, None, None]
        return cls(
            require(parsed.host, "account", url, example),
            require(parsed.user, "user", url, example),
            parsed.password,
            database=path[0],
            schema=path[1],
            **params,
        )

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        # DATA_TYPE says NUMBER for integers too; the scale tells them apart.
        statement = columns_statement(table, default_schema=self._default_schema()).select(
            "numeric_precision", "numeric_scale"
        )
        rows = [tuple(row.values()) for row in self.query(statement).to_pylist()]
        if not rows:
            raise missing_table_error(self.engine, table)
        return [
            _column(name, f"NUMBER({p},{s})" if native == "NUMBER" else native, nullable)
            for name, native, nullable, p, s in rows
        ]

    def _fetch_all(self, cursor: Any) -> pa.Table:
        table = cursor.fetch_arrow_all()
        # The connector returns None instead of an empty table when there are no rows.
        return table if table is not None else _empty(cursor)

    def _fetch_tables(self, cursor: Any, batch_size: int) -> Iterator[pa.Table]:
        yield from cursor.fetch_arrow_batches()

    def _native_type(self, description: Sequence[Any]) -> str:
        constants = importlib.import_module("snowflake.connector.constants")
        name = str(constants.FIELD_ID_TO_NAME.get(description[1], description[1]))
        if name == "FIXED":
            return f"NUMBER({description[4]},{description[5]})"
        return name


class RedshiftWarehouse(DBAPIWarehouse):
    """Amazon Redshift through redshift-connector.

    URL: `redshift://user:password@host:5439/database?schema=public`.
    """

    engine = "redshift"

    def __init__(
        self,
        host: str,
        database: str,
        user: str,
        password: str | None = None,
        *,
        port: int = 5439,
        schema: str | None = None,
        max_connections: int = 8,
        **options: Any,
    ) -> None:
        driver = import_driver("redshift_connector", "redshift")
        kwargs = {
            "host": host,
            "port": port,
            "database": database,
            "user": user,
            "password": password,
            **options,
        }
        super().__init__(
            driver,
            {k: v for k, v in kwargs.items() if v is not None},
            dialect="redshift",
            schema=schema,
            max_connections=max_connections,
        )

    @classmethod
    def from_url(cls, url: str) -> RedshiftWarehouse:
        parsed = parse_url(url)
        example = "redshift://user:password@host:5439/database"
        params: dict[str, Any] = dict(parsed.params)
        schema = params.pop("schema", None)
        return cls(
            require(parsed.host, "host", url, example),
            require(parsed.path[0] if parsed.path else None, "database", url, example),
            require(parsed.user, "user", url, example),
            parsed.password,
            port=parsed.port or 5439,
            schema=schema,
            **params,
        )


class AthenaWarehouse(DBAPIWarehouse):
    """Amazon Athena through pyathena.

    URL: `athena://region/schema?s3_staging_dir=s3://bucket/prefix/&work_group=primary`.
    Planner tables are created with CREATE TABLE AS ... WITH NO DATA, which Athena stores
    under the work group's result location, then filled with INSERT.
    """

    engine = "athena"

    def __init__(
        self,
        region: str,
        schema: str = "default",
        *,
        s3_staging_dir: str | None = None,
        work_group: str | None = None,
        max_connections: int = 8,
        **options: Any,
    ) -> None:
        driver = import_driver("pyathena", "athena")
        kwargs = {
            "region_name": region,
            "schema_name": schema,
            "s3_staging_dir": s3_staging_dir,
            "work_group": work_group,
            **options,
        }
        super().__init__(
            driver,
            {k: v for k, v in kwargs.items() if v is not None},
            dialect="athena",
            schema=schema,
            max_connections=max_connections,
        )

    @classmethod
    def from_url(cls, url: str) -> AthenaWarehouse:
        parsed = parse_url(url)
        example = "athena://us-east-1/my_schema?s3_staging_dir=s3://bucket/results/"
        params: dict[str, Any] = dict(parsed.params)
        return cls(
            require(parsed.host, "region", url, example),
            parsed.path[0] if parsed.path else "default",
            s3_staging_dir=params.pop("s3_staging_dir", None),
            work_group=params.pop("work_group", None),
            **params,
        )

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        # Athena's plain CREATE TABLE needs an external LOCATION; CTAS picks one itself.
        data = portable_arrow(data)
        statements = []
        if replace:
            statements.append(render(drop_table_statement(table, if_exists=True), self.dialect))
        create = create_table_statement(table, data.schema)
        typed_nulls = [
            exp.cast(exp.Null(), column.args["kind"]).as_(column.this)
            for column in create.this.expressions
        ]
        ctas = exp.Create(
            this=table.to_expression(),
            kind="TABLE",
            expression=exp.select(*typed_nulls),
            properties=exp.Properties(expressions=[exp.WithDataProperty(no=True)]),
        )
        statements.append(render(ctas, self.dialect))
        statements.extend(self._insert_statements(table, create, data))
        self._execute(statements)


class TrinoWarehouse(DBAPIWarehouse):
    """Trino (and Starburst) through the trino client.

    URL: `trino://user[:password]@host:8080/catalog/schema`; a password switches to HTTPS
    with basic authentication.
    """

    engine = "trino"

    def __init__(
        self,
        host: str,
        *,
        user: str,
        catalog: str,
        schema: str | None = None,
        port: int = 8080,
        password: str | None = None,
        http_scheme: str | None = None,
        max_connections: int = 8,
        **options: Any,
    ) -> None:
        driver = import_driver("trino.dbapi", "trino")
        kwargs: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": user,
            "catalog": catalog,
            "schema": schema,
            "http_scheme": http_scheme,
            **options,
        }
        if password is not None:
            auth = import_driver("trino.auth", "trino")
            kwargs["auth"] = auth.BasicAuthentication(user, password)
            kwargs["http_scheme"] = http_scheme or "https"
        super().__init__(
            driver,
            {k: v for k, v in kwargs.items() if v is not None},
            dialect="trino",
            schema=schema,
            max_connections=max_connections,
        )

    @classmethod
    def from_url(cls, url: str) -> TrinoWarehouse:
        parsed = parse_url(url)
        example = "trino://user@host:8080/catalog/schema"
        params: dict[str, Any] = dict(parsed.params)
        path = [*parsed.path, None, None]
        return cls(
            require(parsed.host, "host", url, example),
            user=require(parsed.user, "user", url, example),
            catalog=require(path[0], "catalog", url, example),
            schema=path[1],
            port=parsed.port or 8080,
            password=parsed.password,
            **params,
        )


class SQLServerWarehouse(DBAPIWarehouse):
    """SQL Server, Azure Synapse and Microsoft Fabric through pymssql.

    URL: `mssql://user:password@host:1433/database?schema=dbo` (also `sqlserver://`,
    `synapse://`, `fabric://`).
    """

    engine = "sqlserver"

    def __init__(
        self,
        host: str,
        database: str,
        user: str | None = None,
        password: str | None = None,
        *,
        port: int = 1433,
        schema: str | None = None,
        max_connections: int = 8,
        **options: Any,
    ) -> None:
        driver = import_driver("pymssql", "mssql")
        kwargs = {
            "server": host,
            "port": port,
            "database": database,
            "user": user,
            "password": password,
            **options,
        }
        super().__init__(
            driver,
            {k: v for k, v in kwargs.items() if v is not None},
            dialect="tsql",
            schema=schema,
            max_connections=max_connections,
        )

    @classmethod
    def from_url(cls, url: str) -> SQLServerWarehouse:
        parsed = parse_url(url)
        example = "mssql://user:password@host:1433/database"
        params: dict[str, Any] = dict(parsed.params)
        schema = params.pop("schema", None)
        return cls(
            require(parsed.host, "host", url, example),
            require(parsed.path[0] if parsed.path else None, "database", url, example),
            parsed.user,
            parsed.password,
            port=parsed.port or 1433,
            schema=schema,
            **params,
        )


def _empty(cursor: Any) -> pa.Table:
    names = [d[0] for d in cursor.description or []]
    return pa.table({name: pa.array([], type=pa.null()) for name in names})
