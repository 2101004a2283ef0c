"""Previews on a small demo warehouse agree with plain counts of the compiled SQL."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp
from typer.testing import CliRunner

from corral.audiences import preview as preview_module
from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import AudienceDefinition
from corral.audiences.preview import REDACTED, Breakdown, Preview, preview
from corral.cli.main import app
from corral.demo.generate import DEMO_AS_OF, TABLES
from corral.errors import DefinitionError, UnknownReferenceError
from corral.schema import Schema, bind_schema
from corral.sql import render
from corral.sql.build import column
from corral.warehouse import DuckDBWarehouse, Warehouse
from corral.warehouse._common import drop_schema_statement
from corral.warehouse.base import TableRef
from corral.workspace import Workspace, load_workspace
from tests.helpers.demo import DEMO_USERS
from tests.helpers.demo_schema import demo_workspace as packaged_workspace
from tests.helpers.demo_schema import qualified_schema

AUDIENCES = sorted(packaged_workspace().audiences)


@dataclass
class Demo:
    workspace: Workspace
    warehouse: DuckDBWarehouse
    schema: Schema

    def preview(self, audience: AudienceDefinition | str, **options: Any) -> Preview:
        if isinstance(audience, str):
            audience = self.workspace.audiences[audience]
        return preview(
            audience,
            self.schema,
            self.warehouse,
            audiences=self.workspace.audiences,
            as_of=self.workspace.settings.as_of or datetime(2026, 12, 1),
            **options,
        )

    def compiler(self) -> AudienceCompiler:
        as_of = self.workspace.settings.as_of or datetime(2026, 12, 1)
        return AudienceCompiler(self.schema, as_of, audiences=self.workspace.audiences)

    def count(self, query: exp.Select) -> int:
        counted = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(query.subquery("q"))
        return int(self.warehouse.query(counted).to_pylist()[0]["n"])

    def member_rows(self, audience: str) -> list[dict[str, Any]]:
        """Every column of every member's parent row, in primary key order."""
        members = self.compiler().members(self.workspace.audiences[audience])
        users = (
            exp.select("*")
            .from_("users")
            .where(exp.column("user_id").isin(query=members))
            .order_by("user_id")
        )
        return self.warehouse.query(users).to_pylist()


@pytest.fixture(scope="module")
def demo(demo_workspace: Path) -> Iterator[Demo]:
    workspace = load_workspace(demo_workspace)
    warehouse = DuckDBWarehouse(str(demo_workspace / "warehouse.duckdb"), read_only=True)
    yield Demo(workspace, warehouse, bind_schema(workspace.schema, warehouse))
    warehouse.close()


# -- size and blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", AUDIENCES)
def test_size_is_the_count_of_the_members_query(demo: Demo, name: str) -> None:
    audience = demo.workspace.audiences[name]
    result = demo.preview(audience)
    assert result.size == demo.count(demo.compiler().members(audience))
    assert result.parent_rows == DEMO_USERS
    assert result.sql == render(demo.compiler().members(audience), "duckdb", pretty=True)


