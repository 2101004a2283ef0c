"""Previews of an audience on a warehouse: size, block sizes, breakdowns, a sample.

Everything is computed in the warehouse; Corral fetches only counts, at most a dozen
rows per breakdown, and the sample. Each step is timed, with the time spent inside
`Warehouse.query` (which includes rendering the SQL, about a millisecond) kept apart
from Corral's own compiling.

    >>> preview(audience, schema, warehouse, audiences=ws.audiences,  # doctest: +SKIP
    ...         as_of=datetime(2026, 12, 1), breakdowns=["country"], sample=5).size
    4211

This module holds the entry point, the size and block counts, and the JSON form of a
result; `plan` compiles the audience and times the steps, `dimensions` resolves breakdown
and sample columns, and `breakdowns` and `samples` compute those parts. Their results are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from corral.audiences.breakdowns import (
    MAX_BINS,
    TOP_VALUES,
    Bin,
    Breakdown,
    ValueCount,
    breakdown,
    breakdown_dimension,
)
from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import (
    AudienceCondition,
    AudienceDefinition,
    EventCondition,
    Group,
    PropertyCondition,
    RelationCondition,
    SequenceCondition,
    TraitCondition,
    Window,
)
from corral.audiences.plan import Clock, Plan, Timing, derived
from corral.audiences.samples import REDACTED, Sample, sample_dimensions, sample_members
from corral.schema.resolved import Schema
from corral.sql import render
from corral.sql.build import alias, column, conjunction, disjunction, negation
from corral.warehouse.base import Warehouse

__all__ = [
    "MAX_BINS",
    "REDACTED",
    "TOP_VALUES",
    "Bin",
    "Block",
    "Breakdown",
    "Preview",
    "Sample",
    "Timing",
    "ValueCount",
    "describe",
    "jsonable",
    "preview",
]


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A top-level condition and how many parent rows it selects on its own."""

    index: int
    description: str
    size: int


