"""The conformance suite every warehouse adapter runs.

Subclass `WarehouseConformance` once per engine and give it two fixtures: `warehouse`
(the adapter under test) and `schema` (where the tests may create tables; None means
the warehouse's current schema). Engine differences the suite tolerates are class
attributes, each with the reason next to its override.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.errors import WarehouseError
from corral.sql import canonical_dialect
from corral.warehouse import ColumnInfo, TableRef, Warehouse
from corral.warehouse._common import arrow_family, drop_schema_statement

UTC = dt.UTC

SAMPLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["Ada", "O'Brien", None], pa.string()),
        "visits": pa.array([7, None, -3], pa.int32()),
        "amount": pa.array([Decimal("12.34"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
        "score": pa.array([1.5, None, -2.25], pa.float64()),
        "active": pa.array([True, False, None], pa.bool_()),
        "birthday": pa.array([dt.date(1990, 1, 2), None, dt.date(2000, 2, 29)], pa.date32()),
        "seen_at": pa.array(
            [
                dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
                None,
                dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "created": pa.array(
            [dt.datetime(2024, 6, 1, 12, 0), dt.datetime(2020, 2, 29, 0, 0, 1), None],
            pa.timestamp("us"),
        ),
    }
)
FAMILIES = {
    "id": "integer",
    "name": "string",
    "visits": "integer",
    "amount": "decimal",
    "score": "float",
    "active": "boolean",
    "birthday": "date",
    "seen_at": "timestamp",
    "created": "timestamp",
}
# Strings that must stay inert literals however they are quoted.
ODD_STRINGS = [
    "O'Brien",
    "'; DROP TABLE x; --",
    "back\\slash \\' \\\\",
    'double "quoted"',
    "two\nlines",
    "ünïcødé ✓",
    "",
]


def _normalized(value: Any) -> Any:
    """Compare instants, not spellings: aware timestamps become naive UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _normalized(v) for k, v in row.items()} for row in table.to_pylist()]


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _select_all(table: TableRef, order_by: str = "id") -> exp.Select:
    return exp.select("*").from_(table.to_expression()).order_by(exp.column(order_by))


