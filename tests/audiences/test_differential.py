"""The differential test: compiled SQL on every engine against the reference evaluator.

Small random datasets (a seeded `random.Random` each) are loaded once per dataset into
DuckDB, PostgreSQL and Spark. Hypothesis then draws random condition trees over them, and
each engine must select exactly the members that `corral.audiences.evaluator` computes
from `docs/semantics.md`. Random trees find combinations; a sweep makes sure every single
operator, window, aggregate, trait and a set of sequences is also tried on its own.

The data aims at the edges: nulls everywhere, mixed-case and empty strings, 29 February
and year ends, times exactly on window and period boundaries (and a second either side),
events after the as-of time, rows whose join keys are null or match nothing.

Some differences between engines are differences of collation or of floating point, not
of meaning; the data and the generated values avoid them on purpose:

- strings that get *ordered* (min and max aggregates, most_frequent ties) are lower-case
  ASCII words, which sort alike under every collation; mixed-case strings are only
  compared with the case-insensitive string operators, and non-ASCII letters appear only
  in lower case (how PostgreSQL lowers them depends on the database's locale);
- float values are multiples of 0.25, so any sum of them is exact in any order;
- averages are compared with thresholds of four decimals ending in 1, 3, 7 or 9,
  which no average of two-decimal amounts (or whole numbers) over fewer than 100 rows
  can equal (DuckDB averages decimals in doubles, PostgreSQL in exact numerics).

Random trees per engine and dataset: DuckDB and PostgreSQL 150, Spark 20 (on two datasets);
the sweep runs whole on DuckDB and PostgreSQL, an eighth of one dataset's on Spark.
Set CORRAL_DIFFERENTIAL_EXAMPLES to run that many on every engine, for example:

    CORRAL_DIFFERENTIAL_EXAMPLES=1000 pytest tests/audiences/test_differential.py -k duckdb
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import (
    Aggregate,
    AudienceCondition,
    AudienceDefinition,
    EventCondition,
    Group,
    PropertyCondition,
    RelationCondition,
    SequenceCondition,
    SequenceStep,
    TraitCondition,
    Window,
)
from corral.audiences.evaluator import add_months, evaluate, evaluate_trait
from corral.errors import DefinitionError
from corral.schema import Schema, SchemaDefinition, bind_schema
from corral.sql import render
from corral.warehouse import TableRef, Warehouse
from tests.helpers.retail_schema import retail_schema

SEEDS = (11, 23, 37)
SPARK_SEEDS = (11, 23)
# One as-of time per dataset (wall-clock, in its workspace time zone): a leap day, a year's
# first midnight, the 31st of a month.
AS_OF = {
    11: datetime(2024, 2, 29, 10, 30),
    23: datetime(2025, 1, 1, 0, 0),
    37: datetime(2023, 3, 31, 18, 45, 15),
}
# Dataset 37's workspace is in New York: the compiler and the evaluator get its as-of time
# as an aware UTC instant, to convert themselves.
TIME_ZONES = {37: "America/New_York"}


def _examples(default: int) -> int:
    return int(os.environ.get("CORRAL_DIFFERENTIAL_EXAMPLES", default))


# -- the schema -------------------------------------------------------------------------------

COLUMNS: dict[str, dict[str, str]] = {
    "users": {
        "user_id": "integer", "email": "string", "country": "string", "plan": "string",
        "birthday": "date", "signup_at": "timestamp", "lifetime_value": "decimal",
        "score": "float", "age": "integer", "marketing_opt_in": "boolean",
        "household_id": "integer",
    },
    "households": {
        "household_id": "integer", "size": "integer", "income_band": "string",
        "region": "string",
    },
    "products": {
        "product_id": "integer", "name": "string", "category": "string", "price": "decimal",
    },
    "purchases": {
        "order_id": "integer", "user_id": "integer", "product_id": "integer",
        "amount": "decimal", "quantity": "integer", "channel": "string",
        "purchased_at": "timestamp",
    },
    "events": {
        "event_id": "integer", "user_id": "integer", "event_type": "string",
        "occurred_at": "timestamp", "channel": "string", "revenue": "decimal",
    },
    "consents": {
        "consent_id": "integer", "user_id": "integer", "purpose": "string",
        "granted": "boolean", "updated_on": "date",
    },
}  # fmt: skip
ARROW_TYPES = {
    "integer": pa.int64(), "string": pa.string(), "decimal": pa.decimal128(12, 2),
    "float": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}  # fmt: skip
# Lower-case words only: safe to order (min, max, most_frequent ties) under any collation.
ORDERED_STRINGS = {
    ("purchases", "channel"), ("events", "channel"), ("products", "category"),
    ("households", "income_band"), ("households", "region"), ("consents", "purpose"),
}  # fmt: skip
NUMBERS = ("integer", "decimal", "float")
TIMES = ("date", "timestamp")

TRAITS: list[dict[str, Any]] = [
    {"name": "order_count", "relation": "purchases", "aggregate": "count"},
    {"name": "web_orders", "relation": "purchases", "aggregate": "count",
     "where": {"conditions": [{"property": "channel", "equals": "web"}]}},
    {"name": "spend", "relation": "purchases", "aggregate": "sum", "column": "amount"},
    {"name": "recent_spend", "relation": "purchases", "aggregate": "sum", "column": "amount",
     "where": {"conditions": [{"property": "purchased_at", "within_last": "90 days"}]}},
    {"name": "average_amount", "relation": "purchases", "aggregate": "average",
     "column": "amount"},
    {"name": "average_quantity", "relation": "purchases", "aggregate": "average",
     "column": "quantity"},
    {"name": "smallest_amount", "relation": "purchases", "aggregate": "min", "column": "amount"},
    {"name": "last_purchase_at", "relation": "purchases", "aggregate": "max",
     "column": "purchased_at"},
    {"name": "distinct_products", "relation": "purchases", "aggregate": "count_distinct",
     "column": "product_id"},
    {"name": "first_channel", "relation": "purchases", "aggregate": "first", "column": "channel"},
    {"name": "last_product", "relation": "purchases", "aggregate": "last", "column": "product_id"},
    {"name": "first_amount_by_quantity", "relation": "purchases", "aggregate": "first",
     "column": "amount", "order_by": "quantity"},
    {"name": "favorite_category", "relation": "purchased_products",
     "aggregate": "most_frequent", "column": "category"},
    {"name": "favorite_quantity", "relation": "purchases", "aggregate": "most_frequent",
     "column": "quantity"},
    {"name": "categories_bought", "relation": "purchased_products", "aggregate": "list",
     "column": "category"},
    {"name": "channels_used", "relation": "purchases", "aggregate": "list", "column": "channel",
     "where": {"match": "any", "conditions": [{"property": "amount", "at_least": 20}]}},
    {"name": "event_count", "relation": "events", "aggregate": "count"},
    {"name": "consent_purposes", "relation": "consents", "aggregate": "list",
     "column": "purpose"},
    {"name": "value_tier", "type": "string",
     "formula": "CASE WHEN lifetime_value >= 1000 THEN 'gold' "
                "WHEN lifetime_value >= 200 THEN 'silver' ELSE 'bronze' END"},
    {"name": "double_value", "type": "decimal", "formula": "lifetime_value * 2"},
    {"name": "gross_spend", "type": "decimal", "relation": "purchases", "sql": "SUM(amount * 1.2)"},
    {"name": "most_items", "type": "integer", "relation": "purchases", "sql": "MAX(quantity)"},
]  # fmt: skip


def schema_definition(prefix: str) -> SchemaDefinition:
    """The shared retail schema with this test's traits, tables named with `prefix`."""
    return retail_schema(TRAITS, prefix=prefix)


