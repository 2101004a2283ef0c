"""The reference evaluator on tiny hand-made data: one test per rule of docs/semantics.md.

Five users, as of Friday 15 March 2024, 12:00:

    id  country  email              birthday    signup_at            lifetime_value  opt_in
    1   "US"     ann@example.com    2000-02-29  2024-03-15 12:00:00  1200.00         true
    2   "us"     BOB@Mail.org       1990-03-15  2024-03-08 12:00:00  200.00          false
    3   " US"    null               null        2024-03-08 12:00:01  199.99          null
    4   null     ""                 1985-03-22  2024-03-14 00:00:00  null            true
    5   "CA"     a%b_c@x.com        1999-12-31  null                 50.00           false

User 3 has no purchases; user 4 has no household (null key), user 5 a household that does
not exist. Every expected member set below is worked out from these rows by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from corral.audiences.conditions import OPERATOR_VALUES, AudienceDefinition
from corral.audiences.evaluator import add_months, evaluate, evaluate_trait
from corral.errors import AudienceCycleError, DefinitionError, UnknownReferenceError
from corral.schema import Schema, SchemaDefinition
from tests.helpers.retail_schema import retail_schema

AS_OF = datetime(2024, 3, 15, 12, 0)
EVERYONE = {1, 2, 3, 4, 5}

COLUMNS: dict[str, dict[str, Any]] = {
    "users": {
        "user_id": "integer", "country": "string", "email": "string", "plan": "string",
        "birthday": "date", "signup_at": "timestamp", "lifetime_value": "decimal",
        "score": "float", "opt_in": "boolean", "household_id": "integer",
    },
    "households": {"household_id": "integer", "size": "integer"},
    "products": {"product_id": "integer", "category": "string"},
    "purchases": {
        "order_id": "integer", "user_id": "integer", "product_id": "integer",
        "amount": "decimal", "channel": "string", "purchased_at": "timestamp",
    },
    "events": {
        "event_id": "integer", "user_id": "integer", "event_type": "string",
        "occurred_at": "timestamp", "revenue": "decimal",
    },
    "consents": {
        "consent_id": "integer", "user_id": "integer", "purpose": "string",
        "granted": "boolean", "updated_on": "date",
    },
}  # fmt: skip
POLARS_TYPES = {
    "integer": pl.Int64, "string": pl.String, "date": pl.Date, "timestamp": pl.Datetime("us"),
    "decimal": pl.Decimal(12, 2), "float": pl.Float64, "boolean": pl.Boolean,
}  # fmt: skip


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def d(text: str) -> date:
    return date.fromisoformat(text)


def money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


ROWS: dict[str, list[tuple[Any, ...]]] = {
    "users": [
        (1, "US", "ann@example.com", "pro", d("2000-02-29"), ts("2024-03-15 12:00"),
         money("1200.00"), 1.5, True, 1),
        (2, "us", "BOB@Mail.org", "Free", d("1990-03-15"), ts("2024-03-08 12:00"),
         money("200.00"), 0.1, False, 1),
        (3, " US", None, None, None, ts("2024-03-08 12:00:01"), money("199.99"), None, None, 2),
        (4, None, "", "PRO", d("1985-03-22"), ts("2024-03-14 00:00"), None, 2.0, True, None),
        (5, "CA", "a%b_c@x.com", "team", d("1999-12-31"), None, money("50.00"), -1.0, False,
         99),
    ],
    "households": [(1, 4), (2, 2)],
    "products": [(10, "books"), (11, "toys"), (12, None)],
    "purchases": [
        (100, 1, 10, money("30.00"), "web", ts("2024-03-10 09:00")),
        (101, 1, 10, money("20.00"), "store", ts("2024-02-01 09:00")),
        (102, 1, 11, None, "web", ts("2023-01-01 00:00")),
        (103, 2, 12, money("5.00"), "app", ts("2024-03-15 12:00")),
        (104, 2, None, None, None, None),
        (105, None, 10, money("100.00"), "web", ts("2024-03-01 00:00")),
        (106, 4, 11, money("60.00"), "web", ts("2024-03-14 23:59:59")),
        (107, 5, 11, money("10.00"), "store", ts("2024-03-02 08:00")),
        (108, 5, 12, money("10.00"), "app", ts("2024-03-02 08:00")),
    ],
    "events": [
        (1, 1, "product_viewed", ts("2024-03-14 10:00"), None),
        (2, 1, "added_to_cart", ts("2024-03-14 10:30"), None),
        (3, 1, "checkout_started", ts("2024-03-14 11:00"), None),
        (4, 2, "product_viewed", ts("2024-03-13 09:00"), None),
        (5, 2, "added_to_cart", ts("2024-03-13 10:00"), None),
        (6, 2, "checkout_started", ts("2024-03-14 10:00:01"), None),
        (7, 3, "product_viewed", ts("2024-03-15 11:00"), None),
        (8, 3, "added_to_cart", ts("2024-03-15 11:00"), None),
        (9, 4, "product_viewed", ts("2024-03-15 11:30"), None),
        (10, 4, "added_to_cart", ts("2024-03-15 11:45"), None),
        (11, 4, "order_completed", ts("2024-03-16 10:00"), money("80.00")),
        (12, 5, "app_opened", ts("2024-03-20 00:00"), None),
        (13, 1, "order_completed", ts("2024-03-14 12:00"), money("50.00")),
        (14, 2, "app_opened", ts("2024-03-10 00:00"), None),
        (15, 2, "app_opened", ts("2024-03-11 00:00"), None),
        (16, None, "app_opened", ts("2024-03-11 00:00"), None),
    ],
    "consents": [
        (1, 1, "email", True, d("2024-03-01")),
        (2, 2, "email", False, d("2024-03-10")),
        (3, 2, "sms", True, d("2024-01-01")),
        (4, 99, "email", True, d("2024-03-10")),
    ],
}  # fmt: skip

TRAITS: list[dict[str, Any]] = [
    {"name": "order_count", "relation": "purchases", "aggregate": "count"},
    {"name": "web_orders", "relation": "purchases", "aggregate": "count",
     "where": {"conditions": [{"property": "channel", "equals": "WEB"}]}},
    {"name": "spend", "relation": "purchases", "aggregate": "sum", "column": "amount"},
    {"name": "average_amount", "relation": "purchases", "aggregate": "average",
     "column": "amount"},
    {"name": "biggest_amount", "relation": "purchases", "aggregate": "max", "column": "amount"},
    {"name": "last_purchase_at", "relation": "purchases", "aggregate": "max",
     "column": "purchased_at"},
    {"name": "products_bought", "relation": "purchases", "aggregate": "count_distinct",
     "column": "product_id"},
    {"name": "first_channel", "relation": "purchases", "aggregate": "first", "column": "channel"},
    {"name": "last_channel", "relation": "purchases", "aggregate": "last", "column": "channel"},
    {"name": "cheapest_channel", "relation": "purchases", "aggregate": "first",
     "column": "channel", "order_by": "amount"},
    {"name": "favorite_channel", "relation": "purchases", "aggregate": "most_frequent",
     "column": "channel"},
    {"name": "favorite_category", "relation": "purchased_products",
     "aggregate": "most_frequent", "column": "category"},
    {"name": "channels", "relation": "purchases", "aggregate": "list", "column": "channel"},
    {"name": "categories", "relation": "purchased_products", "aggregate": "list",
     "column": "category"},
    {"name": "tier", "type": "string",
     "formula": "CASE WHEN lifetime_value >= 1000 THEN 'gold' "
                "WHEN lifetime_value >= 200 THEN 'silver' ELSE 'bronze' END"},
    {"name": "gross_spend", "relation": "purchases", "sql": "SUM(amount * 1.2)",
     "type": "decimal"},
]  # fmt: skip


def schema_definition(**parent: Any) -> SchemaDefinition:
    return retail_schema(TRAITS, **parent)


SCHEMA = Schema.bind(schema_definition(), COLUMNS)
TABLES = {
    name: pl.DataFrame(
        rows, schema={c: POLARS_TYPES[t] for c, t in COLUMNS[name].items()}, orient="row"
    )
    for name, rows in ROWS.items()
}


def members(
    *conditions: dict[str, Any],
    as_of: datetime = AS_OF,
    audiences: dict[str, AudienceDefinition] | None = None,
    tables: dict[str, pl.DataFrame] = TABLES,
    **top: Any,
) -> set[Any]:
    """The members of an audience written in the YAML shorthand."""
    audience = AudienceDefinition.model_validate(
        {"name": "test", "conditions": list(conditions), **top}
    )
    return evaluate(audience, SCHEMA, tables, as_of=as_of, audiences=audiences or {})


def audience(name: str, *conditions: dict[str, Any]) -> AudienceDefinition:
    return AudienceDefinition.model_validate({"name": name, "conditions": list(conditions)})


# -- groups and negation --------------------------------------------------------------------------


def test_all_of_no_conditions_selects_everyone_and_any_of_none_selects_nobody() -> None:
    assert members() == EVERYONE
    assert members(match="any") == set()
    assert members(negate=True) == set()
    assert members(match="any", negate=True) == EVERYONE


def test_empty_nested_groups() -> None:
    assert members({"match": "all", "conditions": []}) == EVERYONE
    assert members({"match": "any", "conditions": []}) == set()
    assert members({"not": {"match": "any", "conditions": []}}) == EVERYONE


def test_negation_is_the_complement_including_nulls() -> None:
    assert members({"property": "country", "equals": "us"}) == {1, 2}
    assert members({"not": {"property": "country", "equals": "us"}}) == {3, 4, 5}
    assert members({"property": "opt_in", "is_true": True}, negate=True) == {2, 3, 5}


def test_nested_groups_combine_all_and_any() -> None:
    assert members(
        {"match": "any", "conditions": [
            {"property": "country", "equals": "CA"},
            {"match": "all", "conditions": [
                {"property": "opt_in", "is_true": True}, {"property": "plan", "equals": "pro"},
            ]},
        ]},
    ) == {1, 4, 5}  # fmt: skip


# -- nulls, strings, numbers, booleans ---------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "country", "is_null": True}, {4}),
        ({"property": "country", "is_not_null": True}, {1, 2, 3, 5}),
        ({"property": "country", "not_equals": "us"}, {3, 4, 5}),
        ({"property": "country", "not_in": ["US"]}, {3, 4, 5}),
        ({"property": "country", "not_contains": "us"}, {4, 5}),
        ({"property": "lifetime_value", "greater_than": 0}, {1, 2, 3, 5}),
        ({"property": "signup_at", "before": "2030-01-01"}, {1, 2, 3, 4}),
        ({"property": "opt_in", "is_false": True}, {2, 5}),
    ],
)
def test_a_null_satisfies_only_is_null_and_the_negative_operators(
    condition: dict[str, Any], expected: set[int]
) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "country", "equals": "uS"}, {1, 2}),
        ({"property": "country", "in": ["us", "ca"]}, {1, 2, 5}),
        ({"property": "country", "contains": "us"}, {1, 2, 3}),
        ({"property": "country", "starts_with": "US"}, {1, 2}),
        ({"property": "country", "starts_with": " "}, {3}),
        ({"property": "country", "ends_with": "s"}, {1, 2, 3}),
        ({"property": "email", "equals": "bob@mail.ORG"}, {2}),
        ({"property": "email", "equals": ""}, {4}),
    ],
)
def test_strings_ignore_case_but_not_whitespace(
    condition: dict[str, Any], expected: set[int]
) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize("operator", ["contains", "starts_with", "ends_with"])
def test_the_empty_string_matches_every_non_null_string(operator: str) -> None:
    assert members({"property": "email", operator: ""}) == {1, 2, 4, 5}


@pytest.mark.parametrize("text", ["%", "_", "a%b_c", "%b"])
def test_string_operators_match_literal_text_without_wildcards(text: str) -> None:
    assert members({"property": "email", "contains": text}) == {5}
    assert members({"property": "email", "contains": "a_b"}) == set()


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "lifetime_value", "between": [199.99, 200]}, {2, 3}),
        ({"property": "lifetime_value", "greater_than": 200}, {1}),
        ({"property": "lifetime_value", "at_least": 200}, {1, 2}),
        ({"property": "lifetime_value", "less_than": 200}, {3, 5}),
        ({"property": "lifetime_value", "at_most": 200}, {2, 3, 5}),
        ({"property": "lifetime_value", "equals": "200.00"}, {2}),
        ({"property": "lifetime_value", "not_equals": 200}, {1, 3, 4, 5}),
        ({"property": "lifetime_value", "in": [50, 1200]}, {1, 5}),
        ({"property": "lifetime_value", "between": [200, 199.99]}, set()),
        ({"property": "score", "equals": 0.1}, {2}),
        ({"property": "score", "greater_than": 0.1}, {1, 4}),
        ({"property": "household_id", "not_in": [1]}, {3, 4, 5}),
    ],
)
def test_numbers(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "opt_in", "is_true": True}, {1, 4}),
        ({"property": "opt_in", "equals": False}, {2, 5}),
        ({"property": "opt_in", "not_equals": True}, {2, 3, 5}),
    ],
)
def test_booleans(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize(
    "condition",
    [
        {"property": "household_id", "equals": 1.5},
        {"property": "country", "greater_than": "a"},
        {"property": "opt_in", "equals": "yes"},
        {"property": "signup_at", "contains": "2024"},
        {"property": "nope", "equals": 1},
    ],
)
def test_values_and_operators_are_checked_against_the_column_type(
    condition: dict[str, Any],
) -> None:
    with pytest.raises(DefinitionError):
        members(condition)


def test_the_evaluator_and_the_compiler_take_the_same_operators_for_each_type() -> None:
    from corral.audiences.comparisons import operators_for
    from corral.audiences.evaluator import check_operator

    for column_type in POLARS_TYPES:
        for operator in OPERATOR_VALUES:
            accepted = operator in operators_for(column_type)  # type: ignore[arg-type]
            try:
                check_operator(operator, column_type, "test")  # type: ignore[arg-type]
            except DefinitionError:
                assert not accepted, (operator, column_type)
            else:
                assert accepted, (operator, column_type)


# -- dates and timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "signup_at", "on": "2024-03-14"}, {4}),
        ({"property": "signup_at", "equals": "2024-03-14"}, {4}),
        ({"property": "signup_at", "not_equals": "2024-03-14"}, {1, 2, 3, 5}),
        ({"property": "signup_at", "before": "2024-03-14"}, {2, 3}),
        ({"property": "signup_at", "after": "2024-03-14"}, {1}),
        ({"property": "signup_at", "between": ["2024-03-08", "2024-03-14"]}, {2, 3, 4}),
        ({"property": "signup_at", "greater_than": "2024-03-14"}, {1}),
        ({"property": "signup_at", "at_least": "2024-03-14"}, {1, 4}),
        ({"property": "signup_at", "less_than": "2024-03-14"}, {2, 3}),
        ({"property": "signup_at", "at_most": "2024-03-14"}, {2, 3, 4}),
        ({"property": "signup_at", "at_most": "2024-03-08"}, {2, 3}),
        ({"property": "signup_at", "greater_than": "2024-03-08"}, {1, 4}),
    ],
)
def test_a_date_value_on_a_timestamp_column(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "signup_at", "equals": "2024-03-08 12:00:00"}, {2}),
        ({"property": "signup_at", "after": "2024-03-08 12:00:00"}, {1, 3, 4}),
        ({"property": "signup_at", "before": "2024-03-08 12:00:01"}, {2}),
        ({"property": "signup_at", "at_most": "2024-03-08 12:00:01"}, {2, 3}),
        ({"property": "signup_at", "between": ["2024-03-08 12:00:00", "2024-03-14 00:00:00"]},
         {2, 3, 4}),
        ({"property": "signup_at", "between": ["2024-03-08 12:00:01", "2024-03-14"]}, {3, 4}),
    ],
)  # fmt: skip
def test_a_timestamp_value_is_exact(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "signup_at", "within_last": "7 days"}, {1, 3, 4}),
        ({"property": "signup_at", "more_than_ago": "7 days"}, set()),
        ({"property": "signup_at", "more_than_ago": "1 day"}, {2, 3, 4}),
        ({"property": "signup_at", "within_last": "36 hours"}, {1}),
        ({"property": "signup_at", "within_last": "37 hours"}, {1, 4}),
        ({"property": "signup_at", "within_next": "1 day"}, set()),
        ({"property": "signup_at", "within_last": "1 week"}, {1, 3, 4}),
        ({"property": "birthday", "more_than_ago": "24 years"}, {1, 2, 4, 5}),
        ({"property": "birthday", "more_than_ago": "34 years"}, {2, 4}),  # midnight < noon
    ],
)
def test_relative_times_count_from_the_as_of_time(
    condition: dict[str, Any], expected: set[int]
) -> None:
    # within_last: as_of - N < t <= as_of. User 2 signed up exactly 7 days before,
    # user 4 exactly 36 hours before.
    assert members(condition) == expected


def test_within_next_excludes_the_as_of_time_and_includes_its_end() -> None:
    earlier = datetime(2024, 3, 14, 12, 0)
    assert members({"property": "signup_at", "within_next": "1 day"}, as_of=earlier) == {1}
    assert members({"property": "signup_at", "within_next": "12 hours"}, as_of=earlier) == set()


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("this_week", {1, 4}),  # from Monday 11 March
        ("last_week", {2, 3}),
        ("this_month", {1, 2, 3, 4}),
        ("last_month", set()),
        ("this_quarter", {1, 2, 3, 4}),
        ("last_quarter", set()),
        ("this_year", {1, 2, 3, 4}),
        ("last_year", set()),
    ],
)
def test_calendar_periods(period: str, expected: set[int]) -> None:
    assert members({"property": "signup_at", "in_period": period}) == expected


def test_a_week_starts_on_monday_at_midnight_and_a_period_is_not_cut_at_the_as_of_time() -> None:
    monday = datetime(2024, 3, 11, 0, 0)
    assert members({"property": "signup_at", "in_period": "this_week"}, as_of=monday) == {1, 4}
    assert members({"property": "signup_at", "in_period": "last_week"}, as_of=monday) == {2, 3}
    sunday = datetime(2024, 3, 10, 23, 59)
    assert members({"property": "signup_at", "in_period": "this_week"}, as_of=sunday) == {2, 3}


@pytest.mark.parametrize(
    ("as_of", "days", "expected"),
    [
        (AS_OF, 0, {2}),
        (AS_OF, 6, {2}),
        (AS_OF, 7, {2, 4}),
        (datetime(2023, 2, 28, 9, 0), 0, {1}),  # no 29 Feb in 2023: it falls on the 28th
        (datetime(2024, 2, 28, 9, 0), 0, set()),  # 2024 has its own 29 February
        (datetime(2024, 2, 28, 9, 0), 1, {1}),
        (datetime(2023, 12, 25), 5, set()),
        (datetime(2023, 12, 25), 6, {5}),
        (datetime(2023, 12, 31), 366, {1, 2, 4, 5}),
    ],
)
def test_anniversaries(as_of: datetime, days: int, expected: set[int]) -> None:
    assert members({"property": "birthday", "anniversary_within_next": days}, as_of=as_of) == (
        expected
    )


def test_a_date_column_is_midnight_of_its_day() -> None:
    # Consent 2 was updated on 10 March, which counts as 10 March 00:00: before the
    # 5 days up to 15 March noon began, within the 6 days.
    within = {"relation": "consents", "within": {"last": "6 days"}}
    assert members(within) == {2}
    assert members({**within, "within": {"last": "5 days"}}) == set()
    assert members({"property": "birthday", "on": "2024-03-15"}, as_of=AS_OF) == set()
    assert members({"property": "birthday", "at_most": "1990-03-15"}) == {2, 4}


def test_months_move_the_calendar() -> None:
    assert add_months(datetime(2024, 3, 31, 8), -1) == datetime(2024, 2, 29, 8)
    assert add_months(datetime(2023, 3, 31), -1) == datetime(2023, 2, 28)
    assert add_months(datetime(2024, 2, 29), 12) == datetime(2025, 2, 28)
    # As of 14 April 00:00, one month ago is 14 March 00:00: user 4 signed up exactly then.
    april = datetime(2024, 4, 14)
    assert members({"property": "signup_at", "within_last": "1 month"}, as_of=april) == {1}
    assert members({"property": "signup_at", "more_than_ago": "1 month"}, as_of=april) == ({2, 3})


def test_an_aware_as_of_time_is_read_in_the_workspace_time_zone() -> None:
    # 04:00 UTC on 15 March is 00:00 in New York (EDT, UTC-4); 25 hours before that is
    # 13 March 23:00, just before user 4 signed up (14 March 00:00, a wall-clock time).
    utc = datetime(2024, 3, 15, 4, 0, tzinfo=UTC)
    condition = {"property": "signup_at", "within_last": "25 hours"}
    audience_ = audience("tz", condition)
    assert evaluate(audience_, SCHEMA, TABLES, as_of=utc) == set()
    assert evaluate(audience_, SCHEMA, TABLES, as_of=utc, time_zone="America/New_York") == {4}


# -- related rows -----------------------------------------------------------------------------


def test_has_and_has_no_related_rows() -> None:
    assert members({"relation": "purchases"}) == {1, 2, 4, 5}
    assert members({"relation": "purchases", "has": False}) == {3}


def test_has_no_includes_rows_whose_join_key_is_null_or_matches_nothing() -> None:
    assert members({"relation": "households"}) == {1, 2, 3}
    assert members({"relation": "households", "has": False}) == {4, 5}


def test_where_and_within_filter_the_related_rows() -> None:
    web = {"conditions": [{"property": "channel", "equals": "Web"}]}
    assert members({"relation": "purchases", "where": web}) == {1, 4}
    # (8 March 12:00, 15 March 12:00]: orders 100, 103 (exactly at as-of) and 106.
    assert members({"relation": "purchases", "within": {"last": "7 days"}}) == {1, 2, 4}
    assert members({"relation": "purchases", "where": web, "within": {"last": "7 days"}}) == {1, 4}
    assert members({"relation": "purchases", "within": {"period": "last_month"}}) == {1}
    assert members(
        {"relation": "purchases", "within": {"between": ["2024-03-02", "2024-03-10"]}}
    ) == {1, 5}
    assert members({"relation": "purchases", "within": {"before": "2024-01-01"}}) == {1}
    assert members({"relation": "purchases", "within": {"since": "2024-03-14"}}) == {2, 4}


def test_an_empty_any_where_passes_no_related_row() -> None:
    assert members({"relation": "purchases", "where": {"match": "any"}}) == set()
    assert members({"relation": "purchases", "where": {"match": "any"}, "has": False}) == EVERYONE


def test_within_needs_a_time_column() -> None:
    with pytest.raises(DefinitionError, match="no time column"):
        members({"relation": "households", "within": {"last": "1 day"}})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"relation": "purchases", "count": {"at_most": 1}}, {3, 4}),
        ({"relation": "purchases", "count": {"equals": 0}}, {3}),
        ({"relation": "purchases", "count": {"at_least": 3}}, {1}),
        ({"relation": "purchases", "aggregate": {"sum": "amount"}, "less_than": 10}, {2, 3}),
        ({"relation": "purchases", "aggregate": {"sum": "amount"}, "equals": 50}, {1}),
        ({"relation": "purchases", "aggregate": {"average": "amount"}, "is_null": True}, {3}),
        ({"relation": "purchases", "aggregate": {"average": "amount"}, "not_equals": 25},
         {2, 3, 4, 5}),
        ({"relation": "purchases", "aggregate": {"average": "amount"}, "less_than": 100},
         {1, 2, 4, 5}),
        ({"relation": "purchases", "aggregate": {"min": "amount"}, "at_most": 10}, {2, 5}),
        ({"relation": "purchases", "aggregate": {"max": "purchased_at"},
          "within_last": "1 day"}, {2, 4}),
        ({"relation": "purchases", "aggregate": {"count_distinct": "product_id"}, "equals": 2},
         {1, 5}),
        ({"relation": "purchases", "aggregate": {"count_distinct": "product_id"}, "equals": 1},
         {2, 4}),
    ],
)  # fmt: skip
def test_counts_and_aggregates(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


def test_aggregates_of_only_null_values() -> None:
    no_channel = {"conditions": [{"property": "channel", "is_null": True}]}
    only_nulls = {"relation": "purchases", "where": no_channel}
    assert members({**only_nulls, "count": {"at_least": 1}}) == {2}
    assert members({**only_nulls, "aggregate": {"sum": "amount"}, "equals": 0}) == EVERYONE
    assert members({**only_nulls, "aggregate": {"max": "amount"}, "is_null": True}) == EVERYONE
    assert members({**only_nulls, "aggregate": {"max": "amount"}, "at_least": 0}) == set()


def test_sum_and_average_need_a_number_column() -> None:
    with pytest.raises(DefinitionError, match="number column"):
        members({"relation": "purchases", "aggregate": {"sum": "channel"}, "at_least": 1})


def test_a_count_with_has_false_is_rejected() -> None:
    with pytest.raises(ValidationError, match="has: false"):
        members({"relation": "purchases", "has": False, "count": {"at_least": 1}})
    with pytest.raises(ValidationError, match="performed: false"):
        members({"event": "order_completed", "performed": False, "count": {"at_least": 2}})


def test_a_through_relationship_counts_each_path() -> None:
    books = {"conditions": [{"property": "category", "equals": "BOOKS"}]}
    assert members({"relation": "purchased_products", "where": books}) == {1}
    # User 1 bought product 10 twice: two paths to the same product.
    assert members({"relation": "purchased_products", "where": books, "count": {"equals": 2}}) == (
        {1}
    )
    assert members({"relation": "purchased_products", "count": {"at_least": 2}}) == {1, 5}


def test_a_reverse_relationship() -> None:
    email = {"conditions": [{"property": "purpose", "equals": "email"},
                            {"property": "granted", "is_true": True}]}  # fmt: skip
    assert members({"relation": "consents", "where": email}) == {1}
    assert members({"relation": "consents", "where": email, "has": False}) == {2, 3, 4, 5}


def test_relations_nest_in_where_in_both_directions() -> None:
    toys = {"conditions": [{"property": "category", "equals": "toys"}]}
    assert members(
        {
            "relation": "purchases",
            "where": {"conditions": [{"relation": "products", "where": toys}]},
        }
    ) == {1, 4, 5}
    crowded = {"conditions": [{"relation": "users", "count": {"at_least": 2}}]}
    assert members({"relation": "households", "where": crowded}) == {1, 2}


def test_trait_and_audience_conditions_apply_to_the_parent_only() -> None:
    inside = {"conditions": [{"trait": "order_count", "at_least": 1}]}
    with pytest.raises(DefinitionError, match="parent model"):
        members({"relation": "purchases", "where": inside})


# -- events ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"event": "added_to_cart"}, {1, 2, 3, 4}),
        # Order 11 of user 4 happens after the as-of time: not yet.
        ({"event": "order_completed"}, {1}),
        ({"event": "order_completed", "performed": False}, {2, 3, 4, 5}),
        ({"event": "app_opened", "count": {"at_least": 2}}, {2}),
        ({"event": "app_opened", "performed": False}, {1, 3, 4, 5}),
        ({"event": "app_opened", "count": {"at_most": 1}}, {1, 3, 4, 5}),
        ({"event": "product_viewed", "within": {"last": "1 day"}}, {3, 4}),
        ({"event": "order_completed", "aggregate": {"sum": "revenue"}, "at_least": 50}, {1}),
        (
            {"event": "order_completed", "aggregate": {"sum": "revenue"}, "less_than": 50},
            {2, 3, 4, 5},
        ),
        ({"event": None, "model": "events", "count": {"at_least": 4}}, {1, 2}),
        ({"event": "App_Opened"}, set()),
    ],
)
def test_events(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


def test_a_relation_on_an_event_model_is_not_bound_by_the_as_of_time() -> None:
    assert members({"relation": "events", "count": {"at_least": 3}}) == {1, 2, 4}


def test_an_event_window_in_the_future_sees_nothing_yet() -> None:
    assert members({"event": "order_completed", "within": {"next": "7 days"}}) == set()


# -- sequences -----------------------------------------------------------------------------------


def sequence(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"sequence": list(steps), **extra}


VIEW = {"event": "product_viewed"}
CART = {"event": "added_to_cart"}


def test_each_step_is_strictly_after_the_previous_one() -> None:
    # User 3 added to cart at the very second of the view: not after it.
    assert members(sequence(VIEW, CART)) == {1, 2, 4}
    assert members(sequence(CART, VIEW)) == set()


def test_a_step_within_includes_its_end() -> None:
    # User 2 added to cart exactly an hour after viewing.
    assert members(sequence(VIEW, {**CART, "within": "1 hour"})) == {1, 2, 4}
    assert members(sequence(VIEW, {**CART, "within": "59 minutes"})) == {1, 4}
    checkout = {"event": "checkout_started", "within": "1 day"}
    assert members(sequence(VIEW, checkout)) == {1}


def test_the_sequence_window_bounds_the_first_step() -> None:
    assert members(sequence(VIEW, CART, within={"last": "1 day"})) == {4}


def test_a_negative_last_step() -> None:
    # User 1 checked out in time; user 2 a second too late; user 4's day is still open.
    abandoned = {"event": "checkout_started", "within": "1 day", "performed": False}
    assert members(sequence(VIEW, CART, abandoned)) == {2, 4}
    within_minutes = {**abandoned, "within": "10 minutes"}
    assert members(sequence(VIEW, CART, within_minutes)) == {1, 2, 4}


def test_a_sequence_does_not_see_events_after_the_as_of_time() -> None:
    # User 4 completes an order on 16 March, the day after the as-of time.
    bought = {"event": "order_completed", "within": "1 day"}
    assert members(sequence(CART, bought)) == {1}
    assert members(sequence(CART, bought), as_of=datetime(2024, 3, 17)) == {1, 4}


# -- traits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trait", "expected"),
    [
        ("order_count", {1: 3, 2: 2, 3: 0, 4: 1, 5: 2}),
        ("web_orders", {1: 2, 2: 0, 3: 0, 4: 1, 5: 0}),
        ("spend", {1: Decimal(50), 2: Decimal(5), 3: 0, 4: Decimal(60), 5: Decimal(20)}),
        ("average_amount", {1: 25, 2: 5, 3: None, 4: 60, 5: 10}),
        ("biggest_amount", {1: 30, 2: 5, 3: None, 4: 60, 5: 10}),
        ("products_bought", {1: 2, 2: 1, 3: 0, 4: 1, 5: 2}),
        # first by purchase time; user 5's two orders tie and the smaller key wins.
        ("first_channel", {1: "web", 2: "app", 3: None, 4: "web", 5: "store"}),
        ("last_channel", {1: "web", 2: "app", 3: None, 4: "web", 5: "app"}),
        # rows with a null order (amount) are skipped.
        ("cheapest_channel", {1: "store", 2: "app", 3: None, 4: "web", 5: "store"}),
        # user 5: app and store once each; the smaller value wins.
        ("favorite_channel", {1: "web", 2: "app", 3: None, 4: "web", 5: "app"}),
        ("favorite_category", {1: "books", 2: None, 3: None, 4: "toys", 5: "toys"}),
        ("channels", {1: {"web", "store"}, 2: {"app"}, 3: set(), 4: {"web"},
                      5: {"store", "app"}}),
        ("categories", {1: {"books", "toys"}, 2: set(), 3: set(), 4: {"toys"}, 5: {"toys"}}),
        ("tier", {1: "gold", 2: "silver", 3: "bronze", 4: "bronze", 5: "bronze"}),
        ("gross_spend", {1: Decimal("60.0"), 2: Decimal("6.0"), 3: None, 4: Decimal("72.0"),
                         5: Decimal("24.0")}),
    ],
)  # fmt: skip
def test_trait_values(trait: str, expected: dict[int, Any]) -> None:
    assert evaluate_trait(trait, SCHEMA, TABLES, as_of=AS_OF) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"trait": "order_count", "at_most": 1}, {3, 4}),
        ({"trait": "spend", "less_than": 10}, {2, 3}),
        ({"trait": "average_amount", "is_null": True}, {3}),
        ({"trait": "average_amount", "not_in": [25]}, {2, 3, 4, 5}),
        ({"trait": "last_purchase_at", "within_last": "1 day"}, {2, 4}),
        ({"trait": "last_purchase_at", "more_than_ago": "7 days"}, {5}),
        ({"trait": "first_channel", "equals": "STORE"}, {5}),
        ({"trait": "favorite_category", "is_not_null": True}, {1, 4, 5}),
        ({"trait": "tier", "in": ["Gold", "silver"]}, {1, 2}),
        ({"trait": "gross_spend", "at_least": 60}, {1, 4}),
        ({"trait": "gross_spend", "is_null": True}, {3}),
    ],
)
def test_trait_conditions(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"trait": "channels", "in": ["WEB"]}, {1, 4}),
        ({"trait": "channels", "in": ["web", "app"]}, {1, 2, 4, 5}),
        ({"trait": "channels", "not_in": ["web"]}, {2, 3, 5}),
        ({"trait": "categories", "is_null": True}, {2, 3}),
        ({"trait": "categories", "is_not_null": True}, {1, 4, 5}),
    ],
)
def test_list_traits(condition: dict[str, Any], expected: set[int]) -> None:
    assert members(condition) == expected


def test_a_list_trait_takes_only_list_operators() -> None:
    with pytest.raises(DefinitionError, match="list trait"):
        members({"trait": "channels", "equals": "web"})


def test_an_unknown_trait() -> None:
    with pytest.raises(UnknownReferenceError, match="no trait"):
        members({"trait": "nope", "is_null": True})


# -- other audiences ----------------------------------------------------------------------------


AUDIENCES = {
    a.name: a
    for a in (
        audience("US", {"property": "country", "equals": "us"}),
        audience("Buyers outside the US", {"audience": "US", "member": False},
                 {"relation": "purchases"}),
        audience("Loop A", {"audience": "Loop B"}),
        audience("Loop B", {"match": "any", "conditions": [{"audience": "Loop A"}]}),
    )
}  # fmt: skip


def test_audience_membership() -> None:
    assert members({"audience": "US"}, audiences=AUDIENCES) == {1, 2}
    assert members({"audience": "US", "member": False}, audiences=AUDIENCES) == {3, 4, 5}
    assert members({"audience": "Buyers outside the US"}, audiences=AUDIENCES) == {4, 5}


def test_audiences_in_a_loop_are_an_error_before_any_evaluation() -> None:
    empty = {**TABLES, "users": TABLES["users"].clear()}
    with pytest.raises(AudienceCycleError, match="Loop A -> Loop B -> Loop A"):
        members({"audience": "Loop A"}, audiences=AUDIENCES, tables=empty)
    with pytest.raises(AudienceCycleError):
        evaluate(AUDIENCES["Loop A"], SCHEMA, TABLES, as_of=AS_OF, audiences=AUDIENCES)


def test_an_unknown_audience() -> None:
    with pytest.raises(UnknownReferenceError, match="no audience"):
        members({"audience": "Nope"}, audiences=AUDIENCES)


# -- inputs ---------------------------------------------------------------------------------------


def test_no_parent_rows_select_no_one() -> None:
    empty = {**TABLES, "users": TABLES["users"].clear()}
    assert members(tables=empty) == set()
    assert members({"property": "country", "is_null": True}, tables=empty) == set()


def test_arrow_tables_are_read_too() -> None:
    arrow = {name: frame.to_arrow() for name, frame in TABLES.items()}
    assert members({"relation": "purchases", "has": False}, tables=arrow) == {3}


def test_a_model_defined_by_sql_needs_the_rows_of_its_query() -> None:
    definition = schema_definition(table=None, sql="SELECT * FROM users")
    schema = Schema.bind(definition, COLUMNS)
    nulls = audience("sql", {"property": "country", "is_null": True})
    assert evaluate(nulls, schema, TABLES, as_of=AS_OF) == {4}
    without = {name: frame for name, frame in TABLES.items() if name != "users"}
    with pytest.raises(NotImplementedError, match="pass the rows of its query"):
        evaluate(nulls, schema, without, as_of=AS_OF)
