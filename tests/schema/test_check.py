"""Schema checks against a real DuckDB: every problem is found and explained."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from corral.errors import DefinitionError, UnknownReferenceError
from corral.schema import SchemaDefinition, bind_schema, check_schema
from corral.warehouse import DuckDBWarehouse
from corral.warehouse.base import TableRef


@pytest.fixture
def warehouse() -> Any:
    warehouse = DuckDBWarehouse()
    users = pa.table({
        "user_id": pa.array([1, 2, 2], pa.int64()),
        "email": ["a@x.com", "b@x.com", None],
        "household_id": pa.array([10, None, 11], pa.int64()),
        "signup_at": pa.array([None, None, None], pa.timestamp("us")),
    })  # fmt: skip
    households = pa.table({"household_id": ["10", "11"], "size": [2, 3]})
    orders = pa.table({"order_id": [1, 2], "user_id": [1, 2], "placed_at": ["x", "y"]})
    for name, table in (("users", users), ("households", households), ("orders", orders)):
        warehouse.create_table(TableRef(name), table)
    yield warehouse
    warehouse.close()


def definition(**changes: Any) -> SchemaDefinition:
    data: dict[str, Any] = {
        "parent": {"name": "users", "table": "users", "primary_key": "user_id",
                   "label_columns": ["email"]},
        "models": [
            {"name": "orders", "table": "orders", "primary_key": "order_id"},
        ],
        "relationships": [
            {"from": "users", "to": "orders", "cardinality": "one_to_many",
             "join": {"user_id": "user_id"}},
        ],
    }  # fmt: skip
    data.update(changes)
    return SchemaDefinition.model_validate(data)


def test_a_sound_schema_has_no_problems(warehouse: Any) -> None:
    assert check_schema(definition(), warehouse) == []
    schema = bind_schema(definition(), warehouse)
    assert schema.parent.column_types["signup_at"] == "timestamp"
    assert schema.relation("orders", "users").target == "users"


def test_unknown_columns_are_listed_with_the_real_ones(warehouse: Any) -> None:
    broken = definition(parent={"name": "users", "table": "users", "primary_key": "id",
                                "label_columns": ["mail"]})  # fmt: skip
    problems = [str(p) for p in check_schema(broken, warehouse)]
    assert any("primary_key: no column 'id'" in p and "user_id" in p for p in problems)
    assert any("label_columns: no column 'mail'" in p for p in problems)


def test_join_keys_of_different_types(warehouse: Any) -> None:
    schema = definition(
        models=[{"name": "households", "table": "households", "primary_key": "household_id"}],
        relationships=[{"from": "users", "to": "households", "cardinality": "many_to_one",
                        "join": {"household_id": "household_id"}}],
    )  # fmt: skip
    problems = [str(p) for p in check_schema(schema, warehouse)]
    assert problems == [
        "relationship households: join keys do not match: users.household_id is integer, "
        "households.household_id is string (join columns of the same type, or add a model "
        "with 'sql' that casts one)"
    ]


def test_a_time_column_that_is_not_a_time(warehouse: Any) -> None:
    schema = definition(models=[{"name": "orders", "table": "orders", "primary_key": "order_id",
                                 "timestamp": "placed_at"}])  # fmt: skip
    problems = [str(p) for p in check_schema(schema, warehouse)]
    assert any("'placed_at' is string, not a time" in p for p in problems)


def test_missing_table_is_a_problem_not_a_crash(warehouse: Any) -> None:
    schema = definition(models=[{"name": "orders", "table": "ordrs", "primary_key": "order_id"}])
    problems = check_schema(schema, warehouse)
    assert problems and problems[0].where == "model orders"
    with pytest.raises(DefinitionError, match="cannot read its columns"):
        bind_schema(schema, warehouse)


def test_primary_keys_that_repeat_are_found_only_when_asked(warehouse: Any) -> None:
    assert check_schema(definition(), warehouse) == []
    problems = [str(p) for p in check_schema(definition(), warehouse, unique_keys=True)]
    assert problems == [
        "model users > primary_key: 1 values of 'user_id' appear more than once "
        "(choose a unique column, or a 'sql' model that makes one)"
    ]


def test_sql_models_are_read_through_their_query(warehouse: Any) -> None:
    schema = definition(models=[{
        "name": "orders", "primary_key": "order_id",
        "sql": "SELECT order_id, user_id, CAST(NULL AS TIMESTAMP) AS placed_at FROM orders",
        "timestamp": "placed_at",
    }])  # fmt: skip
    assert check_schema(schema, warehouse) == []
    assert bind_schema(schema, warehouse).model("orders").column_types["placed_at"] == "timestamp"


def test_relationship_to_an_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownReferenceError, match="there is no model 'nowhere'"):
        from corral.schema import Schema

        Schema.bind(
            definition(relationships=[{"from": "users", "to": "nowhere",
                                       "cardinality": "one_to_many", "join": {"a": "b"}}]),
            {"users": {"user_id": "integer"}},
        )  # fmt: skip
