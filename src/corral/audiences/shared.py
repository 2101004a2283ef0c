"""Aggregates over one relation path, computed once per audience and shared by its conditions.

Without sharing, every count, sum or other aggregate in an audience groups the related
model on its own: VIPs grouped 1.5M purchases twice, Win-back three times. Here each
relation path from the parent (the same hops) with two or more distinct aggregates gets
one grouped derived table of conditional aggregates, LEFT JOINed once to the parent row:

    SELECT r.user_id AS __key0,
           COUNT(*) AS __v0,
           SUM(CASE WHEN <the condition's filters> THEN r.amount END) AS __v1
    FROM purchases AS r WHERE <filters every aggregate has> GROUP BY r.user_id

and each condition becomes a predicate on its column, `COALESCE`d to the value over no
rows (0 for counts and sums), so parents without related rows compare as the semantics
say. See `docs/decisions/0005-shared-aggregates.md`.

The compiler finds the aggregates in a first pass over the audience, then compiles it
again with the shared tables known (`AudienceCompiler.shared`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from corral.schema.model import ColumnType
from corral.schema.resolved import Hop
from corral.sql.build import column, conjunction, disjunction

if TYPE_CHECKING:
    from corral.audiences.compiler import Rows

KEY = "__key"
# Aggregate functions that have a conditional form here (see `_conditional`).
SHAREABLE = ("count", "count_distinct", "sum", "average", "min", "max")


@dataclass(frozen=True)
class Join:
    """A table LEFT JOINed to the parent row: the shared aggregates of one relation path."""

    source: exp.Expr
    on: exp.Expr


@dataclass(frozen=True)
class Measure:
    """One aggregate over the rows of a path that pass `filters`, as column `name`."""

    name: str
    function: str
    value: exp.Expr | None
    filters: tuple[exp.Expr, ...]
    value_type: ColumnType
    empty: int | None


@dataclass
class SharedPath:
    """The related rows of one path (built once, so filters render alike) and their measures."""

    rows: Rows
    name: str
    measures: dict[tuple[str, ...], Measure] = field(default_factory=dict)

    def measure(
        self,
        function: str,
        value: exp.Expr | None,
        filters: list[exp.Expr],
        value_type: ColumnType,
        empty: int | None,
        *,
        register: bool,
    ) -> Measure | None:
        """The measure for this aggregate; registered on first sight when `register`."""
        key = (function, value.sql() if value is not None else "*", *[f.sql() for f in filters])
        if key not in self.measures and register:
            name = f"__v{len(self.measures)}"
            self.measures[key] = Measure(name, function, value, tuple(filters), value_type, empty)
        return self.measures.get(key)

    def join(self, parent_alias: str) -> Join:
        """The grouped derived table of every measure, and its join to the parent row."""
        measures = list(self.measures.values())
        common = _common_filters(measures)
        rest = [[f for f in m.filters if f.sql() not in common] for m in measures]
        keys = self.rows.keys
        selected = [exp.alias_(k.copy(), f"{KEY}{i}", quoted=True) for i, k in enumerate(keys)]
        selected += [
            exp.alias_(_conditional(m, r), m.name, quoted=True)
            for m, r in zip(measures, rest, strict=True)
        ]
        query = self.rows.select.select(*selected, append=False)
        where = [f.copy() for f in measures[0].filters if f.sql() in common]
        if all(rest):
            # No measure reads a row that fails all of their filters: skip such rows early.
            where.append(exp.paren(disjunction([conjunction([f.copy() for f in r]) for r in rest])))
        if where:
            query = query.where(conjunction(where))
        query = query.group_by(*[k.copy() for k in keys])

        table = exp.Subquery(
            this=query, alias=exp.TableAlias(this=exp.to_identifier(self.name, True))
        )
        on = conjunction([
            exp.EQ(this=column(f"{KEY}{i}", self.name), expression=column(s, parent_alias))
            for i, s in enumerate(self.rows.source_keys)
        ])  # fmt: skip
        return Join(table, on)

    def value(self, measure: Measure) -> exp.Expr:
        """A measure's value for the parent row; a parent without rows gets the empty value."""
        value: exp.Expr = column(measure.name, self.name)
        if measure.empty is None:
            return value
        return exp.Coalesce(this=value, expressions=[exp.Literal.number(measure.empty)])


@dataclass
class Sharing:
    """The shared paths of one audience compiled on the parent row aliased `alias`.

    In the first pass (`collecting`) measures are only registered; afterwards a path with
    two or more measures is shared, and its conditions read the joined table.
    """

    alias: str
    paths: dict[tuple[Hop, ...], SharedPath] = field(default_factory=dict)
    collecting: bool = True

    def is_shared(self, path: SharedPath) -> bool:
        return not self.collecting and len(path.measures) >= 2

    def joins(self) -> tuple[Join, ...]:
        return tuple(p.join(self.alias) for p in self.paths.values() if self.is_shared(p))


def has_subquery(filters: list[exp.Expr]) -> bool:
    """Whether a filter holds a subquery, which some engines refuse inside an aggregate."""
    return any(f.find(exp.Query, exp.Exists, exp.Subquery) is not None for f in filters)


def _common_filters(measures: list[Measure]) -> set[str]:
    """Filters (as SQL text) that every measure applies: they go to the WHERE clause."""
    texts = [{f.sql() for f in m.filters} for m in measures]
    return set.intersection(*texts) if texts else set()


def _conditional(measure: Measure, filters: list[exp.Expr]) -> exp.Expr:
    """The measure's aggregate over the rows passing `filters` (all rows for none)."""
    value = measure.value.copy() if measure.value is not None else exp.Literal.number(1)
    if filters:
        value = exp.Case(ifs=[exp.If(this=conjunction([f.copy() for f in filters]), true=value)])
    function = measure.function
    if function == "count":
        return exp.Count(this=exp.Star()) if not filters else exp.Count(this=value)
    if function == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if function == "sum":
        return exp.Sum(this=value)
    if function == "average":
        return exp.Avg(this=value)
    return exp.Min(this=value) if function == "min" else exp.Max(this=value)