# Audiences the random ones may include, one of them through another.
NAMED_AUDIENCES = {
    a.name: a
    for a in (
        AudienceDefinition.model_validate({
            "name": "Spenders",
            "conditions": [{"trait": "spend", "at_least": 60}],
        }),
        AudienceDefinition.model_validate({
            "name": "Recent or engaged",
            "match": "any",
            "conditions": [
                {"property": "signup_at", "within_last": "30 days"},
                {"event": "app_opened", "count": {"at_least": 2}, "within": {"last": "30 days"}},
            ],
        }),
        AudienceDefinition.model_validate({
            "name": "Spenders outside the US",
            "conditions": [
                {"audience": "Spenders"},
                {"property": "country", "not_equals": "us"},
            ],
        }),
    )
}  # fmt: skip


# -- the data -------------------------------------------------------------------------------

EVENT_TYPES = ("product_viewed", "added_to_cart", "checkout_started", "order_completed",
               "app_opened", "email_opened")  # fmt: skip
# Gaps between events of one session: on and either side of the step windows drawn below.
GAPS = [timedelta(seconds=s) for s in (0, 1, 30, 599, 600, 3599, 3600, 3601, 86400, 86401)]
OFFSETS = [timedelta(0), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1),
           timedelta(days=7), timedelta(days=14), timedelta(days=30), timedelta(days=90),
           timedelta(days=365)]  # fmt: skip
JITTER = [timedelta(0), timedelta(0), timedelta(seconds=1), timedelta(seconds=-1)]
NAMES = ["ann", "Bob", "CARL", "dana", "o'neil", "li", "Max"]


@dataclass(frozen=True, eq=False)
class Dataset:
    seed: int
    as_of: datetime  # wall-clock time in `time_zone`
    prefix: str
    rows: dict[str, list[dict[str, Any]]]

    @property
    def time_zone(self) -> str:
        return TIME_ZONES.get(self.seed, "UTC")

    @property
    def instant(self) -> datetime:
        """The as-of time as an aware UTC instant."""
        return self.as_of.replace(tzinfo=ZoneInfo(self.time_zone)).astimezone(UTC)

    def compiler(self, schema: Schema) -> AudienceCompiler:
        return AudienceCompiler(
            schema, self.instant, audiences=NAMED_AUDIENCES, time_zone=self.time_zone
        )

    def members(self, audience: AudienceDefinition) -> set[Any]:
        """The evaluator's members."""
        return evaluate(
            audience, self.schema, self.frames, as_of=self.instant, time_zone=self.time_zone,
            audiences=NAMED_AUDIENCES,
        )  # fmt: skip

    @functools.cached_property
    def arrow(self) -> dict[str, pa.Table]:
        return {
            name: pa.Table.from_pylist(rows, schema=pa.schema(
                [(c, ARROW_TYPES[t]) for c, t in COLUMNS[name].items()]
            ))
            for name, rows in self.rows.items()
        }  # fmt: skip

    @functools.cached_property
    def frames(self) -> dict[str, pl.DataFrame]:
        return {name: pl.from_arrow(table) for name, table in self.arrow.items()}  # type: ignore[misc]

    @functools.cached_property
    def definition(self) -> SchemaDefinition:
        return schema_definition(self.prefix)

    @functools.cached_property
    def schema(self) -> Schema:
        return Schema.bind(self.definition, COLUMNS)  # type: ignore[arg-type]

    def values(self, model: str, column: str) -> list[Any]:
        """The distinct non-null values of a column, in a stable order."""
        seen = dict.fromkeys(r[column] for r in self.rows[model] if r[column] is not None)
        return list(seen)

    @functools.cache  # noqa: B019 (datasets live as long as the module)
    def trait_values(self, trait: str) -> list[Any]:
        values = evaluate_trait(
            trait, self.schema, self.frames, as_of=self.instant, time_zone=self.time_zone
        )
        found = {v for v in values.values() if v is not None and not isinstance(v, frozenset)}
        return sorted(found, key=repr)


def period_starts(as_of: datetime) -> list[datetime]:
    """Where this and last week, month, quarter and year begin (and this ones end)."""
    today = datetime(as_of.year, as_of.month, as_of.day)
    monday = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    quarter = month.replace(month=(month.month - 1) // 3 * 3 + 1)
    year = month.replace(month=1)
    return [
        monday, monday - timedelta(weeks=1), monday + timedelta(weeks=1),
        month, add_months(month, -1), add_months(month, 1),
        quarter, add_months(quarter, -3), add_months(quarter, 3),
        year, add_months(year, -12), add_months(year, 12),
    ]  # fmt: skip


def moment_near(rng: random.Random, as_of: datetime, null: float = 0.08) -> datetime | None:
    """A time around the as-of time, often exactly on (or a second off) a boundary."""
    draw = rng.random()
    if draw < null:
        return None
    if draw < 0.35:
        offset = rng.choice(OFFSETS)
        sign = -1 if rng.random() < 0.8 else 1
        return as_of + sign * offset + rng.choice(JITTER)
    if draw < 0.45:
        months = rng.choice([1, 3, 12, 24]) * rng.choice([-1, -1, -1, 1])
        return add_months(as_of, months) + rng.choice(JITTER)
    if draw < 0.6:
        return rng.choice(period_starts(as_of)) + rng.choice(JITTER)
    if draw < 0.9:
        return as_of - timedelta(minutes=rng.randrange(0, 800 * 24 * 60))
    return as_of + timedelta(minutes=rng.randrange(1, 60 * 24 * 60))


def maybe(rng: random.Random, value: Any, null: float = 0.1) -> Any:
    return None if rng.random() < null else value


def money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randrange(low * 100, high * 100)) / 100


