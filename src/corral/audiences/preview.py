"""Previews of an audience on a warehouse: size, block sizes, breakdowns, a sample.

Everything is computed in the warehouse; Corral fetches only counts, at most a dozen
rows per breakdown, and the sample. Each step is timed, with the time spent inside
`Warehouse.query` (which includes rendering the SQL, about a millisecond) kept apart
from Corral's own compiling.

    >>> preview(audience, schema, warehouse, audiences=ws.audiences,  # doctest: +SKIP
    ...         as_of=datetime(2026, 12, 1), breakdowns=["country"], sample=5).size
    4211
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
from sqlglot import exp

from corral.audiences import timewindows as tw
from corral.audiences.compiler import KEY, VALUE, AudienceCompiler
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
from corral.errors import DefinitionError, UnknownReferenceError
from corral.schema.model import ColumnType, Privacy, TraitDefinition
from corral.schema.resolved import Schema
from corral.sql import parse_one, render
from corral.sql.build import alias, column, conjunction, disjunction, literal, negation
from corral.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

REDACTED = "••••"
TOP_VALUES = 10
# A histogram has at most this many bins; the unit or step is chosen to stay under it.
MAX_BINS = 16
_PRIVATE: tuple[Privacy, ...] = ("pii", "sensitive")
_NUMBERS = ("integer", "decimal", "float")
_TIMES = ("date", "timestamp")


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """One step of a preview: its wall time, and the part spent in the warehouse."""

    step: str
    total_ms: float
    warehouse_ms: float

    @property
    def corral_ms(self) -> float:
        return max(0.0, self.total_ms - self.warehouse_ms)


@dataclass(frozen=True)
class Block:
    """A top-level condition and how many parent rows it selects on its own."""

    index: int
    description: str
    size: int


@dataclass(frozen=True)
class ValueCount:
    value: Any
    count: int


@dataclass(frozen=True)
class Bin:
    """Members whose value is at least `low` and below `high`."""

    low: Any
    high: Any
    count: int


@dataclass(frozen=True)
class Breakdown:
    """Members by a parent column or a trait: top values, or a histogram of bins.

    Counts add up to the audience's size: `values` + `other` + `nulls`, or `bins` + `nulls`.
    `unit` names a histogram's bin width (`10`, `month`, `5 years`).
    """

    name: str
    source: Literal["column", "trait"]
    value_type: ColumnType
    kind: Literal["top_values", "histogram"]
    values: tuple[ValueCount, ...] = ()
    other: int = 0
    bins: tuple[Bin, ...] = ()
    unit: str | None = None
    nulls: int = 0

    @property
    def total(self) -> int:
        counted = self.values if self.kind == "top_values" else self.bins
        return sum(c.count for c in counted) + self.other + self.nulls


@dataclass(frozen=True)
class Sample:
    """Some members in primary key order; `redacted` columns show REDACTED."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    redacted: tuple[str, ...] = ()


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
    clock = _Clock(warehouse)
    with clock.step("compile"):
        compiler = AudienceCompiler(
            schema,
            as_of,
            audiences=audiences,
            time_zone=time_zone,
            source_dialect=warehouse.dialect,
        )
        plan = _Plan.build(compiler, audience, with_blocks=blocks)
        # Every name is checked before the first query, so a typo costs no warehouse time.
        by = [_breakdown_dimension(plan, name, reveal) for name in breakdowns]
        shown = _sample_dimensions(plan, sample_columns) if sample > 0 else []
        sql = render(plan.members(), warehouse.dialect, pretty=True)

    with clock.step("size and blocks" if blocks else "size"):
        size, parent_rows, block_sizes = _count(plan, clock)
    found = [_breakdown(plan, clock, dimension) for dimension in by]
    members = _sample(plan, clock, sample, shown, reveal) if sample > 0 else None

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


