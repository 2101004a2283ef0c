"""Breakdowns of an audience's members by a parent column or a trait.

Numbers, dates and timestamps get a histogram of equal-width bins (round numbers, or
calendar units); other values get their ten most frequent values. Each is counted in the
warehouse, so at most a dozen rows come back per breakdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlglot import exp

from corral.audiences import timewindows as tw
from corral.audiences.compiler import VALUE
from corral.audiences.dimensions import PRIVATE, Dimension, dimension_named
from corral.audiences.plan import Clock, Plan, derived
from corral.errors import DefinitionError
from corral.schema.model import ColumnType
from corral.sql.build import alias, column, literal

TOP_VALUES = 10
# A histogram has at most this many bins; the unit or step is chosen to stay under it.
MAX_BINS = 16
_NUMBERS = ("integer", "decimal", "float")
_TIMES = ("date", "timestamp")


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


def breakdown_dimension(plan: Plan, name: str, reveal: bool) -> Dimension:
    """The column or trait called `name`, refused if private unless `reveal`."""
    dimension = dimension_named(plan, name, where=f"breakdown {name}")
    if dimension.privacy in PRIVATE and not reveal:
        raise DefinitionError(
            f"{dimension.source} {dimension.name!r} is {dimension.privacy}, so a "
            "breakdown would show its values",
            where=f"breakdown {name}",
            hint="break down by another column, or reveal private values "
            "(reveal=True, --reveal) if you may see them",
        )
    return dimension


def breakdown(plan: Plan, clock: Clock, dimension: Dimension) -> Breakdown:
    """Members by `dimension`: a histogram for numbers and times, top values otherwise."""
    with clock.step(f"breakdown {dimension.name}"):
        if dimension.value_type in _NUMBERS or dimension.value_type in _TIMES:
            return _histogram(plan, clock, dimension)
        return _top_values(plan, clock, dimension)


def _values(plan: Plan, dimension: Dimension) -> exp.Subquery:
    """SELECT <value> AS "__value" of every member, as a derived table aliased `d`.

    The compiler's aliases all end in a number, so `d` (and `c` below) never clash.
    """
    select = exp.select(alias(dimension.value.copy(), VALUE))
    query = plan.members_from(select, dimension.joins)
    return derived(query, "d")


def _top_values(plan: Plan, clock: Clock, dimension: Dimension) -> Breakdown:
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
        .from_(derived(counted, "c"))
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


def _histogram(plan: Plan, clock: Clock, dimension: Dimension) -> Breakdown:
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


def _bin_counts(plan: Plan, clock: Clock, dimension: Dimension, edges: list[Any]) -> dict[int, int]:
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


# -- bin edges ------------------------------------------------------------------------------


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
