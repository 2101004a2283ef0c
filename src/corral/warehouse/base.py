"""The one protocol every warehouse adapter implements.

Corral hands an adapter sqlglot expression trees; the adapter renders them in its own
dialect, runs them, and returns Arrow. Adapters never see audiences or destinations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pyarrow as pa
from sqlglot import exp


@dataclass(frozen=True)
class TableRef:
    """A table in the warehouse, optionally qualified by schema (and catalog)."""

    name: str
    schema: str | None = None
    catalog: str | None = None

    def to_expression(self) -> exp.Table:
        return exp.table_(self.name, db=self.schema, catalog=self.catalog, quoted=True)

    def __str__(self) -> str:
        return ".".join(p for p in (self.catalog, self.schema, self.name) if p)


@dataclass(frozen=True)
class ColumnInfo:
    """A column as the warehouse reports it.

    `type` is a normalized family: string, integer, decimal, float, boolean, date,
    timestamp, or other; `native_type` is the engine's own spelling.
    """

    name: str
    type: str
    native_type: str
    nullable: bool = True


@runtime_checkable
class Warehouse(Protocol):
    """A connection (pool) to one warehouse.

    `dialect` is a canonical Corral dialect name (see `corral.sql.ALL_DIALECTS`).
    Statements are sqlglot trees or, for DDL the adapter writes itself, text.
    """

    dialect: str

    def query(self, statement: exp.Expr) -> pa.Table:
        """Run a query and return all of its rows."""
        ...

    def stream(self, statement: exp.Expr, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Run a query and yield its rows in Arrow batches of at most `batch_size`."""
        ...

    def execute(self, statement: exp.Expr) -> None:
        """Run a statement that returns no rows (DDL, INSERT ... SELECT)."""
        ...

    def columns(self, table: TableRef) -> list[ColumnInfo]:
        """The columns of a table or view; raises WarehouseError when it does not exist."""
        ...

    def query_columns(self, statement: exp.Expr) -> list[ColumnInfo]:
        """The columns a query would return, without fetching its rows."""
        ...

    def create_table(self, table: TableRef, data: pa.Table, *, replace: bool = False) -> None:
        """Create a table holding `data` (planner tables, tests, the demo)."""
        ...

    def append(self, table: TableRef, data: pa.Table) -> None:
        """Add the rows of `data` to an existing table whose columns have the same names."""
        ...

    def drop_table(self, table: TableRef, *, if_exists: bool = True) -> None: ...

    def ensure_schema(self, schema: str) -> None:
        """Create a schema (namespace) if it does not exist."""
        ...

    def close(self) -> None: ...
