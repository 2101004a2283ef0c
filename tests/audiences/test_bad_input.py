"""Bad input: every mistake gives a clear error, and hostile text stays an inert literal."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
import sqlglot
from pydantic import ValidationError

from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import AudienceDefinition
from corral.errors import AudienceCycleError, DefinitionError, UnknownReferenceError
from corral.schema import Schema, SchemaDefinition
from corral.sql import render
from tests.helpers.demo_schema import AS_OF, DEMO_COLUMNS, demo_schema, demo_workspace

HOSTILE = [
    "'; DROP TABLE users; --",
    "O'Brien",
    "\\'; SELECT 1; --",
    '" OR 1=1 --',
    "%_*?[]",
    "robert'); DELETE FROM purchases WHERE ('1'='1",
    "line\nbreak\ttab",
    "emoji 🐄 and ünïcödé",
]


def audience(*conditions: dict[str, Any], name: str = "test") -> AudienceDefinition:
    return AudienceDefinition.model_validate({"name": name, "conditions": list(conditions)})


def compile_sql(
    aud: AudienceDefinition, others: dict[str, AudienceDefinition] | None = None
) -> str:
    compiler = AudienceCompiler(demo_schema(), AS_OF, others or {aud.name: aud})
    return render(compiler.members(aud), "duckdb")


@pytest.fixture(scope="module")
def database() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for model, columns in DEMO_COLUMNS.items():
        types = {"string": "VARCHAR", "integer": "BIGINT", "decimal": "DECIMAL(12,2)",
                 "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}  # fmt: skip
        ddl = ", ".join(f"{name} {types[kind]}" for name, kind in columns.items())
        con.execute(f"CREATE TABLE {model} ({ddl})")
    con.execute("INSERT INTO users (user_id, last_name, email) VALUES (1, 'O''Brien', 'a@x.com')")
    con.execute("INSERT INTO users (user_id, last_name) VALUES (2, '''; DROP TABLE users; --')")
    con.execute("INSERT INTO purchases (order_id, user_id, channel) VALUES (10, 1, 'web')")
    return con


def members(con: duckdb.DuckDBPyConnection, sql: str) -> set[int]:
    return {row[0] for row in con.execute(sql).fetchall()}


def test_unknown_column_names_the_model_and_lists_columns() -> None:
    with pytest.raises(UnknownReferenceError) as error:
        compile_sql(audience({"property": "contry", "equals": "US"}))
    text = str(error.value)
    assert "no column 'contry'" in text and "country" in text and "condition 1" in text


def test_value_of_the_wrong_type() -> None:
    with pytest.raises(DefinitionError, match="'lots' is not a valid decimal value"):
        compile_sql(audience({"property": "lifetime_value", "at_least": "lots"}))
    with pytest.raises(DefinitionError, match="not a valid date"):
        compile_sql(audience({"property": "birthday", "before": "last tuesday"}))
    with pytest.raises(DefinitionError, match="not a valid boolean"):
        compile_sql(audience({"property": "marketing_opt_in", "equals": "yes"}))


def test_operator_that_does_not_fit_the_type() -> None:
    with pytest.raises(DefinitionError, match="'within_last' does not apply to a string"):
        compile_sql(audience({"property": "country", "within_last": "7 days"}))
    with pytest.raises(DefinitionError, match="'contains' does not apply to a decimal"):
        compile_sql(audience({"property": "lifetime_value", "contains": "9"}))


def test_unknown_relation_trait_event_model_and_audience() -> None:
    with pytest.raises(UnknownReferenceError, match="has no relation 'orders'"):
        compile_sql(audience({"relation": "orders"}))
    with pytest.raises(UnknownReferenceError, match="no trait 'ltv'"):
        compile_sql(audience({"trait": "ltv", "at_least": 1}))
    with pytest.raises(UnknownReferenceError, match="no model 'clicks'"):
        compile_sql(audience({"event": "click", "model": "clicks"}))
    with pytest.raises(UnknownReferenceError, match="no audience 'Nobody'"):
        compile_sql(audience({"audience": "Nobody"}))


def test_within_on_a_model_without_time() -> None:
    with pytest.raises(DefinitionError, match="no time column"):
        compile_sql(audience({"relation": "households", "within": {"last": "7 days"}}))


def test_cycles_between_audiences_are_found() -> None:
    a = audience({"audience": "b"}, name="a")
    b = audience({"match": "any", "conditions": [{"audience": "c"}]}, name="b")
    c = audience({"not": {"audience": "a"}}, name="c")
    with pytest.raises(AudienceCycleError, match="a -> b -> c -> a"):
        compile_sql(a, {"a": a, "b": b, "c": c})
    itself = audience({"audience": "self"}, name="self")
    with pytest.raises(AudienceCycleError, match="self -> self"):
        compile_sql(itself)


def test_shape_errors_are_caught_when_reading() -> None:
    with pytest.raises(ValidationError, match="cannot tell what kind of condition"):
        audience({"colum": "country"})
    with pytest.raises(ValidationError, match="one operator"):
        audience({"property": "country", "equals": "US", "in": ["CA"]})
    with pytest.raises(ValidationError, match="non-empty list"):
        audience({"property": "country", "in": []})
    with pytest.raises(ValidationError, match="cannot read '7 fortnights' as a duration"):
        audience({"property": "signup_at", "within_last": "7 fortnights"})
    with pytest.raises(ValidationError, match="only the last step"):
        audience({"sequence": [{"event": "a"}, {"event": "b", "performed": False}, {"event": "c"}]})
    with pytest.raises(ValidationError, match="first step of a sequence must be performed"):
        audience({"sequence": [{"event": "a", "performed": False}, {"event": "b"}]})


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_values_stays_a_literal(database: Any, text: str) -> None:
    conditions = [
        {"property": "last_name", "equals": text},
        {"property": "last_name", "in": [text, "x"]},
        {"property": "email", "contains": text},
        {"property": "email", "starts_with": text},
        {"property": "email", "not_equals": text},
        {"event": text},
        {"relation": "purchases",
         "where": {"conditions": [{"property": "channel", "ends_with": text}]}},
        {"trait": "first_channel", "equals": text},
        {"trait": "categories_bought", "in": [text]},
    ]  # fmt: skip
    for condition in conditions:
        sql = compile_sql(audience(condition))
        assert len(sqlglot.parse(sql, dialect="duckdb")) == 1
        members(database, sql)
    exact = members(database, compile_sql(audience({"property": "last_name", "equals": text})))
    expected = {1} if text == "O'Brien" else {2} if text == HOSTILE[0] else set()
    assert exact == expected
    assert database.execute("SELECT count(*) FROM users").fetchone() == (2,)
    assert database.execute("SELECT count(*) FROM purchases").fetchone() == (1,)


@pytest.mark.parametrize(
    "field",
    ["property", "relation", "trait", "audience"],
)
def test_hostile_text_in_names_is_refused(field: str) -> None:
    hostile = 'country" FROM users; DROP TABLE users; --'
    condition: dict[str, Any] = {field: hostile}
    if field in ("property", "trait"):
        condition["equals"] = "x"
    with pytest.raises(UnknownReferenceError):
        compile_sql(audience(condition))


def test_hostile_identifiers_in_the_schema_are_refused() -> None:
    definition = demo_workspace().schema.model_dump(by_alias=True)
    definition["parent"]["primary_key"] = "user_id; DROP TABLE users"
    with pytest.raises(ValidationError, match="should match pattern"):
        SchemaDefinition.model_validate(definition)


@pytest.mark.parametrize(
    "formula",
    [
        "1; DROP TABLE users",
        "(SELECT max(amount) FROM purchases)",
        "lifetime_value + secret_column",
        "SUM(lifetime_value)",
        "ROW_NUMBER() OVER ()",
    ],
)
def test_formula_traits_take_one_expression_on_parent_columns(formula: str) -> None:
    definition = demo_workspace().schema.model_dump(by_alias=True)
    definition["traits"] = [{"name": "bad", "formula": formula, "type": "decimal"}]
    schema = Schema.bind(SchemaDefinition.model_validate(definition), DEMO_COLUMNS)  # type: ignore[arg-type]
    aud = audience({"trait": "bad", "at_least": 1})
    with pytest.raises(DefinitionError):
        render(AudienceCompiler(schema, AS_OF, {"test": aud}).members(aud), "duckdb")