@dataclass(frozen=True)
class Preview:
    """What a preview found.

    `as_of` is the wall-clock time in `time_zone` that relative windows were measured
    from; `sql` is the members query in the warehouse's dialect.
    """

    audience: str
    as_of: datetime
    time_zone: str
    size: int
    parent_rows: int
    blocks: tuple[Block, ...]
    breakdowns: tuple[Breakdown, ...]
    sample: Sample | None
    sql: str
    dialect: str
    timings: tuple[Timing, ...]

    @property
    def share(self) -> float:
        """The audience's share of all parent rows, from 0 to 1."""
        return self.size / self.parent_rows if self.parent_rows else 0.0

    @property
    def total_ms(self) -> float:
        return sum(t.total_ms for t in self.timings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: dates as ISO text, decimals as numbers."""
        return {
            "audience": self.audience,
            "size": self.size,
            "parent_rows": self.parent_rows,
            "share": self.share,
            "as_of": self.as_of.isoformat(),
            "time_zone": self.time_zone,
            "dialect": self.dialect,
            "sql": self.sql,
            "blocks": [asdict(b) for b in self.blocks],
            "breakdowns": [_breakdown_dict(b) for b in self.breakdowns],
            "sample": _sample_dict(self.sample),
            "timings": [_timing_dict(t) for t in self.timings],
            "total_ms": round(self.total_ms, 2),
        }


# -- entry point -----------------------------------------------------------------------------


def preview(
    audience: AudienceDefinition,
    schema: Schema,
    warehouse: Warehouse,
    *,
    audiences: Mapping[str, AudienceDefinition],
    as_of: datetime,
    time_zone: str = "UTC",
    blocks: bool = True,
    breakdowns: Sequence[str] = (),
    sample: int = 0,
    sample_columns: Sequence[str] = (),
    reveal: bool = False,
) -> Preview:
    """Size, block sizes, breakdowns and a sample of `audience`, computed in `warehouse`.

    `breakdowns` and `sample_columns` name parent columns or traits. Columns marked pii or
    sensitive are redacted in the sample, and refused as breakdowns, unless `reveal`.
    """
    clock = Clock(warehouse)
    with clock.step("compile"):
        compiler = AudienceCompiler(
            schema,
            as_of,
            audiences=audiences,
            time_zone=time_zone,
            source_dialect=warehouse.dialect,
        )
        plan = Plan.build(compiler, audience, with_blocks=blocks)
        # Every name is checked before the first query, so a typo costs no warehouse time.
        by = [breakdown_dimension(plan, name, reveal) for name in breakdowns]
        shown = sample_dimensions(plan, sample_columns) if sample > 0 else []
        sql = render(plan.members(), warehouse.dialect, pretty=True)

    with clock.step("size and blocks" if blocks else "size"):
        size, parent_rows, block_sizes = _count(plan, clock)
    found = [breakdown(plan, clock, dimension) for dimension in by]
    members = sample_members(plan, clock, sample, shown, reveal) if sample > 0 else None

    return Preview(
        audience=audience.name,
        as_of=compiler.as_of,
        time_zone=time_zone,
        size=size,
        parent_rows=parent_rows,
        blocks=tuple(
            Block(i + 1, describe(c), n)
            for i, (c, n) in enumerate(zip(audience.conditions, block_sizes, strict=False))
        ),
        breakdowns=tuple(found),
        sample=members,
        sql=sql,
        dialect=warehouse.dialect,
        timings=tuple(clock.timings),
    )


# -- size and blocks -------------------------------------------------------------------------


# Engines that plan a correlated EXISTS in a SELECT list as well as in a WHERE clause.
_FLAG_DIALECTS = ("duckdb",)


def _count(plan: Plan, clock: Clock) -> tuple[int, int, list[int]]:
    """Size, parent rows and each block's size, in one statement.

    Two forms, chosen by engine from measurements (medians, every demo audience):

    - DuckDB: one scan. Each block's predicate becomes a 0/1 flag in a derived table and
      the size combines the flags as the top-level group does. On the 100k demo: 535 ms
      for all twelve audiences, against 654 ms for the UNION ALL form and 720-855 ms for
      separate COUNT queries; a SUM(CASE WHEN <predicate>) per block plus one for the
      whole audience took 826 ms, as the whole predicate re-runs every block's subqueries.
    - Elsewhere: UNION ALL of one COUNT(*) ... WHERE <predicate> per block. PostgreSQL
      runs an EXISTS in a SELECT list once per parent row, which made the flags 16 times
      slower there (9.9 s against 0.6 s on 3,000 users); in a WHERE clause every engine
      plans a semi-join, and Redshift and Snowflake accept correlated EXISTS only there.
    """
    if plan.compiler.source_dialect in _FLAG_DIALECTS:
        return _count_with_flags(plan, clock)
    return _count_with_union(plan, clock)


def _count_with_flags(plan: Plan, clock: Clock) -> tuple[int, int, list[int]]:
    # Flags are integers, not booleans, so the form stays valid where booleans are not.
    flags_of = list(plan.blocks) or [plan.predicate]
    x = plan.compiler.alias("x")
    inner = exp.select(*[alias(_as_flag(p.copy()), f"__f{i}") for i, p in enumerate(flags_of)])
    inner = plan.from_parent(inner)
    flags: list[exp.Expr] = [
        exp.EQ(this=column(f"__f{i}", x), expression=exp.Literal.number(1))
        for i in range(len(flags_of))
    ]
    member = _combine(plan.combine, flags) if plan.blocks else flags[0]

    outer = exp.select(
        alias(exp.Count(this=exp.Star()), "__rows"),
        alias(_sum_of(member), "__size"),
        *[alias(_sum_of(f.copy()), f"__b{i}") for i, f in enumerate(flags)],
    ).from_(derived(inner, x))
    row = clock.query(outer).to_pylist()[0]

    sizes = [int(row[f"__b{i}"] or 0) for i in range(len(flags))] if plan.blocks else []
    return int(row["__size"] or 0), int(row["__rows"] or 0), sizes


def _count_with_union(plan: Plan, clock: Clock) -> tuple[int, int, list[int]]:
    # Branch -1 counts every parent row, 0 the members, i the rows block i selects.
    predicates: list[exp.Expr | None] = [None, plan.predicate, *plan.blocks]
    branches = []
    for index, predicate in enumerate(predicates, start=-1):
        branch = exp.select(
            alias(exp.Literal.number(index), "__branch"),
            alias(exp.Count(this=exp.Star()), "__n"),
        )
        if predicate is None:
            branches.append(plan.compiler.from_parent(branch, plan.alias, ()))
        else:
            branches.append(plan.from_parent(branch).where(predicate.copy()))
    union: exp.Query = branches[0]
    for branch in branches[1:]:
        union = exp.union(union, branch, distinct=False)

    counts = {int(r["__branch"]): int(r["__n"]) for r in clock.query(union).to_pylist()}
    sizes = [counts.get(i + 1, 0) for i in range(len(plan.blocks))]
    return counts.get(0, 0), counts.get(-1, 0), sizes


def _as_flag(predicate: exp.Expr) -> exp.Expr:
    return exp.Case(
        ifs=[exp.If(this=predicate, true=exp.Literal.number(1))], default=exp.Literal.number(0)
    )


def _sum_of(predicate: exp.Expr) -> exp.Expr:
    return exp.Sum(this=_as_flag(predicate))


def _combine(root: Group, parts: list[exp.Expr]) -> exp.Expr:
    """The top-level group over its blocks, exactly as the compiler combines them."""
    combined = conjunction(parts) if root.match == "all" else disjunction(parts)
    if len(parts) > 1:
        combined = exp.paren(combined)
    return negation(combined) if root.negate else combined


# -- describing blocks -----------------------------------------------------------------------


def describe(condition: Any) -> str:
    """A short one-line description of a condition, for block tables."""
    if isinstance(condition, PropertyCondition):
        return f"{condition.column} {_comparison(condition.operator, condition.value)}"
    if isinstance(condition, TraitCondition):
        return f"trait {condition.trait} {_comparison(condition.operator, condition.value)}"
    if isinstance(condition, AudienceCondition):
        verb = "in" if condition.member else "not in"
        return f"{verb} audience {condition.audience}"
    if isinstance(condition, RelationCondition | EventCondition):
        return _describe_rows(condition)
    if isinstance(condition, SequenceCondition):
        steps = [
            (s.event or "event") if s.performed else f"no {s.event or 'event'}"
            for s in condition.steps
        ]
        return "sequence " + " → ".join(steps) + _window(condition.within)
    if isinstance(condition, Group):
        inner = [describe(c) for c in condition.conditions]
        text = ("all of: " if condition.match == "all" else "any of: ") + "; ".join(inner)
        if len(inner) == 1:
            text = inner[0]
        return f"not ({text})" if condition.negate else text
    return type(condition).__name__


def _describe_rows(condition: RelationCondition | EventCondition) -> str:
    if isinstance(condition, EventCondition):
        thing = condition.event or condition.model or "event"
        verb = "performed" if condition.performed else "did not perform"
    else:
        thing = condition.relation
        verb = "has" if condition.has else "has no"
    where = condition.where
    filtered = f" where {describe(where)}" if where is not None and where.conditions else ""
    if condition.operator is None:
        return f"{verb} {thing}{filtered}{_window(condition.within)}"
    aggregate = condition.aggregate
    measure = (
        "count"
        if aggregate is None or aggregate.function == "count"
        else (f"{aggregate.function}({aggregate.column})")
    )
    comparison = _comparison(condition.operator, condition.value)
    return f"{thing}{filtered}: {measure} {comparison}{_window(condition.within)}"


# Operators that read better with their value inside the phrase.
_PHRASES = {
    "within_last": "in the last {}",
    "within_next": "in the next {}",
    "more_than_ago": "more than {} ago",
    "anniversary_within_next": "anniversary in the next {} days",
    "between": "between {} and {}",
}


def _comparison(operator: str, value: Any) -> str:
    if value is None:
        return operator.replace("_", " ")
    if isinstance(value, dict):
        value = f"{value.get('amount')} {value.get('unit')}"
    if operator in _PHRASES:
        values = value if isinstance(value, list | tuple) else [value]
        return _PHRASES[operator].format(*values)
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return f"{operator.replace('_', ' ')} {value}"


def _window(window: Window | None) -> str:
    if window is None:
        return ""
    if window.kind in ("last", "next"):
        return f" in the {window.kind} {window.duration}"
    if window.kind == "period":
        return f" in {(window.period or '').replace('_', ' ')}"
    if window.kind == "between":
        return f" between {window.start} and {window.end}"
    return f" {window.kind} {window.start or window.end}"


# -- JSON ------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: dates as ISO text, decimals as numbers."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _breakdown_dict(breakdown: Breakdown) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": breakdown.name,
        "source": breakdown.source,
        "type": breakdown.value_type,
        "kind": breakdown.kind,
        "nulls": breakdown.nulls,
    }
    if breakdown.kind == "top_values":
        data["values"] = [{"value": jsonable(v.value), "count": v.count} for v in breakdown.values]
        data["other"] = breakdown.other
    else:
        data["unit"] = breakdown.unit
        data["bins"] = [
            {"low": jsonable(b.low), "high": jsonable(b.high), "count": b.count}
            for b in breakdown.bins
        ]
    return data


def _sample_dict(sample: Sample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    rows = [
        dict(zip(sample.columns, (jsonable(v) for v in row), strict=True)) for row in sample.rows
    ]
    return {"columns": list(sample.columns), "rows": rows, "redacted": list(sample.redacted)}


def _timing_dict(timing: Timing) -> dict[str, Any]:
    return {
        "step": timing.step,
        "total_ms": round(timing.total_ms, 2),
        "warehouse_ms": round(timing.warehouse_ms, 2),
        "queued_ms": round(timing.queued_ms, 2),
        "corral_ms": round(timing.corral_ms, 2),
    }