@pytest.fixture(params=["flags", "union"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of counting blocks, on DuckDB: one scan with flags, or UNION ALL."""
    if request.param == "union":
        monkeypatch.setattr(preview_module, "_FLAG_DIALECTS", ())
    return str(request.param)


@pytest.mark.parametrize("name", AUDIENCES)
def test_block_sizes_are_each_condition_counted_alone(demo: Demo, name: str, counting: str) -> None:
    audience = demo.workspace.audiences[name]
    result = demo.preview(audience)
    assert result.size == demo.count(demo.compiler().members(audience))
    assert result.parent_rows == DEMO_USERS
    compiler = demo.compiler()
    predicates = compiler.block_predicates(audience, "p")
    parent = compiler.source(demo.schema.parent, "p")
    expected = [
        demo.count(exp.select(column("user_id", "p")).from_(parent.copy()).where(p))
        for p in predicates
    ]
    assert [b.size for b in result.blocks] == expected
    assert [b.index for b in result.blocks] == list(range(1, len(expected) + 1))
    assert all(b.description for b in result.blocks)


def test_some_demo_audience_has_blocks_of_different_sizes(demo: Demo) -> None:
    result = demo.preview("Lapsed high spenders")
    assert len({b.size for b in result.blocks}) > 1
    assert result.size <= min(b.size for b in result.blocks)


@pytest.mark.parametrize(("match", "negate"), [("any", False), ("all", True), ("any", True)])
def test_size_combines_blocks_as_the_top_level_group_does(
    demo: Demo, match: str, negate: bool, counting: str
) -> None:
    audience = AudienceDefinition.model_validate(
        {
            "name": "mixed",
            "match": match,
            "negate": negate,
            "conditions": [
                {"property": "country", "in": ["US", "CA"]},
                {"trait": "order_count", "at_least": 3},
                {"event": "order_completed", "performed": False, "within": {"last": "90 days"}},
            ],
        }
    )
    result = demo.preview(audience)
    assert result.size == demo.count(demo.compiler().members(audience))
    assert 0 < result.size < DEMO_USERS


def test_an_audience_without_conditions_holds_every_parent_row(demo: Demo) -> None:
    result = demo.preview(AudienceDefinition(name="everyone"))
    assert result.size == result.parent_rows == DEMO_USERS
    assert result.blocks == ()


def test_time_waiting_for_a_busy_warehouse_is_reported_as_queued(demo_workspace: Path) -> None:
    """With every query slot taken, the preview waits inside the warehouse adapter; the
    wait is warehouse time, and the timings say how much of it was queueing."""
    workspace = load_workspace(demo_workspace)
    warehouse = DuckDBWarehouse(
        str(demo_workspace / "warehouse.duckdb"), read_only=True, max_queries=1
    )
    schema = bind_schema(workspace.schema, warehouse)
    results: list[Preview] = []
    audience = workspace.audiences["VIPs"]
    waiter = threading.Thread(
        target=lambda: results.append(
            preview(audience, schema, warehouse, audiences=workspace.audiences, as_of=DEMO_AS_OF)
        )
    )
    with warehouse._slots:  # another caller holds the only slot for 300 ms
        waiter.start()
        time.sleep(0.3)
    waiter.join()
    warehouse.close()

    (counted,) = [t for t in results[0].timings if t.step.startswith("size")]
    assert 250 <= counted.queued_ms <= counted.warehouse_ms
    assert all(t.queued_ms == 0 for t in results[0].timings if t is not counted)
    assert results[0].to_dict()["timings"][1]["queued_ms"] == round(counted.queued_ms, 2)


def test_blocks_can_be_skipped(demo: Demo) -> None:
    with_blocks = demo.preview("VIPs")
    without = demo.preview("VIPs", blocks=False)
    assert without.size == with_blocks.size
    assert without.blocks == ()
    assert [t.step for t in without.timings] == ["compile", "size"]


# -- breakdowns --------------------------------------------------------------------------------

BREAKDOWNS = [
    "country",
    "plan",
    "marketing_opt_in",
    "lifetime_value",
    "signup_at",
    "order_count",
    "value_tier",
    "favorite_category",
    "last_purchase_at",
    "average_order_value",
    "spend_last_year",
    "first_channel",
    "gross_spend_with_tax",
]


@pytest.mark.parametrize("name", ["North American subscribers", "VIPs", "Win-back"])
def test_breakdown_counts_add_up_to_the_size(demo: Demo, name: str) -> None:
    result = demo.preview(name, breakdowns=BREAKDOWNS)
    assert [b.name for b in result.breakdowns] == BREAKDOWNS
    for breakdown in result.breakdowns:
        assert breakdown.total == result.size, breakdown.name


def test_top_values_match_counting_in_python(demo: Demo) -> None:
    rows = demo.member_rows("VIPs")
    result = demo.preview("VIPs", breakdowns=["country", "marketing_opt_in"])
    country, opt_in = result.breakdowns

    counted = Counter(r["country"] for r in rows if r["country"] is not None)
    ranked = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
    assert country.kind == "top_values"
    assert [(v.value, v.count) for v in country.values] == ranked[:10]
    assert country.other == sum(n for _, n in ranked[10:])
    assert country.nulls == sum(1 for r in rows if r["country"] is None)
    assert {v.value for v in opt_in.values} <= {True, False}


def test_histogram_bins_cover_min_to_max(demo: Demo) -> None:
    rows = demo.member_rows("North American subscribers")
    result = demo.preview(
        "North American subscribers",
        breakdowns=["lifetime_value", "signup_at", "birthday"],
        reveal=True,
    )
    for breakdown in result.breakdowns:
        values = [r[breakdown.name] for r in rows if r[breakdown.name] is not None]
        _assert_covers(breakdown, min(values), max(values))
        assert sum(b.count for b in breakdown.bins) == len(values)
        assert 1 <= len(breakdown.bins) <= 16


def _assert_covers(breakdown: Breakdown, low: Any, high: Any) -> None:
    bins = breakdown.bins
    assert breakdown.kind == "histogram" and bins
    assert all(a.high == b.low for a, b in itertools.pairwise(bins))
    assert _comparable(bins[0].low, low) <= _comparable(low, low)
    assert _comparable(bins[-1].high, high) >= _comparable(high, high)


def _comparable(value: Any, like: Any) -> Any:
    if isinstance(like, datetime) and type(value) is date:
        return datetime(value.year, value.month, value.day)
    return value


def test_a_single_value_makes_one_bin(demo: Demo) -> None:
    one = AudienceDefinition.model_validate(
        {"name": "one", "conditions": [{"property": "user_id", "equals": 7}]}
    )
    result = demo.preview(one, breakdowns=["lifetime_value", "signup_at", "order_count"])
    for breakdown in result.breakdowns:
        assert [b.count for b in breakdown.bins] == [1], breakdown.name


def test_an_empty_audience_has_empty_breakdowns(demo: Demo) -> None:
    none = AudienceDefinition.model_validate(
        {"name": "none", "conditions": [{"property": "user_id", "less_than": 0}]}
    )
    result = demo.preview(none, breakdowns=["lifetime_value", "country"], sample=3)
    assert result.size == 0
    assert all(b.total == 0 and not b.bins and not b.values for b in result.breakdowns)
    assert result.sample is not None and result.sample.rows == ()


def test_dates_bin_by_calendar_units(demo: Demo) -> None:
    result = demo.preview(
        "North American subscribers", breakdowns=["signup_at", "birthday"], reveal=True
    )
    signup, birthday = result.breakdowns
    assert signup.unit in ("month", "quarter")
    assert all(b.low.day == 1 for b in signup.bins)
    assert birthday.unit is not None and "year" in birthday.unit
    assert all(isinstance(b.low, date) and not isinstance(b.low, datetime) for b in birthday.bins)


def test_integer_histograms_have_whole_number_edges(demo: Demo) -> None:
    (order_count,) = demo.preview("Win-back", breakdowns=["order_count"]).breakdowns
    assert all(isinstance(b.low, int) and isinstance(b.high, int) for b in order_count.bins)


def test_unknown_and_list_breakdowns_are_refused_clearly(demo: Demo) -> None:
    with pytest.raises(UnknownReferenceError, match="neither a column of 'users' nor a trait"):
        demo.preview("VIPs", breakdowns=["contry"])
    with pytest.raises(DefinitionError, match="is a list"):
        demo.preview("VIPs", breakdowns=["categories_bought"])
    with pytest.raises(DefinitionError, match="hidden"):
        demo.preview("VIPs", breakdowns=["household_id"])


def test_private_columns_need_reveal_to_break_down(demo: Demo) -> None:
    with pytest.raises(DefinitionError, match="'email' is pii"):
        demo.preview("VIPs", breakdowns=["email"])
    (email,) = demo.preview("VIPs", breakdowns=["email"], reveal=True).breakdowns
    assert all("@" in str(v.value) for v in email.values)


def test_breakdowns_accept_a_column_alias(demo: Demo) -> None:
    (ltv,) = demo.preview("VIPs", breakdowns=["Lifetime value"]).breakdowns
    assert ltv.name == "lifetime_value"


# -- sample ------------------------------------------------------------------------------------


def test_sample_is_the_first_members_by_primary_key_with_private_columns_redacted(
    demo: Demo,
) -> None:
    rows = demo.member_rows("VIPs")
    result = demo.preview("VIPs", sample=5, sample_columns=["country", "order_count", "phone"])
    sample = result.sample
    assert sample is not None
    assert sample.columns == (
        "user_id",
        "first_name",
        "last_name",
        "email",
        "country",
        "order_count",
        "phone",
    )
    assert [r[0] for r in sample.rows] == [r["user_id"] for r in rows[:5]]
    assert set(sample.redacted) == {"first_name", "last_name", "email", "phone"}
    for row in sample.rows:
        assert row[1] == row[2] == row[3] == row[6] == REDACTED
        assert row[4] not in (None, REDACTED)
        assert isinstance(row[5], int) and row[5] >= 0


def test_sample_reveals_private_columns_on_request(demo: Demo) -> None:
    rows = demo.member_rows("VIPs")
    sample = demo.preview("VIPs", sample=3, reveal=True).sample
    assert sample is not None and sample.redacted == ()
    assert [r[3] for r in sample.rows] == [r["email"] for r in rows[:3]]


def test_hidden_columns_are_not_offered_in_samples(demo: Demo) -> None:
    with pytest.raises(DefinitionError, match="'household_id' of 'users' is hidden"):
        demo.preview("VIPs", sample=3, sample_columns=["household_id"])


# -- timings and JSON --------------------------------------------------------------------------


def test_timings_name_every_step_and_split_warehouse_time(demo: Demo) -> None:
    result = demo.preview("VIPs", breakdowns=["country", "order_count"], sample=2)
    steps = [t.step for t in result.timings]
    assert steps == [
        "compile",
        "size and blocks",
        "breakdown country",
        "breakdown order_count",
        "sample",
    ]
    compile_step, *queried = result.timings
    assert compile_step.warehouse_ms == 0
    assert all(0 < t.warehouse_ms <= t.total_ms for t in queried)


def test_to_dict_is_json(demo: Demo) -> None:
    result = demo.preview("Win-back", breakdowns=["signup_at", "country"], sample=3)
    data = json.loads(json.dumps(result.to_dict()))
    assert {"audience", "size", "as_of", "sql", "blocks", "timings"} <= set(data)
    assert data["size"] == result.size
    assert data["breakdowns"][0]["bins"][0]["low"].startswith("20")


def test_cli_json_gives_the_size_of_the_python_api(demo: Demo, demo_workspace: Path) -> None:
    result = CliRunner().invoke(
        app, ["audience", "preview", "vips", "--json", "--workspace", str(demo_workspace)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["size"] == demo.preview("VIPs").size
    assert data["audience"] == "VIPs"


# -- other engines -----------------------------------------------------------------------------

ENGINE_AUDIENCES = ["VIPs", "Lapsed high spenders", "Win-back"]
ENGINE_BREAKDOWNS = [
    "plan",
    "value_tier",
    "first_channel",
    "marketing_opt_in",
    "lifetime_value",
    "signup_at",
    "order_count",
    "spend_last_year",
]


def test_postgres_previews_like_duckdb(demo: Demo, postgres_warehouse: Any) -> None:
    _assert_previews_agree(demo, postgres_warehouse)


def test_spark_previews_like_duckdb(demo: Demo, spark_warehouse: Any) -> None:
    # Fewer queries: each one takes Spark seconds.
    _assert_previews_agree(
        demo, spark_warehouse, ["VIPs"], ["plan", "marketing_opt_in", "signup_at", "order_count"]
    )


def _assert_previews_agree(
    demo: Demo,
    warehouse: Warehouse,
    audiences: list[str] = ENGINE_AUDIENCES,
    breakdowns: list[str] = ENGINE_BREAKDOWNS,
) -> None:
    """Sizes, blocks, breakdowns and samples are the same as on DuckDB, value for value."""
    schema_name = f"corral_preview_{os.getpid()}"
    warehouse.ensure_schema(schema_name)
    try:
        for table in TABLES:
            rows = demo.warehouse.query(exp.select("*").from_(exp.to_table(table)))
            warehouse.create_table(TableRef(table, schema_name), rows, replace=True)
        bound = bind_schema(qualified_schema(demo.workspace.schema, schema_name), warehouse)
        for name in audiences:
            options: dict[str, Any] = {"breakdowns": breakdowns, "sample": 3}
            there = preview(
                demo.workspace.audiences[name],
                bound,
                warehouse,
                audiences=demo.workspace.audiences,
                as_of=DEMO_AS_OF,
                **options,
            )
            assert _summary(there) == _summary(demo.preview(name, **options)), name
    finally:
        warehouse.execute(drop_schema_statement(schema_name))


def _summary(result: Preview) -> tuple[Any, ...]:
    breakdowns = [(b.name, b.values, b.other, b.bins, b.nulls) for b in result.breakdowns]
    sample = result.sample.rows if result.sample else ()
    return result.size, result.parent_rows, [b.size for b in result.blocks], breakdowns, sample