def birthday(rng: random.Random, as_of: datetime) -> date | None:
    draw = rng.random()
    if draw < 0.08:
        return None
    if draw < 0.3:
        return rng.choice([date(2000, 2, 29), date(1996, 2, 29), date(1990, 2, 28),
                           date(1985, 3, 1), date(1999, 12, 31), date(2001, 1, 1)])  # fmt: skip
    if draw < 0.6:
        day = as_of.date() + timedelta(days=rng.choice([-1, 0, 1, 6, 7, 8, 29, 30, 31]))
        year = rng.randrange(1950, 2010)
        if (day.month, day.day) == (2, 29):
            year = 2000
        return day.replace(year=year)
    return date(1950, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365))


def make_dataset(seed: int) -> Dataset:
    rng = random.Random(seed)
    as_of = AS_OF[seed]
    rows: dict[str, list[dict[str, Any]]] = {
        "users": [user(rng, as_of, i) for i in range(1, 61)],
        "households": [household(rng, i) for i in range(1, 26)],
        "products": [product(rng, i) for i in range(1, 31)],
        "purchases": [purchase(rng, as_of, i) for i in range(1, 151)],
        "events": events(rng, as_of),
        "consents": [consent(rng, as_of, i) for i in range(1, 81)],
    }
    pin_edges(rows["users"], as_of)
    return Dataset(seed, as_of, f"diff{seed}_", rows)


def pin_edges(users: list[dict[str, Any]], as_of: datetime) -> None:
    """A few users exactly on the edges, whatever the seed drew."""
    users[0].update(birthday=date(2000, 2, 29), country="", signup_at=as_of)
    users[1].update(birthday=as_of.date().replace(year=2000), country=None,
                    signup_at=as_of - timedelta(days=30))  # fmt: skip
    users[2].update(signup_at=add_months(as_of, -1), lifetime_value=None, score=None)
    users[3].update(signup_at=as_of + timedelta(seconds=1), email="", plan="PRO")


def user(rng: random.Random, as_of: datetime, user_id: int) -> dict[str, Any]:
    name = rng.choice(NAMES)
    return {
        "user_id": user_id,
        "email": rng.choice([f"{name}@example.com", f"{name.upper()}@Example.COM",
                             f"{name}@mail.org", "émile@exämple.com", "", None]),
        "country": rng.choice(["US", "us", "Us", "CA", "ca", "GB", "DE", " US", "", None]),
        "plan": rng.choice(["free", "Free", "pro", "PRO", "team", None]),
        "birthday": birthday(rng, as_of),
        "signup_at": moment_near(rng, as_of),
        "lifetime_value": maybe(rng, rng.choice([Decimal("200.00"), Decimal("1000.00"),
                                                 Decimal("199.99"), money(rng, 0, 2500)])),
        "score": maybe(rng, rng.randrange(-8, 40) * 0.25),
        "age": maybe(rng, rng.randrange(16, 90)),
        "marketing_opt_in": rng.choice([True, False, None]),
        "household_id": maybe(rng, rng.randrange(1, 28)),
    }  # fmt: skip


def household(rng: random.Random, household_id: int) -> dict[str, Any]:
    return {
        "household_id": household_id,
        "size": maybe(rng, rng.randrange(1, 7)),
        "income_band": rng.choice(["low", "mid", "high", None]),
        "region": rng.choice(["north", "south", "east", "west"]),
    }


def product(rng: random.Random, product_id: int) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "name": rng.choice(["Blue Mug", "blue mug", "RED pen", "Green Tea", "tea cup", "Pan"]),
        "category": rng.choice(["books", "garden", "grocery", "toys", "electronics", None]),
        "price": maybe(rng, money(rng, 1, 200)),
    }


def purchase(rng: random.Random, as_of: datetime, order_id: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        # Ids past 60 match no user, past 30 no product: rows that join nothing.
        "user_id": maybe(rng, rng.randrange(1, 64), 0.05),
        "product_id": maybe(rng, rng.randrange(1, 33), 0.05),
        "amount": maybe(rng, rng.choice([Decimal("20.00"), money(rng, 1, 120)])),
        "quantity": maybe(rng, rng.randrange(1, 5)),
        "channel": rng.choice(["web", "store", "app", None]),
        "purchased_at": moment_near(rng, as_of),
    }


def events(rng: random.Random, as_of: datetime) -> list[dict[str, Any]]:
    """Sessions of events a few seconds to a day apart, so that sequences can match."""
    found: list[dict[str, Any]] = []
    while len(found) < 350:
        user_id = rng.randrange(1, 64)
        when = moment_near(rng, as_of, null=0)
        assert when is not None
        for _ in range(rng.randrange(1, 6)):
            found.append({
                "event_id": len(found) + 1,
                "user_id": maybe(rng, user_id, 0.03),
                "event_type": rng.choice([*EVENT_TYPES, "App_Opened"]),
                "occurred_at": maybe(rng, when, 0.03),
                "channel": rng.choice(["web", "app", None]),
                "revenue": maybe(rng, money(rng, 1, 300), 0.5),
            })  # fmt: skip
            when += rng.choice(GAPS)
    return found


def consent(rng: random.Random, as_of: datetime, consent_id: int) -> dict[str, Any]:
    updated = moment_near(rng, as_of)
    return {
        "consent_id": consent_id,
        "user_id": maybe(rng, rng.randrange(1, 63), 0.05),
        "purpose": rng.choice(["email", "sms", "ads"]),
        "granted": rng.choice([True, False, None]),
        "updated_on": updated.date() if updated else None,
    }


DATASETS = {seed: make_dataset(seed) for seed in SEEDS}


# -- random condition trees ---------------------------------------------------------------------

DURATIONS = ["1 minute", "1 hour", "1 day", "7 days", "2 weeks", "30 days", "90 days",
             "365 days", "1 month", "3 months", "12 months", "1 year", "2 years"]  # fmt: skip
STEP_DURATIONS = ["1 minute", "10 minutes", "1 hour", "60 minutes", "1 day", "2 days", "1 week",
                  "1 month"]  # fmt: skip
PERIODS = ["this_week", "last_week", "this_month", "last_month", "this_quarter",
           "last_quarter", "this_year", "last_year"]  # fmt: skip
ANNIVERSARY_DAYS = [0, 1, 6, 7, 30, 364, 365, 366]
Pair = tuple[str, Any]


def recased(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.lower(), text.upper(), text.swapcase()])


def one_in(n: int, rare: st.SearchStrategy[Any], common: st.SearchStrategy[Any]) -> Any:
    return st.integers(0, n - 1).flatmap(lambda i: rare if i == 0 else common)


