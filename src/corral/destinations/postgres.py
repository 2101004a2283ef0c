"""PostgreSQL: deliver records into a table, with COPY and at most one merge statement a batch.

Each batch is one transaction on a pooled connection. An add batch (in upsert, insert or
mirror mode) is first copied straight into the target under a savepoint: its rows are
usually new, and that costs what a raw COPY costs. When the COPY fails (a key the table
already has, as in a resent batch, or a refused value), the savepoint undoes it and the
batch takes the general path, as do the other batches and an add batch that holds a key
twice:

1. COPY the batch's rows into a temporary staging table shaped like the target's columns
   (`ON COMMIT DROP`, so nothing is left behind);
2. merge them with one statement, chosen by the mode and the batch's operation:

   | mode          | add, change                                  | remove              |
   | ------------- | -------------------------------------------- | ------------------- |
   | upsert/mirror | `INSERT ... SELECT ... ON CONFLICT DO UPDATE` | `DELETE ... USING` (mirror) |
   | insert        | `INSERT ... SELECT ... ON CONFLICT DO NOTHING`| -                   |
   | update        | `UPDATE ... FROM ... RETURNING key`          | -                   |

Every statement is idempotent, so a resent batch leaves the table as the first delivery
did. When PostgreSQL refuses a value (text in a bigint column, a number that overflows,
a NOT NULL or CHECK constraint), the whole COPY fails; the batch is then retried in halves,
each under a savepoint, until the refused rows are alone, and only those are rejected,
with PostgreSQL's message as the reason. The rest of the batch lands in the same
transaction. A batch with no refused row is answered with `ALL_ACCEPTED`.

The engine may also hand over a batch as Arrow columns (`send_columns`): the same path,
with the COPY text written by Arrow's CSV writer instead of row by row in Python.

>>> destination = PostgresDestination(
...     PostgresConfig(url="postgresql://corral@localhost/crm", table="customers")
... )  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from datetime import time as clock_time
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import httpx
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from corral.destinations.base import (
    ALL_ACCEPTED,
    AllAccepted,
    Batch,
    Catalog,
    CheckResult,
    ColumnBatch,
    Job,
    Mode,
    Operation,
    Outcome,
    Record,
    RowResult,
)
from corral.destinations.postgres_copy import (
    ColumnarRows,
    CopyColumns,
    copy_rows,
    row_keys,
)
from corral.errors import (
    ConfigurationError,
    DestinationError,
    InternalError,
    TransientDestinationError,
)

try:
    import psycopg
    import psycopg_pool
    from psycopg import sql
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ConfigurationError(
        "the PostgreSQL destination needs psycopg and psycopg-pool",
        hint="pip install 'corral[postgres]'",
    ) from missing

logger = logging.getLogger(__name__)

STAGING = sql.Identifier("corral_staging")

# Column types for new tables and columns, from the first non-null Python values seen.
_COLUMN_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: bool is a subclass of int
    (int, "bigint"),
    (float, "double precision"),
    (Decimal, "numeric"),
    (datetime, "timestamptz"),  # before date: datetime is a subclass of date
    (date, "date"),
    (clock_time, "time"),
    (UUID, "uuid"),
    (bytes, "bytea"),
    (dict, "jsonb"),
    (list, "jsonb"),
    (str, "text"),
)
_TYPE_NAMES = dict(_COLUMN_TYPES)  # exact types; subclasses go through isinstance
_JSON_TYPES = frozenset({"json", "jsonb"})

# Errors that belong to the rows of a batch rather than to the connection or the SQL:
# SQLSTATE class 22 (data exception) and 23 (integrity constraint violation).
_ROW_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
_TRANSIENT_ERRORS = (
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)


class PostgresConfig(BaseModel):
    """The target table and how to reach it.

    `url` is a libpq URL (`postgresql://user:password@host:5432/db`); it is a secret
    because it may hold a password. `key_column` names the column that stores the sync's
    key; it must be the table's primary key (or carry a unique index).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: SecretStr
    db_schema: str = Field("public", alias="schema", min_length=1)
    table: str = Field(min_length=1)
    key_column: str = Field("key", min_length=1)
    create_table: bool = True
    batch_size: int = Field(50_000, ge=1)
    concurrency: int = Field(2, ge=1, le=32)
    timeout: float = Field(30.0, gt=0)
    # Of a table Corral creates: the share of each page filled on insert. The rest lets a
    # changed row be rewritten on its own page, which spares the key index a new entry
    # (a "HOT" update): about a third off an incremental run's changes.
    fill_factor: int = Field(90, ge=10, le=100)