# -- the compiled audience -------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The audience compiled once: its predicate on parent rows aliased `alias`, and blocks."""

    compiler: AudienceCompiler
    schema: Schema
    alias: str
    predicate: exp.Expr
    blocks: tuple[exp.Expr, ...]
    combine: Group

    @classmethod
    def build(
        cls, compiler: AudienceCompiler, audience: AudienceDefinition, *, with_blocks: bool
    ) -> _Plan:
        alias_ = compiler.alias("p")
        predicate = compiler.audience_predicate(audience, alias_)
        blocks = compiler.block_predicates(audience, alias_) if with_blocks else []
        return cls(compiler, compiler.schema, alias_, predicate, tuple(blocks), audience.root)

    def source(self) -> exp.Expr:
        return self.compiler.source(self.schema.parent, self.alias)

    def members(self) -> exp.Select:
        """The primary key of every member: the same query as `AudienceCompiler.members`."""
        key = column(self.schema.parent.primary_key, self.alias)
        return exp.select(key).from_(self.source(), copy=False).where(self.predicate.copy())

    def members_from(self, select: exp.Select, joins: Sequence[_Join] = ()) -> exp.Select:
        """`select` FROM the parent, LEFT JOIN each of `joins`, WHERE the row is a member."""
        query = select.from_(self.source())
        for join in joins:
            query = query.join(join.source, on=join.on, join_type="LEFT")
        return query.where(self.predicate.copy(), copy=False)


@dataclass(frozen=True)
class _Join:
    source: exp.Expr
    on: exp.Expr