class Trees:
    """Hypothesis strategies for condition trees over one dataset's schema and values."""

    def __init__(self, dataset: Dataset):
        self.data = dataset
        self.schema = dataset.schema

    # -- comparisons ---------------------------------------------------------------------------

    def comparison(
        self, value_type: str, samples: Sequence[Any], *, average: bool = False
    ) -> st.SearchStrategy[Pair]:
        """An operator for the type and a value for it, mostly near the given samples."""
        nulls = st.tuples(st.sampled_from(["is_null", "is_not_null"]), st.none())
        if value_type == "string":
            typed = self.string_comparison(samples)
        elif value_type in NUMBERS:
            typed = self.number_comparison(value_type, samples, average)
        elif value_type == "boolean":
            typed = st.sampled_from([("is_true", None), ("is_false", None), ("equals", True),
                                     ("equals", False), ("not_equals", True)])  # fmt: skip
        else:
            typed = self.time_comparison(value_type, samples)
        return one_in(8, nulls, typed)  # type: ignore[no-any-return]

    def string_comparison(self, samples: Sequence[Any]) -> st.SearchStrategy[Pair]:
        texts = st.sampled_from(list(samples) or ["x"]).flatmap(recased)
        text = st.one_of(texts, texts, st.sampled_from(["", "zz", " us", "us "]))

        def fragment(sample: str) -> st.SearchStrategy[str]:
            ends = st.tuples(st.integers(0, len(sample)), st.integers(0, len(sample)))
            return ends.map(lambda e: sample[min(e) : max(e)]).flatmap(recased)

        fragments = st.sampled_from(list(samples) or ["x"]).flatmap(fragment)
        return st.one_of(
            st.tuples(st.sampled_from(["equals", "not_equals"]), text),
            st.tuples(st.sampled_from(["in", "not_in"]), st.lists(text, min_size=1, max_size=3)),
            st.tuples(st.sampled_from(["contains", "not_contains", "starts_with", "ends_with"]),
                      fragments),
        )  # fmt: skip

    def number_comparison(
        self, value_type: str, samples: Sequence[Any], average: bool
    ) -> st.SearchStrategy[Pair]:
        step = {"integer": 1, "decimal": Decimal("0.01"), "float": 0.25}[value_type]
        bases = st.sampled_from(list(samples) or [0])
        if average:
            # Never equal to an average (see the module docstring), so no engine rounds across.
            odd = st.sampled_from(["0.0037", "0.4999", "-0.0011", "0.7503"])
            number = st.tuples(bases, odd).map(lambda p: float(_cents(p[0]) + Decimal(p[1])))
        else:
            shifted = st.tuples(bases, st.sampled_from([0, 0, 1, -1]))
            number = shifted.map(lambda p: _plain(p[0] + step * p[1]))
        return st.one_of(
            st.tuples(st.sampled_from(["equals", "not_equals", "greater_than", "at_least",
                                       "less_than", "at_most"]), number),
            st.tuples(st.sampled_from(["in", "not_in"]), st.lists(number, min_size=1, max_size=3)),
            st.tuples(st.just("between"), st.lists(number, min_size=2, max_size=2)),
        )  # fmt: skip

    def time_comparison(self, value_type: str, samples: Sequence[Any]) -> st.SearchStrategy[Pair]:
        moment = self.moment(value_type, samples)
        return st.one_of(
            st.tuples(st.sampled_from(["equals", "not_equals", "on", "before", "after",
                                       "greater_than", "at_least", "less_than", "at_most"]),
                      moment),
            st.tuples(st.just("between"), st.lists(moment, min_size=2, max_size=2)),
            st.tuples(st.sampled_from(["within_last", "more_than_ago", "within_next"]),
                      st.sampled_from(DURATIONS)),
            st.tuples(st.just("in_period"), st.sampled_from(PERIODS)),
            st.tuples(st.just("anniversary_within_next"), st.sampled_from(ANNIVERSARY_DAYS)),
        )  # fmt: skip

    def moment(self, value_type: str, samples: Sequence[Any]) -> st.SearchStrategy[Any]:
        """A date or timestamp from the data, its day, or a second or a day beside it."""
        bases = st.sampled_from(list(samples) or [self.data.as_of])

        def near(value: date | datetime) -> st.SearchStrategy[Any]:
            if isinstance(value, datetime) and value_type == "timestamp":
                second = timedelta(seconds=1)
                return st.sampled_from([value, value.date(), value + second, value - second,
                                        value.isoformat(sep=" ")])  # fmt: skip
            day = value.date() if isinstance(value, datetime) else value
            return st.sampled_from([day, day + timedelta(days=1), day.isoformat()])

        return bases.flatmap(near)

    # -- conditions --------------------------------------------------------------------------------

    @functools.cache  # noqa: B019 (one Trees per dataset, kept for the module)
    def property(self, model: str) -> st.SearchStrategy[PropertyCondition]:
        def on_column(column: str) -> st.SearchStrategy[PropertyCondition]:
            samples = self.data.values(model, column)
            pairs = self.comparison(COLUMNS[model][column], samples)
            return pairs.map(lambda p: PropertyCondition(column=column, operator=p[0], value=p[1]))

        return st.sampled_from(sorted(COLUMNS[model])).flatmap(on_column)

    @functools.cache  # noqa: B019
    def condition(self, model: str, depth: int) -> st.SearchStrategy[Any]:
        kinds = [self.property(model), self.property(model)]
        if depth > 0:
            kinds.append(self.relation(model, depth - 1))
        if model == "users":
            # Traits and audiences also inside a `where` on users (reached in reverse);
            # events and sequences only near the top, so that the strategies end.
            kinds += [self.trait(), self.trait(), self.audience()]
            kinds += [self.event(), self.sequence()] if depth > 0 else []
        leaf = st.one_of(*kinds)
        return st.one_of(leaf, leaf, self.group(model, depth - 1)) if depth > 0 else leaf

    @functools.cache  # noqa: B019
    def group(self, model: str, depth: int) -> st.SearchStrategy[Group]:
        return st.builds(
            Group,
            match=st.sampled_from(["all", "any"]),
            negate=st.booleans(),
            conditions=st.lists(self.condition(model, depth), max_size=3).map(tuple),
        )

    def tree(self) -> st.SearchStrategy[AudienceDefinition]:
        """Half single conditions, whose every comparison shows in the members; half trees."""
        name = st.just("Random audience")
        single = st.builds(
            AudienceDefinition, name=name, conditions=self.condition("users", 1).map(lambda c: (c,))
        )
        tree = st.builds(
            AudienceDefinition,
            name=name,
            match=st.sampled_from(["all", "any"]),
            negate=st.booleans(),
            conditions=st.lists(self.condition("users", 3), max_size=3).map(tuple),
        )
        return st.one_of(single, tree)

    @functools.cache  # noqa: B019
    def relation(self, model: str, depth: int) -> st.SearchStrategy[RelationCondition]:
        names = self.schema.relation_names(model)

        def on_relation(name: str) -> st.SearchStrategy[RelationCondition]:
            target = self.schema.relation(model, name).target
            fields = {
                "relation": st.just(name),
                "where": st.none() | self.group(target, depth),
                "within": st.none() | self.window(target),
            }
            has = st.builds(RelationCondition, has=st.booleans(), **fields)
            measured = self.measured(target).flatmap(
                lambda m: st.builds(RelationCondition, aggregate=st.just(m[0]),
                                    operator=st.just(m[1]), value=st.just(m[2]), **fields)
            )  # fmt: skip
            return st.one_of(has, measured)

        return st.sampled_from(names).flatmap(on_relation)

    def measured(self, model: str) -> st.SearchStrategy[tuple[Aggregate, str, Any]]:
        """An aggregate of a model's rows, and an operator and value to compare it with."""
        columns = COLUMNS[model]
        numbers = [c for c, t in columns.items() if t in NUMBERS]
        ordered = [c for c, t in columns.items()
                   if t in NUMBERS + TIMES or (model, c) in ORDERED_STRINGS]  # fmt: skip
        choices: list[tuple[str, str | None]] = [("count", None), ("count", None)]
        choices += [("count_distinct", c) for c in columns]
        choices += [(f, c) for f in ("sum", "average") for c in numbers]
        choices += [(f, c) for f in ("min", "max") for c in ordered]

        def compare(
            choice: tuple[str, str | None],
        ) -> st.SearchStrategy[tuple[Aggregate, str, Any]]:
            function, column = choice
            if column is None or function == "count_distinct":
                value_type, samples = "integer", [0, 1, 2, 3]
            else:
                value_type = "float" if function == "average" else columns[column]
                samples = self.data.values(model, column)
            if function == "sum" and model == "purchases" and column == "amount":
                samples = self.data.trait_values("spend")
            pairs = self.comparison(value_type, samples, average=function == "average")
            spec = Aggregate(function=function, column=column)  # type: ignore[arg-type]
            return pairs.map(lambda p: (spec, p[0], p[1]))

        return st.sampled_from(choices).flatmap(compare)

    def window(self, model: str) -> st.SearchStrategy[Window]:
        time_column = self.schema.model(model).definition.time_column
        if time_column is None:
            return st.nothing()
        moment = self.moment(COLUMNS[model][time_column], self.data.values(model, time_column))
        return st.one_of(
            st.builds(Window, kind=st.sampled_from(["last", "next"]),
                      duration=st.sampled_from(DURATIONS)),
            st.builds(Window, kind=st.just("between"), start=moment, end=moment),
            st.builds(Window, kind=st.just("since"), start=moment),
            st.builds(Window, kind=st.just("before"), end=moment),
            st.builds(Window, kind=st.just("period"), period=st.sampled_from(PERIODS)),
        )  # fmt: skip

    def event_type(self) -> st.SearchStrategy[str]:
        return st.sampled_from([*EVENT_TYPES, "App_Opened"])

    @functools.cache  # noqa: B019
    def event(self) -> st.SearchStrategy[EventCondition]:
        fields = {
            "where": st.none() | self.group("events", 1),
            "within": st.none() | self.window("events"),
        }
        typed = st.builds(dict, event=self.event_type(), model=st.sampled_from([None, "events"]))
        untyped = st.just({"event": None, "model": "events"})
        which = one_in(5, untyped, typed)
        performed = st.builds(
            lambda w, p, **f: EventCondition(**w, performed=p, **f),
            which, st.booleans(), **fields,
        )  # fmt: skip
        measured = st.tuples(which, self.measured("events")).flatmap(
            lambda wm: st.builds(
                EventCondition, aggregate=st.just(wm[1][0]), operator=st.just(wm[1][1]),
                value=st.just(wm[1][2]), **{k: st.just(v) for k, v in wm[0].items()}, **fields,
            )
        )  # fmt: skip
        return st.one_of(performed, measured)

    @functools.cache  # noqa: B019
    def sequence(self) -> st.SearchStrategy[SequenceCondition]:
        step_where = st.none() | self.group("events", 0)
        step = st.builds(
            SequenceStep,
            event=one_in(8, st.none(), self.event_type()),
            where=step_where,
            within=st.none() | st.sampled_from(STEP_DURATIONS),
        )
        negative = st.builds(
            SequenceStep, event=self.event_type(), where=step_where,
            within=st.sampled_from(STEP_DURATIONS), performed=st.just(False),
        )  # fmt: skip
        steps = st.tuples(
            self.event_type().map(lambda e: SequenceStep(event=e)) | step,
            st.lists(step, min_size=0, max_size=1),
            st.none() | step | negative,
        ).map(lambda s: (s[0], *s[1], *([s[2]] if s[2] else [])))
        steps = steps.filter(lambda s: len(s) >= 2)
        return st.builds(
            SequenceCondition,
            model=st.sampled_from([None, "events"]),
            steps=steps,
            within=st.none() | self.window("events"),
        )

    @functools.cache  # noqa: B019
    def trait(self) -> st.SearchStrategy[TraitCondition]:
        def on_trait(name: str) -> st.SearchStrategy[TraitCondition]:
            definition = self.schema.trait(name)
            if definition.aggregate == "list":
                assert definition.column is not None
                target = self.schema.relation("users", definition.relation or "").target
                samples = self.data.values(target, definition.column)
                values = st.lists(st.sampled_from(samples).flatmap(recased), min_size=1,
                                  max_size=2)  # fmt: skip
                pairs = st.one_of(
                    st.tuples(st.sampled_from(["in", "not_in"]), values),
                    st.tuples(st.sampled_from(["is_null", "is_not_null"]), st.none()),
                )
            else:
                value_type, average = trait_type(self.schema, name)
                pairs = self.comparison(value_type, self.data.trait_values(name), average=average)
            return pairs.map(lambda p: TraitCondition(trait=name, operator=p[0], value=p[1]))

        return st.sampled_from(sorted(self.schema.traits)).flatmap(on_trait)

    def audience(self) -> st.SearchStrategy[AudienceCondition]:
        return st.builds(
            AudienceCondition,
            audience=st.sampled_from(sorted(NAMED_AUDIENCES)),
            member=st.booleans(),
        )


