"""Warehouse adapters: one protocol, one adapter per engine, and `connect(url)`.

    >>> warehouse = connect("duckdb://:memory:")
    >>> warehouse.dialect
    'duckdb'

URL forms accepted by `connect`:

    duckdb:///path/to/file.duckdb  duckdb://:memory:  (?read_only=true&max_queries=4)
    postgresql://user:password@host:5432/db  (also postgres://; greenplum://... for Greenplum)
    spark://local  spark://local[4]  spark://master-host:7077
    databricks://token:<access token>@<host>/<http path>?catalog=..&schema=..
    snowflake://user:password@account/database/schema?warehouse=..&role=..
    bigquery://project/dataset?location=..
    redshift://user:password@host:5439/database
    athena://region/schema?s3_staging_dir=s3://bucket/prefix/&work_group=..
    trino://user[:password]@host:8080/catalog/schema
    mssql://user:password@host:1433/database  (also sqlserver://, synapse://, fabric://)

PostgreSQL and Spark adapters are imported on first use, so `corral.warehouse` imports
without their extras; vendor drivers are imported when an adapter is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from corral.errors import ConfigurationError
from corral.warehouse.base import ColumnInfo, TableRef, Warehouse
from corral.warehouse.bigquery import BigQueryWarehouse
from corral.warehouse.dbapi import (
    AthenaWarehouse,
    DBAPIWarehouse,
    RedshiftWarehouse,
    SnowflakeWarehouse,
    SQLServerWarehouse,
    TrinoWarehouse,
    redact,
)
from corral.warehouse.duckdb import DuckDBWarehouse

if TYPE_CHECKING:
    from corral.warehouse.postgres import PostgresWarehouse
    from corral.warehouse.spark import DatabricksWarehouse, SparkWarehouse

__all__ = [
    "AthenaWarehouse",
    "BigQueryWarehouse",
    "ColumnInfo",
    "DBAPIWarehouse",
    "DatabricksWarehouse",
    "DuckDBWarehouse",
    "PostgresWarehouse",
    "RedshiftWarehouse",
    "SQLServerWarehouse",
    "SnowflakeWarehouse",
    "SparkWarehouse",
    "TableRef",
    "TrinoWarehouse",
    "Warehouse",
    "connect",
]

_LAZY = {
    "PostgresWarehouse": "corral.warehouse.postgres",
    "SparkWarehouse": "corral.warehouse.spark",
    "DatabricksWarehouse": "corral.warehouse.spark",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def connect(url: str) -> Warehouse:
    """The warehouse a URL names; see the module docstring for the forms."""
    # Not urlsplit: spark://local[4] is no valid host, and the scheme is all that is needed.
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    scheme = match.group(1).lower() if match else ""
    factory = _FACTORIES.get(scheme)
    if factory is None:
        raise ConfigurationError(
            f"unknown warehouse URL scheme {scheme!r} in {redact(url)!r}",
            hint="use one of: " + ", ".join(f"{s}://" for s in _FACTORIES),
        )
    return factory(url)


def _duckdb(url: str) -> Warehouse:
    rest, _, query = url.split("://", 1)[1].partition("?")
    params = dict(parse_qsl(query))
    read_only = params.get("read_only", "false").lower() in ("1", "true", "yes")
    max_queries = params.get("max_queries")
    if max_queries is not None and not max_queries.isdigit():
        raise ConfigurationError(
            f"max_queries={max_queries!r} in {redact(url)!r} is not a whole number",
            hint="write, for example, ?max_queries=4, or leave it out",
        )
    return DuckDBWarehouse(
        rest or ":memory:",
        read_only=read_only,
        max_queries=int(max_queries) if max_queries is not None else None,
    )


def _postgres(url: str) -> Warehouse:
    from corral.warehouse.postgres import PostgresWarehouse

    return PostgresWarehouse(url)


def _greenplum(url: str) -> Warehouse:
    from corral.warehouse.postgres import PostgresWarehouse

    return PostgresWarehouse("postgresql://" + url.split("://", 1)[1], dialect="greenplum")


def _spark(url: str) -> Warehouse:
    from corral.warehouse.spark import SparkWarehouse

    rest = url.split("://", 1)[1].rstrip("/")
    if rest in ("", "local"):
        return SparkWarehouse()
    # local[N] is a local master; anything else is a standalone cluster's own spark:// URL.
    return SparkWarehouse(master=rest if rest.startswith("local") else url)


def _databricks(url: str) -> Warehouse:
    from corral.warehouse.spark import DatabricksWarehouse

    return DatabricksWarehouse.from_url(url)


_FACTORIES: dict[str, Callable[[str], Warehouse]] = {
    "duckdb": _duckdb,
    "postgresql": _postgres,
    "postgres": _postgres,
    "greenplum": _greenplum,
    "spark": _spark,
    "databricks": _databricks,
    "snowflake": SnowflakeWarehouse.from_url,
    "bigquery": BigQueryWarehouse.from_url,
    "redshift": RedshiftWarehouse.from_url,
    "athena": AthenaWarehouse.from_url,
    "trino": TrinoWarehouse.from_url,
    "mssql": SQLServerWarehouse.from_url,
    "sqlserver": SQLServerWarehouse.from_url,
    "synapse": SQLServerWarehouse.from_url,
    "fabric": SQLServerWarehouse.from_url,
}