class _Clock:
    """Times the steps of a preview, and the warehouse's share of each."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.timings: list[Timing] = []
        self._in_warehouse = 0.0

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started, self._in_warehouse = time.perf_counter(), 0.0
        yield
        total = (time.perf_counter() - started) * 1000
        self.timings.append(Timing(name, total, self._in_warehouse * 1000))
        logger.debug(
            "preview %s: %.1f ms (warehouse %.1f ms)", name, total, self._in_warehouse * 1000
        )

    def query(self, statement: exp.Expr) -> pa.Table:
        started = time.perf_counter()
        try:
            return self.warehouse.query(statement)
        finally:
            self._in_warehouse += time.perf_counter() - started


# -- size and blocks -------------------------------------------------------------------------


# Engines that plan a correlated EXISTS in a SELECT list as well as in a WHERE clause.
_FLAG_DIALECTS = ("duckdb",)


def _count(plan: _Plan, clock: _Clock) -> tuple[int, int, list[int]]:
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


def _count_with_flags(plan: _Plan, clock: _Clock) -> tuple[int, int, list[int]]:
    # Flags are integers, not booleans, so the form stays valid where booleans are not.
    flags_of = list(plan.blocks) or [plan.predicate]
    x = plan.compiler.alias("x")
    inner = exp.select(*[alias(_as_flag(p.copy()), f"__f{i}") for i, p in enumerate(flags_of)])
    inner = inner.from_(plan.source())
    flags: list[exp.Expr] = [
        exp.EQ(this=column(f"__f{i}", x), expression=exp.Literal.number(1))
        for i in range(len(flags_of))
    ]
    member = _combine(plan.combine, flags) if plan.blocks else flags[0]

    outer = exp.select(
        alias(exp.Count(this=exp.Star()), "__rows"),
        alias(_sum_of(member), "__size"),
        *[alias(_sum_of(f.copy()), f"__b{i}") for i, f in enumerate(flags)],
    ).from_(_derived(inner, x))
    row = clock.query(outer).to_pylist()[0]

    sizes = [int(row[f"__b{i}"] or 0) for i in range(len(flags))] if plan.blocks else []
    return int(row["__size"] or 0), int(row["__rows"] or 0), sizes


def _count_with_union(plan: _Plan, clock: _Clock) -> tuple[int, int, list[int]]:
    # Branch -1 counts every parent row, 0 the members, i the rows block i selects.
    predicates: list[exp.Expr | None] = [None, plan.predicate, *plan.blocks]
    branches = []
    for index, predicate in enumerate(predicates, start=-1):
        branch = exp.select(
            alias(exp.Literal.number(index), "__branch"),
            alias(exp.Count(this=exp.Star()), "__n"),
        ).from_(plan.source())
        branches.append(branch if predicate is None else branch.where(predicate.copy()))
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


# -- what a breakdown or a sample column is --------------------------------------------------


@dataclass(frozen=True)
class _Dimension:
    """A value per parent row: a column, or a trait with the joins it needs."""

    name: str
    source: Literal["column", "trait"]
    value: exp.Expr
    value_type: ColumnType
    privacy: Privacy
    joins: tuple[_Join, ...] = ()


def _dimension(plan: _Plan, name: str, *, where: str) -> _Dimension:
    """The parent column (by name or alias) or trait called `name`."""
    parent = plan.schema.parent
    column_name = _column_named(plan.schema, name)
    if column_name is not None:
        settings = parent.definition.settings(column_name)
        if settings.hidden:
            raise DefinitionError(
                f"column {column_name!r} of {parent.name!r} is hidden",
                where=where,
                hint="pick a visible column, or un-hide it in schema.yaml",
            )
        value_type = parent.column_type(column_name, where=where)
        return _Dimension(
            column_name, "column", column(column_name, plan.alias), value_type, settings.privacy
        )
    if name in plan.schema.traits:
        return _trait_dimension(plan, plan.schema.traits[name], where)
    raise UnknownReferenceError(
        f"{name!r} is neither a column of {parent.name!r} nor a trait",
        where=where,
        hint=_known_dimensions(plan.schema),
    )


def _column_named(schema: Schema, name: str) -> str | None:
    parent = schema.parent
    if parent.has_column(name):
        return name
    for column_name, settings in parent.definition.columns.items():
        if settings.alias and settings.alias.lower() == name.lower():
            return column_name
    return None


def _known_dimensions(schema: Schema) -> str:
    definition = schema.parent.definition
    columns = [c for c in schema.parent.column_types if not definition.settings(c).hidden]
    traits = sorted(schema.traits) or ["(none)"]
    return f"columns are: {', '.join(sorted(columns))}; traits are: {', '.join(traits)}"


def _trait_dimension(plan: _Plan, trait: TraitDefinition, where: str) -> _Dimension:
    here = f"{where} > trait {trait.name}"
    traits = plan.compiler.traits
    if trait.kind == "formula":
        formula = traits.formula(trait, plan.alias, here)
        value_type = traits.value_type(trait, here)
        return _Dimension(trait.name, "trait", formula, value_type, _trait_privacy(plan, trait))
    if trait.aggregate == "list":
        raise DefinitionError(
            f"trait {trait.name!r} is a list, and a member may hold many of its values",
            where=here,
            hint="break down by a single-valued trait, such as a most_frequent one",
        )

    values = traits.values(trait, here)
    t = plan.compiler.alias("t")
    derived = _derived(values.query, t)
    on = conjunction(
        [
            exp.EQ(this=column(f"{KEY}{i}", t), expression=column(key, plan.alias))
            for i, key in enumerate(values.source_keys)
        ]
    )
    value: exp.Expr = column(VALUE, t)
    if values.empty is not None:
        value = exp.Coalesce(this=value, expressions=[exp.Literal.number(values.empty)])
    privacy = _trait_privacy(plan, trait)
    return _Dimension(trait.name, "trait", value, values.value_type, privacy, (_Join(derived, on),))


def _trait_privacy(plan: _Plan, trait: TraitDefinition) -> Privacy:
    """A trait that shows column values (first, max, a formula...) is as private as they."""
    if trait.kind == "aggregate" and trait.aggregate in ("count", "count_distinct", "average"):
        return "public"
    schema, dialect = plan.schema, plan.compiler.source_dialect
    if trait.kind == "formula":
        model, text = schema.parent, trait.formula or ""
    else:
        assert trait.relation is not None
        relation = schema.relation(schema.parent.name, trait.relation, where="trait")
        model, text = schema.model(relation.target), trait.sql or ""
    names = {trait.column} if trait.column else set()
    names |= {c.name for c in _columns_in(text, dialect)}
    levels = [model.definition.settings(n).privacy for n in names if n]
    return next((p for p in ("sensitive", "pii", "internal") if p in levels), "public")


def _columns_in(text: str, dialect: str) -> list[exp.Column]:
    return list(parse_one(text, dialect).find_all(exp.Column)) if text else []


# -- breakdowns ------------------------------------------------------------------------------


def _breakdown_dimension(plan: _Plan, name: str, reveal: bool) -> _Dimension:
    dimension = _dimension(plan, name, where=f"breakdown {name}")
    if dimension.privacy in _PRIVATE and not reveal:
        raise DefinitionError(
            f"{dimension.source} {dimension.name!r} is {dimension.privacy}, so a "
            "breakdown would show its values",
            where=f"breakdown {name}",
            hint="break down by another column, or reveal private values "
            "(reveal=True, --reveal) if you may see them",
        )
    return dimension


def _breakdown(plan: _Plan, clock: _Clock, dimension: _Dimension) -> Breakdown:
    with clock.step(f"breakdown {dimension.name}"):
        if dimension.value_type in _NUMBERS or dimension.value_type in _TIMES:
            return _histogram(plan, clock, dimension)
        return _top_values(plan, clock, dimension)


def _derived(query: exp.Query, name: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(name, True)))


def _values(plan: _Plan, dimension: _Dimension) -> exp.Subquery:
    """SELECT <value> AS "__value" of every member, as a derived table aliased `d`.

    The compiler's aliases all end in a number, so `d` (and `c` below) never clash.
    """
    select = exp.select(alias(dimension.value.copy(), VALUE))
    query = plan.members_from(select, dimension.joins)
    return _derived(query, "d")


def _top_values(plan: _Plan, clock: _Clock, dimension: _Dimension) -> Breakdown:
    """The ten most frequent values, then everything else, then nulls, in one query.

    Values are ranked by count (nulls last, ties by value); ranks past ten fold into one
    row, so at most twelve rows come back whatever the column's cardinality.
    """
    value = column(VALUE, "d")
    is_null = exp.Is(this=value.copy(), expression=exp.null())
    nulls_last = exp.Case(
        ifs=[exp.If(this=is_null, true=exp.Literal.number(1))], default=exp.Literal.number(0)
    )
    rank = exp.Window(
        this=exp.RowNumber(),
        order=exp.Order(
            expressions=[
                exp.Ordered(this=nulls_last),
                exp.Ordered(this=exp.Count(this=exp.Star()), desc=True),
                exp.Ordered(this=value.copy(), nulls_first=False),
            ]
        ),
    )
    counted = (
        exp.select(
            alias(value.copy(), VALUE),
            alias(exp.Count(this=exp.Star()), "__n"),
            alias(rank, "__rank"),
        )
        .from_(_values(plan, dimension))
        .group_by(value.copy())
    )

    ranked = column("__rank", "c")
    on_top = exp.LTE(this=ranked, expression=exp.Literal.number(TOP_VALUES))
    bucket = exp.Case(
        ifs=[
            exp.If(
                this=exp.Is(this=column(VALUE, "c"), expression=exp.null()), true=literal("null")
            ),
            exp.If(this=on_top.copy(), true=literal("top")),
        ],
        default=literal("other"),
    )
    kept = exp.Case(ifs=[exp.If(this=on_top.copy(), true=column(VALUE, "c"))])
    folded = (
        exp.select(
            alias(bucket, "__bucket"),
            alias(kept, VALUE),
            alias(exp.Sum(this=column("__n", "c")), "__n"),
            alias(exp.Min(this=column("__rank", "c")), "__rank"),
        )
        .from_(_derived(counted, "c"))
        .group_by(bucket.copy(), kept.copy())
    )
    rows = clock.query(folded.order_by(column("__rank"))).to_pylist()

    top = tuple(ValueCount(r[VALUE], int(r["__n"])) for r in rows if r["__bucket"] == "top")
    return Breakdown(
        dimension.name,
        dimension.source,
        dimension.value_type,
        "top_values",
        values=top,
        other=sum(int(r["__n"]) for r in rows if r["__bucket"] == "other"),
        nulls=sum(int(r["__n"]) for r in rows if r["__bucket"] == "null"),
    )


def _histogram(plan: _Plan, clock: _Clock, dimension: _Dimension) -> Breakdown:
    """Equal-width bins: min and max from the warehouse first, then one count per bin.

    Bin edges are chosen here (round numbers; calendar units for dates) and sent as
    literals, so bucketing is plain comparisons that every dialect runs alike.
    """
    value = column(VALUE, "d")
    extent = exp.select(
        alias(exp.Min(this=value.copy()), "__low"),
        alias(exp.Max(this=value.copy()), "__high"),
        alias(exp.Count(this=exp.Star()), "__n"),
        alias(exp.Count(this=value.copy()), "__values"),
    ).from_(_values(plan, dimension))
    row = clock.query(extent).to_pylist()[0]
    low, high = row["__low"], row["__high"]
    nulls = int(row["__n"]) - int(row["__values"])
    base = Breakdown(
        dimension.name, dimension.source, dimension.value_type, "histogram", nulls=nulls
    )
    if low is None:
        return base

    if dimension.value_type in _TIMES:
        edges, unit = _time_edges(low, high, with_hours=dimension.value_type == "timestamp")
    else:
        edges, unit = _number_edges(low, high, integer=dimension.value_type == "integer")
    # One bin holds every value: the first query has counted them already.
    single = len(edges) == 2
    counts = {0: int(row["__values"])} if single else _bin_counts(plan, clock, dimension, edges)
    bins = tuple(Bin(edges[i], edges[i + 1], counts.get(i, 0)) for i in range(len(edges) - 1))
    return replace(base, bins=bins, unit=unit)


def _bin_counts(
    plan: _Plan, clock: _Clock, dimension: _Dimension, edges: list[Any]
) -> dict[int, int]:
    """Members per bin: CASE WHEN value < edge1 THEN 0 WHEN value < edge2 THEN 1 ... END."""
    value = column(VALUE, "d")
    inner = [literal(_literal_value(e, dimension.value_type)) for e in edges[1:-1]]
    bin_index = exp.Case(
        ifs=[
            exp.If(this=exp.LT(this=value.copy(), expression=edge), true=exp.Literal.number(i))
            for i, edge in enumerate(inner)
        ],
        default=exp.Literal.number(len(edges) - 2),
    )
    not_null = exp.not_(exp.Is(this=value.copy(), expression=exp.null()))
    counted = exp.select(alias(bin_index, "__bin"), alias(exp.Count(this=exp.Star()), "__n"))
    counted = counted.from_(_values(plan, dimension)).where(not_null).group_by(bin_index.copy())
    return {int(r["__bin"]): int(r["__n"]) for r in clock.query(counted).to_pylist()}


def _literal_value(edge: Any, value_type: ColumnType) -> Any:
    if value_type == "date" and isinstance(edge, datetime):
        return edge.date()
    if value_type == "timestamp" and type(edge) is date:
        return tw.midnight(edge)
    return edge


def _number_edges(low: Any, high: Any, *, integer: bool) -> tuple[list[Any], str]:
    """Round edges from below `low` to above `high`, about ten bins of a 1-2-5 width."""
    low_d, high_d = Decimal(str(low)), Decimal(str(high))
    step = _nice_step((high_d - low_d) / 10)
    if integer:
        step = max(Decimal(1), step.to_integral_value(rounding="ROUND_CEILING"))
    start = (low_d / step).to_integral_value(rounding="ROUND_FLOOR") * step
    count = int(((high_d - start) / step).to_integral_value(rounding="ROUND_FLOOR")) + 1
    edges = [start + step * i for i in range(count + 1)]
    if integer:
        return [int(e) for e in edges], str(int(step))
    return [_plain(e) for e in edges], str(_plain(step))


def _nice_step(raw: Decimal) -> Decimal:
    """The smallest of 1, 2, 5 times a power of ten at least `raw` (1 for a zero range)."""
    if raw <= 0:
        return Decimal(1)
    power = Decimal(10) ** math.floor(math.log10(raw))
    return next(power * factor for factor in (1, 2, 5, 10) if power * factor >= raw)


def _plain(value: Decimal) -> Decimal:
    """A decimal without a trailing exponent, so literals read like 2500 rather than 2.5E+3."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