def trait_type(schema: Schema, name: str) -> tuple[str, bool]:
    """A trait's value type, and whether it is an average."""
    trait = schema.trait(name)
    if trait.type is not None:
        return trait.type, False
    if trait.aggregate in ("count", "count_distinct"):
        return "integer", False
    target = schema.model(schema.relation("users", trait.relation or "").target)
    column_type = target.column_types[trait.column or ""]
    if trait.aggregate == "average":
        return "float", True
    return column_type, False


def _cents(number: Any) -> Decimal:
    """A number (an average may be a Fraction) rounded to two decimals."""
    if isinstance(number, Fraction):
        number = number.numerator / Decimal(number.denominator)
    return Decimal(str(number)).quantize(Decimal("0.01"))


def _plain(number: Any) -> Any:
    """A number as YAML would give it: int, or float for decimals."""
    return float(number) if isinstance(number, Decimal) else number


# -- the sweep: every operator, window, aggregate and trait, one audience each -----------------
#
# Random trees find the combinations; a single comparison is rare among them (one column,
# one operator, one kind of value), so the sweep makes sure that each is tried on its own.

Spec = dict[str, Any]
# How each model is reached from users, to put a condition on its rows in a `where`.
REACH = {"users": None, "purchases": "purchases", "households": "households",
         "events": "events", "consents": "consents", "products": "purchased_products"}  # fmt: skip


