"""`connect(url)`: every scheme reaches its adapter, and a bad URL says how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

import corral.warehouse
from corral.errors import ConfigurationError
from corral.warehouse import DuckDBWarehouse, TableRef, connect


def test_duckdb_in_memory() -> None:
    for url in ("duckdb://:memory:", "duckdb://"):
        warehouse = connect(url)
        assert isinstance(warehouse, DuckDBWarehouse)
        assert warehouse.path == ":memory:"
        warehouse.close()


def test_duckdb_file_and_read_only(tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    writer = connect(f"duckdb://{path}")
    writer.ensure_schema("corral_planner")
    writer.close()

    reader = connect(f"duckdb://{path}?read_only=true")

    assert isinstance(reader, DuckDBWarehouse)
    assert reader.path == str(path) and reader.read_only
    reader.close()


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("postgresql://ada:pw@db.example.com:5432/shop", "postgres"),
        ("postgres://ada@db.example.com/shop", "postgres"),
        ("greenplum://ada@gp.example.com:5432/shop", "greenplum"),
    ],
)
def test_postgres_family_urls_build_a_pool_without_connecting(url: str, dialect: str) -> None:
    warehouse = connect(url)

    assert type(warehouse).__name__ == "PostgresWarehouse"
    assert warehouse.dialect == dialect
    assert "pw" not in repr(warehouse)
    warehouse.close()


@pytest.mark.parametrize(
    ("url", "master"),
    [
        ("spark://local", None),
        ("spark://local[4]", "local[4]"),
        ("spark://spark-master.example.com:7077", "spark://spark-master.example.com:7077"),
    ],
)
def test_spark_urls_pick_the_master(
    url: str, master: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)

    monkeypatch.setattr("corral.warehouse.spark.SparkWarehouse", Recorder)

    connect(url)

    assert built == [{"master": master} if master else {}]


def test_an_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connect("mysql://root@localhost/shop")

    message = str(caught.value)
    assert "'mysql'" in message
    for scheme in (
        "duckdb://",
        "postgresql://",
        "spark://",
        "databricks://",
        "snowflake://",
        "bigquery://",
        "redshift://",
        "athena://",
        "trino://",
        "mssql://",
    ):
        assert scheme in message


def test_the_public_surface() -> None:
    for name in corral.warehouse.__all__:
        assert getattr(corral.warehouse, name) is not None
    with pytest.raises(AttributeError):
        corral.warehouse.NoSuchWarehouse  # type: ignore[attr-defined]  # noqa: B018


def test_a_connected_duckdb_answers() -> None:
    warehouse = connect("duckdb://:memory:")
    one = exp.select(exp.Literal.number(1).as_("x"))
    warehouse.execute(exp.Create(this=TableRef("t").to_expression(), kind="TABLE", expression=one))

    assert warehouse.query(exp.select("*").from_("t")).to_pylist() == [{"x": 1}]
    warehouse.close()