# Calendar units for time histograms, finest first: (name, months, timedelta).
_TIME_UNITS: tuple[tuple[str, int, timedelta], ...] = (
    ("hour", 0, timedelta(hours=1)),
    ("day", 0, timedelta(days=1)),
    ("week", 0, timedelta(weeks=1)),
    ("month", 1, timedelta()),
    ("quarter", 3, timedelta()),
    ("year", 12, timedelta()),
    ("5 years", 60, timedelta()),
    ("10 years", 120, timedelta()),
    ("25 years", 300, timedelta()),
    ("100 years", 1200, timedelta()),
)


def _time_edges(low: Any, high: Any, *, with_hours: bool) -> tuple[list[Any], str]:
    """Edges of the finest calendar unit that covers low..high in at most MAX_BINS bins."""
    first, last = tw.as_datetime(_naive(low)), tw.as_datetime(_naive(high))
    units = _TIME_UNITS if with_hours else _TIME_UNITS[1:]
    for name, months, delta in units:
        coarsest = name == units[-1][0]
        edges = _calendar_edges(first, last, months, delta, capped=not coarsest)
        if len(edges) - 1 <= MAX_BINS or coarsest:
            break
    if not with_hours:
        return [e.date() for e in edges], name
    return edges, name


def _calendar_edges(
    first: datetime, last: datetime, months: int, delta: timedelta, *, capped: bool
) -> list[Any]:
    """Unit edges from the unit holding `first` past `last`; a capped list stops early."""
    edges = [_truncate(first, months, delta)]
    while edges[-1] <= last and not (capped and len(edges) > MAX_BINS + 1):
        edges.append(tw.add_months(edges[-1], months) if months else edges[-1] + delta)
    return edges