def on_model(model: str, condition: Spec, **extra: Any) -> Spec:
    """A condition on the rows of `model`, as a condition on users."""
    relation = REACH[model]
    if relation is None:
        return condition
    return {"kind": "relation", "relation": relation,
            "where": {"kind": "group", "conditions": [condition]}, **extra}  # fmt: skip


def operator_values(
    rng: random.Random, value_type: str, samples: Sequence[Any]
) -> list[tuple[str, Any]]:
    """Every operator of a type, each with a value or two from the data (or beside it)."""
    pairs: list[tuple[str, Any]] = [("is_null", None), ("is_not_null", None)]
    if not samples:
        return pairs
    pick = functools.partial(rng.choice, samples)
    if value_type == "string":
        for operator in ("equals", "not_equals", "contains", "not_contains", "starts_with",
                         "ends_with"):  # fmt: skip
            text = pick()
            cut = text if operator.endswith("equals") else text[: rng.randrange(len(text) + 1)]
            pairs += [(operator, cut), (operator, rng.choice([cut.swapcase(), "", "zz"]))]
        pairs += [(op, [pick().upper(), pick()]) for op in ("in", "not_in")]
    elif value_type in NUMBERS:
        step = {"integer": 1, "decimal": Decimal("0.01"), "float": 0.25}[value_type]
        for operator in ("equals", "not_equals", "greater_than", "at_least", "less_than",
                         "at_most"):  # fmt: skip
            pairs += [(operator, _plain(pick())), (operator, _plain(pick() + step))]
        pairs += [(op, [_plain(pick()), _plain(pick())]) for op in ("in", "not_in")]
        pairs += [("between", sorted([_plain(pick()), _plain(pick())])), ("between", [5, 1])]
    elif value_type == "boolean":
        pairs += [("is_true", None), ("is_false", None), ("equals", True), ("equals", False),
                  ("not_equals", True), ("not_equals", False)]  # fmt: skip
    else:
        pairs += time_operator_values(rng, value_type, [pick() for _ in range(3)])
    return pairs


def time_operator_values(
    rng: random.Random, value_type: str, picks: Sequence[Any]
) -> list[tuple[str, Any]]:
    """Each time operator with a day and (on timestamps) an exact time; some durations."""
    days = [p.date() if isinstance(p, datetime) else p for p in picks]
    exact = [p for p in picks if isinstance(p, datetime) and value_type == "timestamp"]
    moments: list[Any] = [days[0], (days[1] + timedelta(days=1)).isoformat()]
    moments += [exact[0], exact[1] + timedelta(seconds=1)] if exact else []
    pairs: list[tuple[str, Any]] = []
    for operator in ("equals", "not_equals", "on", "before", "after", "greater_than",
                     "at_least", "less_than", "at_most"):  # fmt: skip
        pairs += [(operator, m) for m in moments]
    pairs += [("between", sorted(days[:2])), ("between", [moments[-1], days[2]])]
    for operator in ("within_last", "more_than_ago", "within_next"):
        pairs += [(operator, d) for d in rng.sample(DURATIONS, 4)]
    pairs += [("in_period", p) for p in rng.sample(PERIODS, 3)]
    pairs += [("anniversary_within_next", n) for n in rng.sample(ANNIVERSARY_DAYS, 3)]
    return pairs


def window_specs(dataset: Dataset, model: str) -> list[Spec]:
    rng = random.Random(f"{dataset.seed}:{model}:windows")
    time_column = dataset.schema.model(model).definition.time_column
    assert time_column is not None
    picks = rng.sample(dataset.values(model, time_column), 3)
    ends: list[Any] = [picks[0], picks[1].date() if isinstance(picks[1], datetime) else picks[1]]
    windows: list[Spec] = [
        {"kind": k, "duration": d} for k in ("last", "next") for d in rng.sample(DURATIONS, 5)
    ]
    windows += [{"kind": "period", "period": p} for p in rng.sample(PERIODS, 4)]
    windows += [{"kind": "since", "start": e} for e in ends]
    windows += [{"kind": "before", "end": e} for e in ends]
    windows += [{"kind": "between", "start": a, "end": b}
                for a, b in [(picks[2], ends[0]), (ends[1], picks[2])]]  # fmt: skip
    return windows


def measure_specs(dataset: Dataset, model: str) -> list[tuple[Spec, str, Any]]:
    """(aggregate, operator, value) for every aggregate of a model's columns."""
    rng = random.Random(f"{dataset.seed}:{model}")
    columns = COLUMNS[model]
    found: list[tuple[Spec, str, Any]] = []
    for operator, value in [("at_least", 1), ("at_most", 2), ("equals", 0), ("less_than", 2),
                            ("between", [1, 3]), ("not_in", [1])]:  # fmt: skip
        found.append(({"function": "count"}, operator, value))
    for column, column_type in columns.items():
        functions = ["count_distinct"]
        functions += ["sum", "average"] if column_type in NUMBERS else []
        ordered = column_type in NUMBERS + TIMES or (model, column) in ORDERED_STRINGS
        functions += ["min", "max"] if ordered else []
        for function in functions:
            spec = {"function": function, "column": column}
            value_type = column_type
            samples: list[Any] = dataset.values(model, column)
            if function == "count_distinct":
                value_type, samples = "integer", [0, 1, 2]
            if function == "average":
                value_type, samples = "float", [_odd(v) for v in samples]
            pairs = operator_values(rng, value_type, samples)
            found += [(spec, o, v) for o, v in rng.sample(pairs, min(len(pairs), 3))]
    return found


def sequence_specs() -> list[Spec]:
    """Funnels with step windows on, and either side of, the gaps between events."""
    found: list[Spec] = []
    funnels = [("product_viewed", "added_to_cart", "checkout_started"),
               ("app_opened", "app_opened", "email_opened"),
               ("added_to_cart", "product_viewed", "order_completed")]  # fmt: skip
    for first, second, third in funnels:
        for within in [None, "1 minute", "10 minutes", "1 hour", "1 day", "1 month"]:
            second_step = {"event": second, "within": within}
            found.append({"kind": "sequence", "steps": [{"event": first}, second_step]})
            for performed in (True, False):
                last = {"event": third, "within": within or "1 day", "performed": performed}
                found.append({"kind": "sequence", "steps": [{"event": first}, second_step, last]})
        found.append({"kind": "sequence", "steps": [{"event": first}, {"event": None}],
                      "within": {"kind": "last", "duration": "30 days"}})  # fmt: skip
    return found