class WarehouseConformance:
    """Every adapter must pass these; subclasses provide `warehouse` and `schema`."""

    # Spark has one timestamp type for loaded data: naive values come back as UTC instants.
    naive_timestamps_round_trip: ClassVar[bool] = True

    @pytest.fixture
    def warehouse(self) -> Warehouse:
        raise NotImplementedError("subclasses provide the warehouse under test")

    @pytest.fixture
    def schema(self) -> str | None:
        return None

    @pytest.fixture
    def new_table(self, warehouse: Warehouse, schema: str | None) -> Iterator[TableRef]:
        """A table name unused so far, dropped after the test."""
        table = TableRef(f"t_{uuid.uuid4().hex[:10]}", schema=schema)
        yield table
        warehouse.drop_table(table, if_exists=True)

    @pytest.fixture
    def sample(self, warehouse: Warehouse, new_table: TableRef) -> TableRef:
        warehouse.create_table(new_table, SAMPLE)
        return new_table

    def test_is_a_warehouse_with_a_canonical_dialect(self, warehouse: Warehouse) -> None:
        assert isinstance(warehouse, Warehouse)
        assert canonical_dialect(warehouse.dialect) == warehouse.dialect

    def test_create_table_round_trips_values(self, warehouse: Warehouse, sample: TableRef) -> None:
        result = warehouse.query(_select_all(sample))

        assert result.column_names == SAMPLE.column_names
        assert _rows(result) == _rows(SAMPLE)

    def test_create_table_round_trips_types(self, warehouse: Warehouse, sample: TableRef) -> None:
        schema = warehouse.query(_select_all(sample)).schema

        assert {f.name: arrow_family(f.type) for f in schema} == FAMILIES
        assert schema.field("amount").type == pa.decimal128(10, 2)
        assert schema.field("seen_at").type.tz in ("UTC", "Etc/UTC", "+00:00")
        if self.naive_timestamps_round_trip:
            assert schema.field("created").type.tz is None

    def test_create_table_refuses_to_overwrite_unless_asked(
        self, warehouse: Warehouse, sample: TableRef
    ) -> None:
        with pytest.raises(WarehouseError):
            warehouse.create_table(sample, SAMPLE)

        warehouse.create_table(sample, SAMPLE.slice(0, 1), replace=True)
        assert warehouse.query(_select_all(sample)).num_rows == 1

    def test_append_adds_rows_by_column_name(
        self, warehouse: Warehouse, new_table: TableRef
    ) -> None:
        warehouse.create_table(new_table, SAMPLE.slice(0, 1))
        # Columns in another order: append matches them by name, not by position.
        warehouse.append(new_table, SAMPLE.slice(1).select(list(reversed(SAMPLE.column_names))))

        assert _rows(warehouse.query(_select_all(new_table))) == _rows(SAMPLE)

    def test_create_empty_table(self, warehouse: Warehouse, new_table: TableRef) -> None:
        warehouse.create_table(new_table, SAMPLE.slice(0, 0))

        assert [c.name for c in warehouse.columns(new_table)] == SAMPLE.column_names
        assert warehouse.query(_select_all(new_table)).num_rows == 0

    def test_stream_respects_batch_size(self, warehouse: Warehouse, new_table: TableRef) -> None:
        rows = 2_500
        warehouse.create_table(new_table, pa.table({"id": pa.array(range(rows), pa.int64())}))

        batches = list(warehouse.stream(_select_all(new_table), batch_size=1_000))

        assert all(0 < b.num_rows <= 1_000 for b in batches)
        assert len(batches) >= 3
        assert len({b.schema for b in batches}) == 1
        ids = [i for b in batches for i in b.column("id").to_pylist()]
        assert ids == list(range(rows))

    def test_stream_and_query_agree(self, warehouse: Warehouse, sample: TableRef) -> None:
        queried = warehouse.query(_select_all(sample))

        streamed = pa.Table.from_batches(list(warehouse.stream(_select_all(sample), batch_size=2)))

        assert _rows(streamed) == _rows(queried)
        assert [arrow_family(t) for t in streamed.schema.types] == [
            arrow_family(t) for t in queried.schema.types
        ]

    def test_stream_of_an_empty_result(self, warehouse: Warehouse, sample: TableRef) -> None:
        statement = _select_all(sample).where(exp.column("id").eq(-1))

        assert sum(b.num_rows for b in warehouse.stream(statement, batch_size=10)) == 0
        empty = warehouse.query(statement)
        assert empty.num_rows == 0
        assert empty.column_names == SAMPLE.column_names

    def test_columns_lists_names_and_families(self, warehouse: Warehouse, sample: TableRef) -> None:
        columns = warehouse.columns(sample)

        assert [c.name for c in columns] == SAMPLE.column_names
        assert {c.name: c.type for c in columns} == FAMILIES
        assert all(isinstance(c, ColumnInfo) and c.native_type for c in columns)

    def test_columns_of_a_missing_table(self, warehouse: Warehouse, schema: str | None) -> None:
        with pytest.raises(WarehouseError, match="no_such_table"):
            warehouse.columns(TableRef("no_such_table", schema=schema))

    def test_query_columns(self, warehouse: Warehouse, sample: TableRef) -> None:
        statement = exp.select(
            exp.column("id"),
            exp.column("name").as_("label"),
            (exp.column("amount") * 2).as_("doubled"),
            exp.column("seen_at"),
        ).from_(sample.to_expression())

        columns = warehouse.query_columns(statement)

        assert [(c.name, c.type) for c in columns] == [
            ("id", "integer"),
            ("label", "string"),
            ("doubled", "decimal"),
            ("seen_at", "timestamp"),
        ]

    def test_execute_ddl_and_insert_select(
        self, warehouse: Warehouse, sample: TableRef, new_table: TableRef
    ) -> None:
        target = TableRef(new_table.name + "_copy", schema=new_table.schema)
        definition = exp.Schema(
            this=target.to_expression(),
            expressions=[
                exp.ColumnDef(this=_quoted(name), kind=exp.DataType.build(kind))
                for name, kind in (("id", "BIGINT"), ("name", "TEXT"))
            ],
        )
        copy = exp.select("id", "name").from_(sample.to_expression()).where(exp.column("id") >= 2)
        insert = exp.insert(
            copy,
            target.to_expression(),
            columns=[exp.to_identifier(n, quoted=True) for n in ("id", "name")],
        )

        try:
            warehouse.execute(exp.Create(this=definition, kind="TABLE"))
            warehouse.execute(insert)
            rows = warehouse.query(_select_all(target)).to_pylist()
        finally:
            warehouse.drop_table(target)

        assert rows == [{"id": 2, "name": "O'Brien"}, {"id": 3, "name": None}]

    def test_odd_literals_and_identifiers_stay_inert(
        self, warehouse: Warehouse, sample: TableRef
    ) -> None:
        aliases = [f'odd "col" {i}; -- `x`' for i in range(len(ODD_STRINGS))]
        statement = exp.select(
            *(
                exp.Literal.string(s).as_(a, quoted=True)
                for s, a in zip(ODD_STRINGS, aliases, strict=True)
            )
        )

        result = warehouse.query(statement)

        assert result.column_names == aliases
        assert result.to_pylist() == [dict(zip(aliases, ODD_STRINGS, strict=True))]
        assert warehouse.query(_select_all(sample)).num_rows == 3

    def test_string_filters_match_quotes_exactly(
        self, warehouse: Warehouse, sample: TableRef
    ) -> None:
        def ids_named(value: str) -> list[int]:
            statement = _select_all(sample).where(exp.column("name").eq(exp.Literal.string(value)))
            return warehouse.query(statement).column("id").to_pylist()

        assert ids_named("O'Brien") == [2]
        assert ids_named("'; DROP TABLE x; --") == []
        assert ids_named("O''Brien") == []

    def test_odd_column_names_survive_create_table(
        self, warehouse: Warehouse, new_table: TableRef
    ) -> None:
        data = pa.table({"first name": ["Ada"], 'the "id"': [1], "ÄÖÜ": [True]})

        warehouse.create_table(new_table, data)

        result = warehouse.query(exp.select("*").from_(new_table.to_expression()))
        assert result.to_pylist() == data.to_pylist()
        assert [c.name for c in warehouse.columns(new_table)] == data.column_names

    def test_missing_table_raises_a_helpful_warehouse_error(
        self, warehouse: Warehouse, schema: str | None
    ) -> None:
        missing = TableRef("no_such_table", schema=schema)

        with pytest.raises(WarehouseError) as caught:
            warehouse.query(exp.select("*").from_(missing.to_expression()))

        error = caught.value
        assert "no_such_table" in error.message
        assert error.where and "no_such_table" in error.where
        assert error.hint and "table" in error.hint

    def test_concurrent_queries_from_eight_threads(
        self, warehouse: Warehouse, sample: TableRef
    ) -> None:
        threads: set[int] = set()

        def count_plus(n: int) -> int:
            threads.add(threading.get_ident())
            statement = exp.select(
                (exp.func("count", exp.Star()) + exp.Literal.number(n)).as_("total")
            ).from_(sample.to_expression())
            return int(warehouse.query(statement).column("total")[0].as_py())

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(count_plus, range(16)))

        assert results == [3 + n for n in range(16)]
        assert len(threads) > 1

    def test_ensure_schema_and_drop_table(self, warehouse: Warehouse) -> None:
        schema = f"corral_conformance_{uuid.uuid4().hex[:8]}"
        table = TableRef("planner_state", schema=schema)
        try:
            warehouse.ensure_schema(schema)
            warehouse.ensure_schema(schema)  # a second time is a no-op
            warehouse.create_table(table, SAMPLE)
            assert len(warehouse.columns(table)) == len(SAMPLE.column_names)

            warehouse.drop_table(table)
            with pytest.raises(WarehouseError):
                warehouse.columns(table)
            warehouse.drop_table(table, if_exists=True)
            with pytest.raises(WarehouseError):
                warehouse.drop_table(table, if_exists=False)
        finally:
            warehouse.execute(drop_schema_statement(schema))
