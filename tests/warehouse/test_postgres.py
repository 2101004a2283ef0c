"""PostgreSQL runs the warehouse conformance suite, plus what is PostgreSQL's own."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.errors import WarehouseError
from corral.warehouse import TableRef, connect
from tests.conftest import TEST_SCHEMA
from tests.warehouse.conformance import WarehouseConformance

pytestmark = pytest.mark.postgres


class TestPostgresConformance(WarehouseConformance):
    @pytest.fixture
    def warehouse(self, postgres_warehouse: Any) -> Any:
        return postgres_warehouse

    @pytest.fixture
    def schema(self) -> str | None:
        return TEST_SCHEMA


def test_unqualified_names_resolve_in_the_test_schema(postgres_warehouse: Any) -> None:
    table = TableRef("unqualified_probe")
    postgres_warehouse.create_table(table, pa.table({"id": [1]}), replace=True)

    columns = postgres_warehouse.columns(TableRef("unqualified_probe", schema=TEST_SCHEMA))

    assert [c.name for c in columns] == ["id"]
    postgres_warehouse.drop_table(table)


def test_numeric_precision_and_json_and_uuid(postgres_warehouse: Any) -> None:
    statement = exp.select(
        exp.cast(exp.Literal.number("123.4567"), "DECIMAL(12, 4)").as_("exact"),
        exp.cast(exp.Literal.number("1.5"), "DECIMAL").as_("unconstrained"),
        exp.cast(exp.Literal.string('{"a": 1}'), "JSONB").as_("doc"),
        exp.cast(exp.Literal.string("00000000-0000-0000-0000-000000000001"), "UUID").as_("key"),
        exp.cast(exp.Literal.number(2**40), "BIGINT").as_("big"),
    )

    result = postgres_warehouse.query(statement)

    assert result.schema.field("exact").type == pa.decimal128(12, 4)
    assert result.schema.field("unconstrained").type == pa.float64()
    assert result.schema.field("big").type == pa.int64()
    assert result.to_pylist()[0]["doc"] == '{"a": 1}'
    assert result.to_pylist()[0]["key"] == "00000000-0000-0000-0000-000000000001"


def test_an_unreachable_server_says_where_and_why() -> None:
    warehouse = connect("postgresql://corral:secret@127.0.0.1:9/nowhere")
    warehouse.timeout = 1  # type: ignore[attr-defined]

    with pytest.raises(WarehouseError) as caught:
        warehouse.query(exp.select(exp.Literal.number(1)))

    message = str(caught.value)
    assert "127.0.0.1:9/nowhere" in message
    assert "secret" not in message
    warehouse.close()


def test_the_pool_opens_lazily() -> None:
    warehouse = connect("postgresql://corral@127.0.0.1:9/nowhere")

    assert warehouse.dialect == "postgres"
    warehouse.close()