def sweep(dataset: Dataset) -> list[AudienceDefinition]:
    """Every operator on every column, window, aggregate, trait and a few sequences."""
    rng = random.Random(dataset.seed)
    conditions: list[Spec] = []
    for model, columns in COLUMNS.items():
        for column, column_type in columns.items():
            samples = dataset.values(model, column)
            for operator, value in operator_values(rng, column_type, samples):
                condition = {"kind": "property", "column": column, "operator": operator,
                             "value": value}  # fmt: skip
                conditions.append(on_model(model, condition))
    for model in ("purchases", "events", "consents"):
        conditions += [{"kind": "relation", "relation": model, "within": w}
                       for w in window_specs(dataset, model)]  # fmt: skip
    for relation in ("purchases", "households", "events", "consents", "purchased_products"):
        target = dataset.schema.relation("users", relation).target
        conditions += [
            {"kind": "relation", "relation": relation, "aggregate": a, "operator": o, "value": v}
            for a, o, v in measure_specs(dataset, target)
        ]
    for event_type in (*EVENT_TYPES, "App_Opened"):
        conditions += [
            {"kind": "event", "event": event_type, "performed": False},
            {"kind": "event", "event": event_type, "aggregate": {"function": "count"},
             "operator": "at_least", "value": 2},
        ]  # fmt: skip
    conditions += sequence_specs()
    for name in sorted(dataset.schema.traits):
        conditions += [{"kind": "trait", "trait": name, "operator": o, "value": v}
                       for o, v in trait_operator_values(rng, dataset, name)]  # fmt: skip
    return [
        AudienceDefinition.model_validate({"name": f"sweep {i}", "conditions": [c]})
        for i, c in enumerate(conditions)
    ]


def trait_operator_values(rng: random.Random, dataset: Dataset, name: str) -> list[tuple[str, Any]]:
    trait = dataset.schema.trait(name)
    if trait.aggregate == "list":
        target = dataset.schema.relation("users", trait.relation or "").target
        samples = dataset.values(target, trait.column or "")
        return [("is_null", None), ("is_not_null", None), ("in", samples[:1]),
                ("in", [s.upper() for s in samples[1:3]]), ("not_in", samples[:2])]  # fmt: skip
    value_type, average = trait_type(dataset.schema, name)
    samples = dataset.trait_values(name)
    if average:
        samples = [_odd(v) for v in samples]
    pairs = operator_values(rng, value_type, samples)
    return rng.sample(pairs, min(len(pairs), 12))


def _odd(number: Any) -> float:
    """A threshold no average can equal (see the module docstring)."""
    return float(_cents(number) + Decimal("0.0037"))


# -- running -------------------------------------------------------------------------------


def load(warehouse: Warehouse, dataset: Dataset) -> Schema:
    """Create the dataset's tables and bind its schema to the columns the engine reports."""
    for name, table in dataset.arrow.items():
        warehouse.create_table(TableRef(f"{dataset.prefix}{name}"), table, replace=True)
    schema = bind_schema(dataset.definition, warehouse)
    for name, columns in COLUMNS.items():
        assert dict(schema.model(name).column_types) == columns, f"{warehouse.dialect}: {name}"
    return schema


def agree(dataset: Dataset, warehouse: Warehouse, schema: Schema, examples: int) -> None:
    """Hypothesis: every random audience selects the evaluator's members on `warehouse`."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(audience=Trees(dataset).tree())
    def check(audience: AudienceDefinition) -> None:
        check_audience(dataset, warehouse, schema, audience)

    check()


def check_audience(
    dataset: Dataset, warehouse: Warehouse, schema: Schema, audience: AudienceDefinition
) -> None:
    compiler = dataset.compiler(schema)
    try:
        expected = dataset.members(audience)
    except DefinitionError as error:
        # An audience the evaluator rejects, the compiler must reject too.
        with pytest.raises(DefinitionError):
            compiler.members(audience)
        raise AssertionError(f"the generator made an invalid audience: {error}") from error
    query = compiler.members(audience)
    got = set(warehouse.query(query).column(0).to_pylist())
    if got != expected:
        raise AssertionError(disagreement(dataset, warehouse, audience, query, expected, got))


def check_sweep(
    dataset: Dataset, warehouse: Warehouse, schema: Schema, *, stride: int = 1, batch: int = 60
) -> None:
    """Every `stride`-th audience of the sweep, `batch` per query (one UNION ALL)."""
    everything = sweep_audiences(dataset.seed)
    check_batches(dataset, warehouse, schema, everything, sweep_members(dataset), stride, batch)


def check_batches(
    dataset: Dataset,
    warehouse: Warehouse,
    schema: Schema,
    everything: list[AudienceDefinition],
    members: list[set[Any]],
    stride: int = 1,
    batch: int = 60,
) -> None:
    """Every `stride`-th audience, `batch` per query (one UNION ALL), against `members`."""
    compiler = dataset.compiler(schema)
    chosen = range(0, len(everything), stride)
    audiences = {i: everything[i] for i in chosen}
    queries = {i: compiler.members(a) for i, a in audiences.items()}
    got: dict[int, set[Any]] = {i: set() for i in audiences}
    for start in range(0, len(chosen), batch):
        labelled = [
            exp.select(exp.Literal.number(i).as_("sweep"), exp.column("user_id", "m")).from_(
                queries[i].subquery("m")
            )
            for i in chosen[start : start + batch]
        ]
        for row in warehouse.query(exp.union(*labelled, distinct=False)).to_pylist():
            got[row["sweep"]].add(row["user_id"])
    expected = members
    wrong = [
        disagreement(dataset, warehouse, audiences[i], queries[i], expected[i], got[i])
        for i in chosen
        if got[i] != expected[i]
    ]
    assert not wrong, f"{len(wrong)} of {len(chosen)} disagree; the first ones:\n\n" + (
        "\n\n".join(wrong[:8])
    )


@functools.cache
def sweep_audiences(seed: int) -> list[AudienceDefinition]:
    return sweep(DATASETS[seed])


@functools.cache
def sweep_members(dataset: Dataset) -> list[set[Any]]:
    return [dataset.members(a) for a in sweep_audiences(dataset.seed)]


@functools.cache
def shared_audiences(seed: int) -> list[AudienceDefinition]:
    """Pairs of sweep conditions that aggregate over one relation path.

    The compiler computes such aggregates in one shared table joined to the parent row
    (`corral.audiences.shared`), so every pair is tried under each top-level match and
    negation: a parent without related rows, or whose rows all fail one condition's
    filters, must still compare as the value over no rows.
    """
    schema = DATASETS[seed].schema
    by_path: dict[str, list[Any]] = {}
    for audience in sweep_audiences(seed):
        condition = audience.conditions[0]
        path = _aggregated_path(schema, condition)
        if path is not None:
            by_path.setdefault(path, []).append(condition)
    combinations = [("all", False), ("any", False), ("all", True), ("any", True)]
    found: list[AudienceDefinition] = []
    for path in sorted(by_path):
        conditions = by_path[path]
        for i, condition in enumerate(conditions):
            partner = conditions[(7 * i + 1) % len(conditions)]
            match, negate = combinations[i % len(combinations)]
            found.append(
                AudienceDefinition(
                    name=f"shared {len(found)}", match=match, negate=negate,
                    conditions=(condition, partner),
                )
            )  # fmt: skip
    return found


def _aggregated_path(schema: Schema, condition: Any) -> str | None:
    """The relation a condition aggregates over, or None when it does not aggregate."""
    if isinstance(condition, RelationCondition) and condition.operator is not None:
        return condition.relation
    if isinstance(condition, EventCondition) and condition.operator is not None:
        return condition.model or "events"
    if isinstance(condition, TraitCondition):
        trait = schema.trait(condition.trait)
        if trait.kind == "aggregate" and trait.aggregate not in ("list", "most_frequent"):
            return trait.relation
    return None


@functools.cache
def shared_members(dataset: Dataset) -> list[set[Any]]:
    return [dataset.members(a) for a in shared_audiences(dataset.seed)]


def disagreement(
    dataset: Dataset,
    warehouse: Warehouse,
    audience: AudienceDefinition,
    query: Any,
    expected: set[Any],
    got: set[Any],
) -> str:
    return (
        f"{warehouse.dialect} disagrees with the evaluator (dataset {dataset.seed}, "
        f"as of {dataset.as_of} in {dataset.time_zone})\n"
        f"audience: {audience.model_dump_json(exclude_defaults=True)}\n"
        f"only the evaluator selects: {sorted(expected - got)[:20]}\n"
        f"only {warehouse.dialect} selects: {sorted(got - expected)[:20]}\n"
        f"SQL:\n{render(query, warehouse.dialect, pretty=True)}"
    )


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_schemas(postgres_warehouse: Warehouse) -> dict[int, Schema]:
    """Every dataset loaded once into the session's PostgreSQL schema."""
    return {seed: load(postgres_warehouse, DATASETS[seed]) for seed in SEEDS}


