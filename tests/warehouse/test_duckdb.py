"""DuckDB runs the warehouse conformance suite, plus what is DuckDB's own."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.errors import ConfigurationError, WarehouseError
from corral.warehouse import DuckDBWarehouse, TableRef, connect
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


def _running_at_once(warehouse: DuckDBWarehouse, calls: int) -> int:
    """The most queries inside DuckDB at the same moment, over `calls` threads querying at
    once (each query is held open for 50 ms once it has its cursor)."""
    running, most = 0, 0
    lock = threading.Lock()
    open_cursor = warehouse._thread_cursor

    @contextmanager
    def held(sql: str) -> Iterator[Any]:
        nonlocal running, most
        with open_cursor(sql) as cursor:
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.05)
            with lock:
                running -= 1
            yield cursor

    warehouse._thread_cursor = held  # type: ignore[method-assign]
    one = exp.select(exp.Literal.number(1).as_("one"))
    threads = [threading.Thread(target=warehouse.query, args=(one,)) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most


def test_at_most_max_queries_run_at_once_and_the_rest_wait_their_turn() -> None:
    assert _running_at_once(DuckDBWarehouse(max_queries=2), calls=8) == 2
    assert _running_at_once(DuckDBWarehouse(max_queries=8), calls=8) > 2


def test_max_queries_defaults_to_duckdbs_threads_and_comes_from_the_url() -> None:
    threads = DuckDBWarehouse()._connection.sql("SELECT current_setting('threads')").fetchall()
    assert DuckDBWarehouse().max_queries == int(threads[0][0])
    warehouse = connect("duckdb://:memory:?max_queries=3")
    assert isinstance(warehouse, DuckDBWarehouse) and warehouse.max_queries == 3


def test_a_max_queries_that_is_not_a_positive_number_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"max_queries='many'.*not a whole number"):
        connect("duckdb://:memory:?max_queries=many")
    with pytest.raises(ConfigurationError, match="max_queries must be at least 1"):
        connect("duckdb://:memory:?max_queries=0")


def test_a_file_another_process_holds_says_so_and_how_to_go_on(database_file: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; held = duckdb.connect(sys.argv[1]); "
            "print('open', flush=True); time.sleep(60)",
            str(database_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseError) as raised:
            DuckDBWarehouse(str(database_file))
    finally:
        holder.kill()
        holder.wait()
    assert "Could not set lock" in raised.value.message
    assert raised.value.hint is not None and "one process at a time" in raised.value.hint
