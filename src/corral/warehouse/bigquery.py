"""Google BigQuery through the google-cloud-bigquery client (`pip install 'corral[bigquery]'`).

BigQuery is not reached through DB-API: queries run as jobs whose results arrive as Arrow,
column lists come from the table's schema, planner tables are loaded from Parquet, and
`query_columns` is a dry run, which costs nothing. Not exercised against the real service
in Corral's test-suite; a fake client checks the calls.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from corral.errors import ConfigurationError, WarehouseError
from corral.sql import render
from corral.warehouse._common import portable_arrow, timed, type_family
from corral.warehouse._errors import warehouse_error
from corral.warehouse.base import ColumnInfo, TableRef
from corral.warehouse.dbapi import import_driver, parse_url, require

logger = logging.getLogger(__name__)

_ERROR_KINDS = {"NotFound": "missing", "Conflict": "exists", "Forbidden": "permission"}


class BigQueryWarehouse:
    """One BigQuery project; `dataset` is where unqualified table names resolve.

    `client` is an existing `google.cloud.bigquery.Client` (or a test double); without it
    one is made with the application default credentials.
    """

    dialect = "bigquery"

    def __init__(
        self,
        project: str,
        dataset: str | None = None,
        *,
        location: str | None = None,
        client: Any = None,
    ) -> None:
        self._bigquery = import_driver("google.cloud.bigquery", "bigquery")
        self.project = project
        self.dataset = dataset
        self.location = location
        self._client = client or self._bigquery.Client(project=project, location=location)

    def __repr__(self) -> str:
        return f"BigQueryWarehouse({self.project!r}, {self.dataset!r})"

    @classmethod
    def from_url(cls, url: str) -> BigQueryWarehouse:
        """`bigquery://project/dataset?location=EU`."""
        parsed = parse_url(url)
        project = require(parsed.host, "project", url, "bigquery://my-project/my_dataset")
        dataset = parsed.path[0] if parsed.path else None
        return cls(project, dataset, location=parsed.params.get("location"))

    def query(self, statement: exp.Expr) -> pa.Table:
        sql = render(statement, self.dialect)
        with self._errors(sql), timed(logger, "bigquery", sql):
            table: pa.Table = self._run(sql).to_arrow()
        return table

    def stream(self, statement: exp.Expr, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        sql = render(statement, self.dialect)
        with self._errors(sql), timed(logger, "bigquery stream", sql):
            rows = self._run(sql).result(page_size=batch_size)
            for batch in rows.to_arrow_iterable():
                yield from pa.Table.from_batches([batch]).to_batches(max_chunksize=batch_size)

    def execute(self, statement: exp.Expr) -> None:
        sql = render(statement, self.dialect)
        with self._errors(sql), timed(logger, "bigquery", sql):
            self._run(sql).result()

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        table_id = self._table_id(table)
        with self._errors(f"get table {table_id}"):
            schema = self._client.get_table(table_id).schema
        return [_column(field) for field in schema]

    def query_columns(self, statement: exp.Expr) -> list[ColumnInfo]:
        sql = render(statement, self.dialect)
        with self._errors(sql):
            schema = self._run(sql, dry_run=True, use_query_cache=False).schema
        return [_column(field) for field in schema]

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        table_id = self._table_id(table)
        buffer = io.BytesIO()
        pq.write_table(portable_arrow(data), buffer)
        buffer.seek(0)
        config = self._bigquery.LoadJobConfig(
            source_format=self._bigquery.SourceFormat.PARQUET,
            write_disposition="WRITE_TRUNCATE" if replace else "WRITE_EMPTY",
        )
        with self._errors(f"load {table_id}"), timed(logger, "bigquery load", table_id):
            self._client.load_table_from_file(buffer, table_id, job_config=config).result()

    def append(self, table: TableRef, data: pa.Table) -> None:
        table_id = self._table_id(table)
        buffer = io.BytesIO()
        pq.write_table(portable_arrow(data), buffer)
        buffer.seek(0)
        config = self._bigquery.LoadJobConfig(
            source_format=self._bigquery.SourceFormat.PARQUET,
            write_disposition="WRITE_APPEND",
        )
        with self._errors(f"append {table_id}"), timed(logger, "bigquery load", table_id):
            self._client.load_table_from_file(buffer, table_id, job_config=config).result()

    def drop_table(self, table: TableRef, *, if_exists: bool = True) -> None:
        table_id = self._table_id(table)
        with self._errors(f"delete table {table_id}"):
            self._client.delete_table(table_id, not_found_ok=if_exists)

    def ensure_schema(self, schema: str) -> None:
        dataset = self._bigquery.Dataset(f"{self.project}.{schema}")
        if self.location:
            dataset.location = self.location
        with self._errors(f"create dataset {schema}"):
            self._client.create_dataset(dataset, exists_ok=True)

    def close(self) -> None:
        self._client.close()

    def _run(self, sql: str, **options: Any) -> Any:
        config = self._bigquery.QueryJobConfig(**options)
        if self.dataset:
            config.default_dataset = f"{self.project}.{self.dataset}"
        return self._client.query(sql, job_config=config, location=self.location)

    def _table_id(self, table: TableRef) -> str:
        dataset = table.schema or self.dataset
        if not dataset:
            raise ConfigurationError(
                f"table {table} names no dataset and the warehouse has no default one",
                hint="give the table a schema, or connect with bigquery://project/dataset",
            )
        return ".".join((table.catalog or self.project, dataset, table.name))

    @contextmanager
    def _errors(self, sql: str) -> Iterator[None]:
        exceptions = import_driver("google.api_core.exceptions", "bigquery")
        try:
            yield
        except WarehouseError:
            raise
        except exceptions.GoogleAPIError as error:
            kind = _ERROR_KINDS.get(type(error).__name__, "other")
            raise warehouse_error("bigquery", sql, str(error), kind) from error


def _column(field: Any) -> ColumnInfo:
    native = str(field.field_type)
    if native in ("NUMERIC", "BIGNUMERIC") and getattr(field, "precision", None):
        native = f"{native}({field.precision},{field.scale or 0})"
    return ColumnInfo(
        name=field.name,
        type=type_family(native),
        native_type=native,
        nullable=getattr(field, "mode", "NULLABLE") != "REQUIRED",
    )