@pytest.fixture(scope="module")
def spark_schemas(spark_warehouse: Warehouse) -> dict[int, Schema]:
    """The Spark datasets loaded once into the session's Spark database."""
    return {seed: load(spark_warehouse, DATASETS[seed]) for seed in SPARK_SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_duckdb_selects_the_evaluators_members(seed: int, duckdb_warehouse: Warehouse) -> None:
    dataset = DATASETS[seed]
    schema = load(duckdb_warehouse, dataset)
    agree(dataset, duckdb_warehouse, schema, _examples(150))


@pytest.mark.postgres
@pytest.mark.parametrize("seed", SEEDS)
def test_postgres_selects_the_evaluators_members(
    seed: int, postgres_warehouse: Warehouse, postgres_schemas: dict[int, Schema]
) -> None:
    agree(DATASETS[seed], postgres_warehouse, postgres_schemas[seed], _examples(150))


@pytest.mark.spark
@pytest.mark.parametrize("seed", SPARK_SEEDS)
def test_spark_selects_the_evaluators_members(
    seed: int, spark_warehouse: Warehouse, spark_schemas: dict[int, Schema]
) -> None:
    agree(DATASETS[seed], spark_warehouse, spark_schemas[seed], _examples(20))


@pytest.mark.parametrize("seed", SEEDS)
def test_duckdb_sweep(seed: int, duckdb_warehouse: Warehouse) -> None:
    dataset = DATASETS[seed]
    schema = load(duckdb_warehouse, dataset)
    check_sweep(dataset, duckdb_warehouse, schema)


@pytest.mark.postgres
@pytest.mark.parametrize("seed", SEEDS)
def test_postgres_sweep(
    seed: int, postgres_warehouse: Warehouse, postgres_schemas: dict[int, Schema]
) -> None:
    check_sweep(DATASETS[seed], postgres_warehouse, postgres_schemas[seed])


@pytest.mark.spark
def test_spark_sweep(spark_warehouse: Warehouse, spark_schemas: dict[int, Schema]) -> None:
    # An eighth of one dataset's sweep (its kinds are in order, so each keeps its share), in
    # small batches: Spark plans every union member's joins as broadcasts held at once.
    seed = SPARK_SEEDS[-1]
    check_sweep(DATASETS[seed], spark_warehouse, spark_schemas[seed], stride=8, batch=15)


@pytest.mark.parametrize("seed", SEEDS)
def test_duckdb_shared_aggregates(seed: int, duckdb_warehouse: Warehouse) -> None:
    dataset = DATASETS[seed]
    schema = load(duckdb_warehouse, dataset)
    audiences = shared_audiences(seed)
    check_batches(dataset, duckdb_warehouse, schema, audiences, shared_members(dataset))


@pytest.mark.postgres
@pytest.mark.parametrize("seed", SEEDS)
def test_postgres_shared_aggregates(
    seed: int, postgres_warehouse: Warehouse, postgres_schemas: dict[int, Schema]
) -> None:
    dataset = DATASETS[seed]
    audiences = shared_audiences(seed)
    check_batches(
        dataset, postgres_warehouse, postgres_schemas[seed], audiences, shared_members(dataset)
    )


@pytest.mark.spark
def test_spark_shared_aggregates(
    spark_warehouse: Warehouse, spark_schemas: dict[int, Schema]
) -> None:
    seed = SPARK_SEEDS[-1]
    dataset, audiences = DATASETS[seed], shared_audiences(seed)
    schema = spark_schemas[seed]
    check_batches(dataset, spark_warehouse, schema, audiences, shared_members(dataset), 4, 15)


def test_the_datasets_reach_the_edges() -> None:
    """The generator keeps making the data this test relies on (a guard against drift)."""
    for dataset in DATASETS.values():
        users = dataset.rows["users"]
        assert any(u["birthday"] == date(2000, 2, 29) for u in users)
        assert any(u["country"] == "" for u in users)
        assert any(u["country"] is None for u in users)
        assert any(e["occurred_at"] and e["occurred_at"] > dataset.as_of
                   for e in dataset.rows["events"])  # fmt: skip
        assert any(p["user_id"] is not None and p["user_id"] > 60
                   for p in dataset.rows["purchases"])  # fmt: skip
        assert any(p["purchased_at"] == dataset.as_of - timedelta(days=30)
                   for p in dataset.rows["purchases"])  # fmt: skip