def _truncate(moment: datetime, months: int, delta: timedelta) -> datetime:
    if delta == timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    day = tw.midnight(moment.date())
    if delta == timedelta(weeks=1):
        return day - timedelta(days=day.weekday())
    if months == 0:
        return day
    index = moment.year * 12 + moment.month - 1
    index -= index % months
    return datetime(index // 12, index % 12 + 1, 1)


def _naive(value: date | datetime) -> date | datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


# -- sample ----------------------------------------------------------------------------------


def _sample_dimensions(plan: _Plan, chosen: Sequence[str]) -> list[_Dimension]:
    """The primary key, the visible label columns, then the chosen columns or traits."""
    parent = plan.schema.parent
    definition = parent.definition
    labels = [c for c in definition.label_columns if not definition.settings(c).hidden]
    names = list(dict.fromkeys([parent.primary_key, *labels, *chosen]))
    return [_dimension(plan, n, where=f"sample column {n}") for n in names]


def _sample(
    plan: _Plan, clock: _Clock, limit: int, dimensions: Sequence[_Dimension], reveal: bool
) -> Sample:
    """The first `limit` members by primary key; private values never leave the warehouse."""
    with clock.step("sample"):
        redacted = [d.name for d in dimensions if d.privacy in _PRIVATE and not reveal]
        selected = [
            alias(literal(REDACTED) if d.name in redacted else d.value.copy(), d.name)
            for d in dimensions
        ]
        joins = [j for d in dimensions if d.name not in redacted for j in d.joins]
        query = plan.members_from(exp.select(*selected), joins)
        key = column(plan.schema.parent.primary_key, plan.alias)
        query = query.order_by(key, copy=False).limit(limit, copy=False)
        rows = clock.query(query).to_pylist()
        return Sample(
            columns=tuple(d.name for d in dimensions),
            rows=tuple(tuple(row.values()) for row in rows),
            redacted=tuple(redacted),
        )


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
        "corral_ms": round(timing.corral_ms, 2),
    }
