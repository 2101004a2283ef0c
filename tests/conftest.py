"""Fixtures shared by the whole test-suite.

Engines: `duckdb_warehouse` always runs; `postgres_warehouse` and `spark_warehouse` need a
server or a JVM. When one is not reachable its tests skip locally and FAIL when the CI
environment variable is set, through `require_or_skip`: a green CI run has exercised every
engine. Tests that use those fixtures get the `postgres` or `spark` marker automatically.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from corral.warehouse import DuckDBWarehouse

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# One schema (database, in Spark) per test session, so parallel sessions never collide.
TEST_SCHEMA = f"corral_test_{os.getpid()}"

_MARKERS_BY_FIXTURE = {
    "postgres_url": "postgres",
    "postgres_warehouse": "postgres",
    "spark_session": "spark",
    "spark_warehouse": "spark",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_or_skip(reason: str) -> NoReturn:
    """Skip the test locally; fail it in CI, where every engine must be reachable."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for marker in {_MARKERS_BY_FIXTURE[f] for f in fixtures if f in _MARKERS_BY_FIXTURE}:
            item.add_marker(marker)


@pytest.fixture
def duckdb_warehouse() -> Iterator[DuckDBWarehouse]:
    """A fresh in-memory DuckDB per test."""
    warehouse = DuckDBWarehouse()
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return os.environ.get("CORRAL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_warehouse(postgres_url: str) -> Iterator[Any]:
    """PostgreSQL with `TEST_SCHEMA` first on the search path; the schema is dropped at the end."""
    try:
        import psycopg

        from corral.warehouse.postgres import PostgresWarehouse
    except ImportError:
        require_or_skip("psycopg is not installed: pip install 'corral[postgres]'")
    try:
        psycopg.connect(postgres_url, connect_timeout=3).close()
    except psycopg.Error as error:
        require_or_skip(f"PostgreSQL is not reachable (CORRAL_TEST_POSTGRES_URL): {error}")

    from corral.warehouse._common import drop_schema_statement

    conninfo = psycopg.conninfo.make_conninfo(postgres_url, options=f"-c search_path={TEST_SCHEMA}")
    warehouse = PostgresWarehouse(conninfo)
    warehouse.ensure_schema(TEST_SCHEMA)
    yield warehouse
    warehouse.execute(drop_schema_statement(TEST_SCHEMA))
    warehouse.close()


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local[2] SparkSession for the whole run, logging errors only."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        require_or_skip("pyspark is not installed: pip install 'corral[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        require_or_skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)")

    from corral.warehouse.spark import local_session

    session = local_session("local[2]", warehouse_dir=str(tmp_path_factory.mktemp("spark")))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_warehouse(spark_session: Any) -> Iterator[Any]:
    """Spark with `TEST_SCHEMA` as the current database; dropped at the end."""
    from corral.warehouse._common import drop_schema_statement
    from corral.warehouse.spark import SparkWarehouse

    warehouse = SparkWarehouse(spark_session)
    warehouse.ensure_schema(TEST_SCHEMA)
    spark_session.catalog.setCurrentDatabase(TEST_SCHEMA)
    yield warehouse
    spark_session.catalog.setCurrentDatabase("default")
    warehouse.execute(drop_schema_statement(TEST_SCHEMA))
    warehouse.close()
