"""DuckDB runs the warehouse conformance suite, plus what is DuckDB's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.errors import WarehouseError
from corral.warehouse import DuckDBWarehouse, TableRef
from tests.warehouse.conformance import WarehouseConformance


class TestDuckDBConformance(WarehouseConformance):
    @pytest.fixture
    def warehouse(self, duckdb_warehouse: DuckDBWarehouse) -> DuckDBWarehouse:
        return duckdb_warehouse

    @pytest.fixture
    def schema(self) -> str | None:
        return "main"


@pytest.fixture
def database_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "shop.duckdb"
    writer = DuckDBWarehouse(str(path))
    writer.create_table(TableRef("customers"), pa.table({"id": [1, 2]}))
    writer.close()
    yield path


def test_a_file_database_persists_between_warehouses(database_file: Path) -> None:
    reader = DuckDBWarehouse(str(database_file), read_only=True)

    assert reader.query(exp.select("*").from_("customers")).num_rows == 2
    reader.close()


def test_a_read_only_database_refuses_writes(database_file: Path) -> None:
    reader = DuckDBWarehouse(str(database_file), read_only=True)

    with pytest.raises(WarehouseError, match="read-only"):
        reader.create_table(TableRef("more"), pa.table({"id": [1]}))
    reader.close()


def test_an_unopenable_path_raises_a_warehouse_error(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no_such_dir"):
        DuckDBWarehouse(str(tmp_path / "no_such_dir" / "x.duckdb"))


def test_sessions_run_in_utc(duckdb_warehouse: DuckDBWarehouse) -> None:
    setting = exp.func("current_setting", exp.Literal.string("TimeZone")).as_("tz")

    assert duckdb_warehouse.query(exp.select(setting)).to_pylist() == [{"tz": "UTC"}]


def test_a_failed_query_leaves_the_thread_cursor_usable(duckdb_warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError):
        duckdb_warehouse.query(exp.select("*").from_("nowhere"))

    assert duckdb_warehouse.query(exp.select(exp.Literal.number(1).as_("x"))).num_rows == 1


def test_an_unfinished_stream_does_not_block_other_queries(
    duckdb_warehouse: DuckDBWarehouse,
) -> None:
    numbers = exp.select("*").from_(exp.func("range", exp.Literal.number(100)))
    stream = duckdb_warehouse.stream(numbers, batch_size=10)
    next(stream)

    assert duckdb_warehouse.query(numbers).num_rows == 100
    stream.close()
