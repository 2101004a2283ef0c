"""Turning an engine's exception into a `WarehouseError` that says what to do next."""

from __future__ import annotations

from corral.errors import WarehouseError
from corral.warehouse._common import first_line
from corral.warehouse.base import TableRef

# What fixes each kind of failure; adapters pick the kind from the driver's error class.
HINTS = {
    "missing": "check the table and column names, their schema, and their case "
    "(Corral quotes every identifier, so names must match exactly)",
    "exists": "pass replace=True to overwrite it, or drop it first",
    "syntax": "the engine rejected Corral's SQL; please report it with this message",
    "permission": "grant the Corral user the rights it needs on this schema, "
    "or give Corral a planner schema it may write to",
    "connection": "check that the warehouse is running and the URL (host, port, database, "
    "credentials) is right",
    "locked": "an embedded DuckDB file is open in one process at a time: stop the other "
    "process (`corral serve` runs previews and syncs itself; use the studio or its API "
    "while it runs), or put the warehouse in a server such as PostgreSQL",
    "other": None,
}


def warehouse_error(engine: str, sql: str, message: str, kind: str = "other") -> WarehouseError:
    """A WarehouseError naming the engine, the SQL's first line and the server's message."""
    where = f"{engine}: {first_line(sql)}" if sql else engine
    return WarehouseError(message.strip(), where=where, hint=HINTS.get(kind))


def missing_table_error(engine: str, table: TableRef) -> WarehouseError:
    return WarehouseError(
        f"table {table} does not exist, or Corral may not read it",
        where=engine,
        hint=HINTS["missing"],
    )