class PostgresDestination:
    """Delivers batches into `schema.table` with COPY and one merge statement each.

    With `create_table` (the default) a missing table is created from the first batch:
    the key column as `text COLLATE "C" PRIMARY KEY` and one column per field, typed from
    the first non-null values (int: bigint, float: double precision, Decimal: numeric,
    bool: boolean, datetime: timestamptz, date: date, dict or list: jsonb, otherwise
    text); a field the table lacks is added as a column the same way. Without it, a
    missing table or column stops the run with an error. Naive datetimes are read as UTC.
    """

    catalog: ClassVar[Catalog] = Catalog(
        name="postgres",
        title="PostgreSQL table",
        modes=frozenset({Mode.UPSERT, Mode.UPDATE, Mode.INSERT, Mode.MIRROR}),
        config=PostgresConfig,
        batch_size=50_000,
        concurrency=2,
        sorted_keys=True,
        docs="docs/destinations/postgres.md",
    )

    def __init__(self, config: PostgresConfig, *, transport: httpx.BaseTransport | None = None):
        # `transport` is accepted for the common constructor; PostgreSQL speaks its own wire.
        self.config = config
        self.target = sql.Identifier(config.db_schema, config.table)
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._lock = threading.Lock()  # the run's state: mode, fields, columns
        self._pool_lock = threading.Lock()
        self._mode: Mode | None = None
        self._fields: tuple[str, ...] = ()
        self._columns: CopyColumns | None = None

    def __repr__(self) -> str:
        return f"PostgresDestination({self.address!r}, {self.where!r})"

    @property
    def address(self) -> str:
        """host:port/database, without the credentials, for messages and logs."""
        try:
            parts = psycopg.conninfo.conninfo_to_dict(self.config.url.get_secret_value())
        except psycopg.ProgrammingError:
            return "<unparsable URL>"
        return (
            f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
        )

    @property
    def where(self) -> str:
        return f"{self.config.db_schema}.{self.config.table}"

    @property
    def batch_size(self) -> int:
        """The configured batch size; the catalog's is the default."""
        return self.config.batch_size

    @property
    def concurrency(self) -> int:
        """How many batches may be in flight at once; also the size of the pool."""
        return self.config.concurrency

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode not in self.catalog.modes:
            raise InternalError(f"the postgres destination does not support {mode} mode")
        if self.config.key_column in fields:
            raise DestinationError(
                f"the field {self.config.key_column!r} is also the key column of {self.where}",
                hint="map the field to another name, or set `key_column` to another column",
            )
        if len(set(fields)) != len(fields):
            raise InternalError(f"the postgres destination was given repeated fields: {fields}")
        with self._lock:
            self._mode = mode
            self._fields = tuple(fields)
            self._columns = None

    def send(self, batch: Batch) -> list[RowResult] | AllAccepted | Job:
        if not batch.records:
            return []
        return self._send(batch, batch.records, lambda: [r.key for r in batch.records])

    def send_columns(self, batch: ColumnBatch) -> list[RowResult] | AllAccepted:
        """Deliver Arrow columns as `send` delivers records, without a Python object per row.

        The COPY rows come straight from the columns. Records are built only where the
        rows must be looked at one by one: to type the columns of a table being created,
        to isolate refused rows, and for a batch that holds a key twice.
        """
        if not len(batch):
            return []
        if pc.count_distinct(batch.keys).as_py() != len(batch):
            return self._send(batch, batch.records(), batch.keys.to_pylist)
        return self._send(batch, ColumnarRows(batch), batch.keys.to_pylist)

    def _send(
        self,
        batch: Batch | ColumnBatch,
        rows: Sequence[Record] | ColumnarRows,
        keys: Callable[[], list[str]],
    ) -> list[RowResult] | AllAccepted:
        mode = self._mode
        if mode is None:
            raise InternalError("the postgres destination was sent a batch before open()")
        merge = _merge_for(mode, batch.operation)
        started = time.perf_counter()

        with self._errors():
            columns = self._ready_columns(batch)
            if columns is None:  # removing from a table that does not exist: nothing to do
                refused: dict[str, str] = {}
            else:
                if batch.operation is Operation.REMOVE:
                    columns = CopyColumns(columns.names[:1], frozenset())
                refused = self._deliver(merge, columns, rows)

        # One result per row, duplicates included, only when some were refused: building
        # 50,000 results takes about 0.1 s, a third of the time the COPY takes.
        results: list[RowResult] | AllAccepted = ALL_ACCEPTED
        rejected = 0
        if refused:
            results = [
                RowResult.rejected(key, refused[key]) if key in refused else RowResult.accepted(key)
                for key in keys()
            ]
            rejected = sum(1 for result in results if result.outcome is Outcome.REJECTED)
        logger.info(
            "postgres destination %s: %s batch of %d rows, %d rejected, in %.3fs",
            self.where,
            batch.operation.value,
            len(rows),
            rejected,
            time.perf_counter() - started,
        )
        return results

    def poll(self, job: Job) -> list[RowResult] | AllAccepted | Job:
        raise InternalError("the postgres destination never answers with a job")

    def check(self) -> CheckResult:
        """Connect and check that Corral may write the table (or create it in the schema)."""
        try:
            with psycopg.connect(
                self.config.url.get_secret_value(), connect_timeout=int(self.config.timeout)
            ) as connection:
                return self._check_privileges(connection)
        except psycopg.Error as error:
            return CheckResult(False, f"cannot connect to {self.address}: {_message(error)}")

    def close(self) -> None:
        with self._lock:
            self._mode = None
            self._columns = None
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _check_privileges(self, connection: psycopg.Connection[Any]) -> CheckResult:
        schema, table = self.config.db_schema, self.config.table
        row = connection.execute(
            "SELECT has_schema_privilege(n.oid, 'USAGE'), has_schema_privilege(n.oid, 'CREATE'),"
            " (SELECT c.oid FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = %s)"
            " FROM pg_namespace n WHERE n.nspname = %s",
            (table, schema),
        ).fetchone()
        if row is None:
            return CheckResult(False, f"the schema {schema!r} does not exist in {self.address}")
        usage, create, table_oid = row
        if not usage:
            return CheckResult(False, f"the user may not use the schema {schema!r} (USAGE)")
        if table_oid is None:
            if not self.config.create_table:
                return CheckResult(False, f"the table {self.where} does not exist")
            if not create:
                return CheckResult(False, f"the user may not create tables in {schema!r}")
            return CheckResult(True, f"can create {self.where} in {self.address}")
        granted = connection.execute(
            "SELECT has_table_privilege(%s, 'INSERT'), has_table_privilege(%s, 'UPDATE'),"
            " has_table_privilege(%s, 'DELETE')",
            (table_oid, table_oid, table_oid),
        ).fetchone() or (False, False, False)
        missing = [
            p for p, ok in zip(("INSERT", "UPDATE", "DELETE"), granted, strict=True) if not ok
        ]
        if "INSERT" in missing or "UPDATE" in missing:
            return CheckResult(False, f"the user lacks {', '.join(missing)} on {self.where}")
        note = " (no DELETE: mirror mode cannot remove rows)" if missing else ""
        return CheckResult(True, f"can write {self.where} in {self.address}{note}")

    def _deliver(
        self, merge: _Merge, columns: CopyColumns, rows: Sequence[Record] | ColumnarRows
    ) -> dict[str, str]:
        """Deliver in one transaction; the keys refused, with PostgreSQL's reason."""
        unique: list[Record] | ColumnarRows
        if isinstance(rows, ColumnarRows):
            unique = rows  # its keys are distinct
        else:
            # The last record of a key wins: one statement cannot touch a row twice.
            unique = list({record.key: record for record in rows}.values())
        with self._connection() as connection, connection.transaction():
            if merge.optimistic and len(unique) == len(rows):
                error = self._copy_into_target(connection, columns, unique)
                if error is None:
                    return {}
                if isinstance(error, psycopg.errors.UniqueViolation):
                    merge = replace(merge, optimistic=False)  # a plain INSERT would fail too

            names = sql.SQL(", ").join(map(sql.Identifier, columns.names))
            connection.execute(
                sql.SQL(
                    "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
                ).format(STAGING, names, self.target)
            )
            budget = _Budget(_MAX_ATTEMPTS)
            return self._isolate(connection, merge, columns, unique, budget, first=True)

    def _copy_into_target(
        self,
        connection: psycopg.Connection[Any],
        columns: CopyColumns,
        records: Sequence[Record] | ColumnarRows,
    ) -> psycopg.Error | None:
        """COPY the records straight into the target under a savepoint; the error if it failed.

        The rows of an add batch are usually new, and this is as fast as a raw COPY, in
        about half the time staging and merging them takes. A key the table already has (a
        resent batch, a row that was there before the sync) or a refused value fails the
        COPY, and the savepoint undoes it. The records' keys must be distinct.
        """
        try:
            with connection.transaction(), connection.cursor() as cursor:
                copy_rows(cursor, self.target, columns, records)
        except _ROW_ERRORS as error:
            failed: psycopg.Error = error
        except psycopg.ProgrammingError as error:
            if error.sqlstate is not None:  # the server refused the statement, not a row
                raise
            failed = error  # psycopg could not turn a Python value into text
        else:
            return None
        logger.debug(
            "postgres destination %s: COPY into the table failed (%s); merging through staging",
            self.where,
            _message(failed),
        )
        return failed

    def _isolate(
        self,
        connection: psycopg.Connection[Any],
        merge: _Merge,
        columns: CopyColumns,
        records: list[Record] | ColumnarRows,
        budget: _Budget,
        *,
        first: bool = False,
    ) -> dict[str, str]:
        """Apply `records` under a savepoint; on a row error, halve until the bad rows are alone.

        A columnar batch is tried whole from its columns, and halved as records."""
        if budget.attempts <= 0:
            reason = f"not tried: too many rows of the batch were refused ({budget.first_error})"
            return dict.fromkeys(row_keys(records), reason)
        budget.attempts -= 1
        try:
            with connection.transaction():
                refused = self._apply(connection, merge, columns, records)
                if not first:
                    connection.execute(sql.SQL("TRUNCATE {}").format(STAGING))
                return refused
        except _ROW_ERRORS as error:
            budget.first_error = budget.first_error or _message(error)
            if len(records) == 1:
                return dict.fromkeys(row_keys(records), _message(error))
            if first:
                logger.info(
                    "postgres destination %s: a batch of %d rows has refused rows (%s); "
                    "isolating them",
                    self.where,
                    len(records),
                    _message(error),
                )
        except psycopg.ProgrammingError as error:
            if error.sqlstate is not None:  # the server refused the statement, not a row
                raise
            # psycopg could not turn a Python value into text: a row error found client-side.
            if len(records) == 1:
                return dict.fromkeys(row_keys(records), _message(error))
        if isinstance(records, ColumnarRows):
            records = records.batch.records()
        middle = len(records) // 2
        head = self._isolate(connection, merge, columns, records[:middle], budget)
        return head | self._isolate(connection, merge, columns, records[middle:], budget)

    def _apply(
        self,
        connection: psycopg.Connection[Any],
        merge: _Merge,
        columns: CopyColumns,
        records: list[Record] | ColumnarRows,
    ) -> dict[str, str]:
        with connection.cursor() as cursor:
            copy_rows(cursor, STAGING, columns, records)
            if not (merge.optimistic and _inserted(cursor, merge, self.target, columns)):
                cursor.execute(merge.statement(self.target, self.config.key_column, columns.fields))
            if not merge.returns_keys:
                return {}
            found = {key for (key,) in cursor.fetchall()}
        return {key: "no such row" for key in row_keys(records) if key not in found}

    def _ready_columns(self, batch: Batch | ColumnBatch) -> CopyColumns | None:
        """The run's columns, creating the table or columns on the first batch that has values."""
        with self._lock:
            if self._columns is not None:
                return self._columns
            with self._connection() as connection:
                existing = self._existing_columns(connection)
                if batch.operation is Operation.REMOVE and not existing:
                    return None
                missing = [n for n in (self.config.key_column, *self._fields) if n not in existing]
                if missing:
                    records = batch.records if isinstance(batch, Batch) else batch.records()
                    existing |= self._create(connection, existing, missing, records)
            json_columns = frozenset(n for n, kind in existing.items() if kind in _JSON_TYPES)
            self._columns = CopyColumns((self.config.key_column, *self._fields), json_columns)
            return self._columns

    def _existing_columns(self, connection: psycopg.Connection[Any]) -> dict[str, str]:
        rows = connection.execute(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (self.config.db_schema, self.config.table),
        ).fetchall()
        connection.commit()
        return {name: kind for name, kind in rows}

    def _create(
        self,
        connection: psycopg.Connection[Any],
        existing: Mapping[str, str],
        missing: list[str],
        records: Sequence[Record],
    ) -> dict[str, str]:
        """Create the table, or add its missing columns; their types, by column name."""
        if not self.config.create_table:
            what = "does not exist" if not existing else f"has no column {', '.join(missing)}"
            raise DestinationError(
                f"the table {self.where} {what}",
                where=self.address,
                hint="create it, or set `create_table: true` to let Corral create it",
            )
        key = self.config.key_column
        if existing and key in missing:
            raise DestinationError(
                f"the table {self.where} has no key column {key!r}",
                hint="set `key_column` to the table's primary key column",
            )
        types = {name: _column_type(name, records) for name in missing if name != key}
        if not existing:
            # Keys compare by their bytes, the order the engine sends them in (see
            # `Catalog.sorted_keys`): a baseline appends to the key index's last page
            # instead of splitting pages all over it, and the index ends up about a
            # third smaller; byte comparisons are also cheaper than a locale's.
            definitions = [sql.SQL('{} text COLLATE "C" PRIMARY KEY').format(sql.Identifier(key))]
            definitions += [
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in types.items()
            ]
            statement = sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) WITH (fillfactor = {})").format(
                self.target, sql.SQL(", ").join(definitions), sql.Literal(self.config.fill_factor)
            )
        else:
            statement = sql.SQL("ALTER TABLE {} {}").format(
                self.target,
                sql.SQL(", ").join(
                    sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(sql.Identifier(n), sql.SQL(t))
                    for n, t in types.items()
                ),
            )
        with connection.transaction():
            connection.execute(statement)
        logger.info("postgres destination %s: created columns %s", self.where, types)
        return types if existing else {key: "text", **types}

    def _pool_or_open(self) -> psycopg_pool.ConnectionPool:
        pool = self._pool
        if pool is None:
            pool = psycopg_pool.ConnectionPool(
                self.config.url.get_secret_value(),
                min_size=1,
                max_size=self.config.concurrency,
                timeout=self.config.timeout,
                configure=_configure,
                kwargs={"connect_timeout": int(self.config.timeout)},
                name=f"corral-postgres-{self.config.table}",
                open=False,
            )
            pool.open(wait=False)
            self._pool = pool
        return pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_lock:
            pool = self._pool_or_open()
        with pool.connection() as connection:
            yield connection

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's errors as Corral's: transient ones may pass, the others need a person."""
        try:
            yield
        except _TRANSIENT_ERRORS as error:
            raise TransientDestinationError(
                f"PostgreSQL at {self.address} failed: {_message(error)}",
                where=self.where,
            ) from error
        except psycopg.errors.InsufficientPrivilege as error:
            raise DestinationError(
                f"PostgreSQL at {self.address} refused: {_message(error)}",
                where=self.where,
                hint="grant the user INSERT, UPDATE and DELETE on the table (CREATE on the "
                "schema to let Corral create it)",
            ) from error
        except psycopg.errors.InvalidColumnReference as error:
            raise DestinationError(
                f"the key column {self.config.key_column!r} of {self.where} is not unique: "
                f"{_message(error)}",
                hint="make the key column the table's primary key, or give it a unique index",
            ) from error
        except psycopg.Error as error:
            raise DestinationError(
                f"PostgreSQL at {self.address} failed: {_message(error)}", where=self.where
            ) from error


# Isolating k refused rows in a batch of n takes about 2k·log2(n) savepoint attempts; a
# batch where every row is refused (a field mapped to a column of the wrong type) would
# take 2n. Past this many attempts, the rows not yet tried are rejected unseen and retry
# on the next run.
_MAX_ATTEMPTS = 2_000


@dataclass
class _Budget:
    attempts: int
    first_error: str | None = None


@dataclass(frozen=True)
class _Merge:
    """One way to merge the staging table into the target."""

    kind: str  # upsert, insert, update or delete
    returns_keys: bool = False
    # The rows are expected to be new: COPY them straight into the target (see
    # `_copy_into_target`), and when staging, try a plain INSERT first (see `_inserted`).
    optimistic: bool = False

    def statement(self, target: sql.Identifier, key: str, fields: Sequence[str]) -> sql.Composed:
        key_id = sql.Identifier(key)
        columns = sql.SQL(", ").join(map(sql.Identifier, (key, *fields)))
        if self.kind == "delete":
            return sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE t.{} = s.{}").format(
                target, STAGING, key_id, key_id
            )
        if self.kind == "update":
            if not fields:  # nothing to set: the keys that exist are the ones "updated"
                return sql.SQL("SELECT s.{}::text FROM {} AS s JOIN {} AS t ON t.{} = s.{}").format(
                    key_id, STAGING, target, key_id, key_id
                )
            return sql.SQL(
                "UPDATE {} AS t SET {} FROM {} AS s WHERE t.{} = s.{} RETURNING s.{}::text"
            ).format(
                target,
                sql.SQL(", ").join(
                    sql.SQL("{} = s.{}").format(sql.Identifier(f), sql.Identifier(f))
                    for f in fields
                ),
                STAGING,
                key_id,
                key_id,
                key_id,
            )
        insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({})").format(
            target, columns, columns, STAGING, key_id
        )
        if self.kind == "insert" or not fields:
            return sql.SQL("{} DO NOTHING").format(insert)
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(f), sql.Identifier(f)) for f in fields
        )
        return sql.SQL("{} DO UPDATE SET {}").format(insert, updates)


def _inserted(
    cursor: psycopg.Cursor[Any], merge: _Merge, target: sql.Identifier, columns: CopyColumns
) -> bool:
    """Try a plain INSERT of the staged rows; False if a key already exists.

    Staged add batches get here when their COPY into the target failed on a value, not on
    a key, so the halves that hold no refused value are still most likely new rows; a
    plain INSERT ... SELECT is about four times faster than one with ON CONFLICT DO
    UPDATE, which inserts each row speculatively. Rows the table already has fail on the
    key and go through the ON CONFLICT statement instead.
    """
    names = sql.SQL(", ").join(map(sql.Identifier, columns.names))
    try:
        with cursor.connection.transaction():
            cursor.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    target, names, names, STAGING
                )
            )
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _merge_for(mode: Mode, operation: Operation) -> _Merge:
    if operation is Operation.REMOVE:
        if mode is not Mode.MIRROR:
            raise InternalError(f"the postgres destination was sent removals in {mode} mode")
        return _Merge("delete")
    if mode is Mode.UPDATE:
        return _Merge("update", returns_keys=True)
    adding = operation is Operation.ADD
    return _Merge("insert" if mode is Mode.INSERT else "upsert", optimistic=adding)


def _column_type(name: str, records: Sequence[Record], sample: int = 1000) -> str:
    """The PostgreSQL type for a new column, from the first `sample` values it has."""
    kinds: set[str] = set()
    seen = 0
    for record in records:
        value = record.fields.get(name)
        if value is None:
            continue
        kinds.add(_TYPE_NAMES.get(type(value)) or _type_name(value))
        seen += 1
        if seen >= sample:
            break
    if len(kinds) == 1:
        return kinds.pop()
    if kinds in ({"bigint", "double precision"}, {"bigint", "numeric"}):
        return "double precision" if "double precision" in kinds else "numeric"
    return "text"


def _type_name(value: Any) -> str:
    return next((name for kind, name in _COLUMN_TYPES if isinstance(value, kind)), "text")


def _configure(connection: psycopg.Connection[Any]) -> None:
    # Naive datetimes are read in the session's time zone: make it UTC, whatever the server's.
    connection.execute("SET TIME ZONE 'UTC'")
    # A staged batch of 50,000 rows overflows the default 8 MB of temporary buffers and
    # spills to disk; the setting caps memory per connection, it does not reserve it.
    connection.execute("SET temp_buffers = '64MB'")
    connection.commit()


_COPY_CONTEXT = re.compile(r"column (\S+): ")


def _message(error: BaseException) -> str:
    """PostgreSQL's own message for an error, with the column when it names one."""
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        message = error.diag.message_primary
        column = error.diag.column_name
        if column is None and error.diag.context:
            found = _COPY_CONTEXT.search(error.diag.context)
            column = found.group(1) if found else None
        return f"{message} (column {column})" if column else message
    return str(error).strip() or type(error).__name__
