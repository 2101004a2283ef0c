"""Compile an audience's condition tree into a sqlglot query over the warehouse.

The query selects the parent model's primary key of every member:

    SELECT p.<primary key> FROM <parent> AS p WHERE <predicate>

Each condition becomes a two-valued predicate on the row of the model it is written
against; conditions over related rows become EXISTS / NOT EXISTS subqueries, with the
aggregated forms grouped in an uncorrelated derived table so that every engine plans a
hash semi- or anti-join. Where an audience aggregates one relation path from the parent
more than once, those aggregates are computed together in one grouped table LEFT JOINed
to the parent row (`corral.audiences.shared`), and their conditions compare its columns:

    SELECT p.<primary key> FROM <parent> AS p LEFT JOIN (<aggregates>) AS a ON ...
    WHERE <predicate>

See `docs/semantics.md` for what each construct means.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlglot
from sqlglot import exp

from corral.audiences import timewindows as tw
from corral.audiences.comparisons import compare, holds_for_missing, interval_predicate
from corral.audiences.conditions import (
    Aggregate,
    AudienceCondition,
    AudienceDefinition,
    EventCondition,
    Group,
    PropertyCondition,
    RelationCondition,
    SequenceCondition,
    TraitCondition,
)
from corral.audiences.shared import SHAREABLE, Join, SharedPath, Sharing, has_subquery
from corral.audiences.traits import TraitCompiler
from corral.errors import (
    AudienceCycleError,
    CorralError,
    DefinitionError,
    UnknownReferenceError,
)
from corral.schema.check import Problem
from corral.schema.model import ColumnType
from corral.schema.resolved import Model, Relation, Schema
from corral.sql.build import add_time, column, conjunction, disjunction, negation
from corral.sql.dialects import sqlglot_dialect

KEY = "__key"
VALUE = "__value"
T = TypeVar("T")


@dataclass(frozen=True)
class Rows:
    """Rows of a related model reachable from a source row: the FROM, keys and last alias."""

    select: exp.Select
    keys: tuple[exp.Column, ...]
    source_keys: tuple[str, ...]
    alias: str
    model: Model


@dataclass
class AudienceCompiler:
    """Compiles audiences of one schema at one as-of time.

    `audiences` holds every audience that others may refer to by name;
    `source_dialect` is the dialect that model SQL (`sql:` models, formulas) is written in.
    """

    schema: Schema
    as_of: datetime
    audiences: Mapping[str, AudienceDefinition] = field(default_factory=dict)
    time_zone: str = "UTC"
    source_dialect: str = "duckdb"
    _aliases: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    _stack: list[str] = field(default_factory=list, repr=False)
    _sharing: Sharing | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.as_of = tw.local_as_of(self.as_of, self.time_zone)
        self.traits = TraitCompiler(self)

    # -- entry points ---------------------------------------------------------------------

    def members(self, audience: AudienceDefinition) -> exp.Select:
        """SELECT the primary key of every member of `audience`."""
        alias = self.alias("p")
        where, joins = self.shared(alias, lambda: self.audience_predicate(audience, alias))
        key = column(self.schema.parent.primary_key, alias)
        return self.from_parent(exp.select(key), alias, joins).where(where)

    def shared(self, alias: str, build: Callable[[], T]) -> tuple[T, tuple[Join, ...]]:
        """`build()` (predicates on the parent row `alias`) with shared aggregates.

        `build` runs twice: first to find every aggregate over each relation path, then
        to compile with the paths that have several of them read from one joined table.
        The predicates hold only on the parent LEFT JOINed to the returned joins
        (`from_parent`).
        """
        outer, self._sharing = self._sharing, Sharing(alias)
        start = next(self._aliases)
        try:
            build()
            self._sharing.collecting = False
            # The second pass numbers its aliases as the first did, so an audience without
            # shared aggregates compiles to the same SQL as without sharing. Shared tables
            # were named in the first pass with prefixes of their own (`a`, `g`).
            self._aliases = itertools.count(start)
            return build(), self._sharing.joins()
        finally:
            self._sharing = outer

    def from_parent(self, select: exp.Select, alias: str, joins: tuple[Join, ...]) -> exp.Select:
        """`select` FROM the parent model aliased `alias`, LEFT JOIN each of `joins`."""
        query = select.from_(self.source(self.schema.parent, alias))
        for join in joins:
            query = query.join(join.source.copy(), on=join.on.copy(), join_type="LEFT")
        return query

    def audience_predicate(self, audience: AudienceDefinition, alias: str) -> exp.Expr:
        """The predicate that holds for a parent row (aliased `alias`) that is a member."""
        self._stack.append(audience.name)
        try:
            return self.group(audience.root, self.schema.parent, alias, audience.name)
        finally:
            self._stack.pop()

    def block_predicates(self, audience: AudienceDefinition, alias: str) -> list[exp.Expr]:
        """One predicate per top-level condition, for the sizes of each block in a preview."""
        self._stack.append(audience.name)
        try:
            parent = self.schema.parent
            return [
                self.condition(c, parent, alias, f"{audience.name} > condition {i + 1}")
                for i, c in enumerate(audience.conditions)
            ]
        finally:
            self._stack.pop()

    # -- helpers shared with traits and previews -------------------------------------------

    def alias(self, prefix: str) -> str:
        return f"{prefix}{next(self._aliases)}"

    def source(self, model: Model, alias: str) -> exp.Expr:
        """The model's table or query, aliased."""
        definition = model.definition
        if definition.table is not None:
            table = exp.to_table(definition.table, dialect=sqlglot_dialect(self.source_dialect))
            for part in table.parts:
                part.set("quoted", True)
            return table.as_(alias, quoted=True)
        assert definition.sql is not None
        query = sqlglot.parse_one(definition.sql, dialect=sqlglot_dialect(self.source_dialect))
        return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(alias, True)))

    def rows(self, relation: Relation, source_alias: str, *, prefix: str = "r") -> Rows:
        """The rows at the end of a relation, joined hop by hop, not yet correlated."""
        aliases = [self.alias(prefix) for _ in relation.hops]
        first = relation.hops[0]
        first_model = self.schema.model(first.target)
        select = exp.select().from_(self.source(first_model, aliases[0]))
        for previous, hop, hop_alias in zip(aliases, relation.hops[1:], aliases[1:], strict=False):
            on = conjunction([
                exp.EQ(this=column(t, hop_alias), expression=column(s, previous))
                for s, t in zip(hop.source_keys, hop.target_keys, strict=True)
            ])  # fmt: skip
            select = select.join(self.source(self.schema.model(hop.target), hop_alias), on=on)
        keys = tuple(column(k, aliases[0]) for k in first.target_keys)
        model = self.schema.model(relation.target)
        return Rows(select, keys, first.source_keys, aliases[-1], model)

    def correlate(self, rows: Rows, source_alias: str) -> exp.Expr:
        return conjunction([
            exp.EQ(this=key.copy(), expression=column(s, source_alias))
            for key, s in zip(rows.keys, rows.source_keys, strict=True)
        ])  # fmt: skip

    def measured(
        self,
        value_query: exp.Select,
        key_count: int,
        source_keys: tuple[str, ...],
        source_alias: str,
        satisfied: Callable[[exp.Expr], exp.Expr],
        *,
        holds_when_missing: bool,
    ) -> exp.Expr:
        """Membership from per-parent values: rows of keys and `__value` in `value_query`.

        `satisfied` builds a two-valued predicate on a value. When a parent with no row
        satisfies it, members are those without a failing row; otherwise those with a
        passing row.
        """
        m = self.alias("m")
        keys = [column(f"{KEY}{i}", m) for i in range(key_count)]
        correlated = conjunction([
            exp.EQ(this=k, expression=column(s, source_alias))
            for k, s in zip(keys, source_keys, strict=True)
        ])  # fmt: skip
        derived = exp.Subquery(
            this=value_query, alias=exp.TableAlias(this=exp.to_identifier(m, True))
        )
        test = satisfied(column(VALUE, m))
        test = negation(test) if holds_when_missing else test
        probe = exp.select(exp.Literal.number(1)).from_(derived).where(exp.and_(correlated, test))
        exists = exp.Exists(this=probe)
        return exp.not_(exists) if holds_when_missing else exists

    # -- the tree -----------------------------------------------------------------------------

    def condition(self, node: Any, model: Model, alias: str, where: str) -> exp.Expr:
        if isinstance(node, Group):
            return self.group(node, model, alias, where)
        if isinstance(node, PropertyCondition):
            return self.property(node, model, alias, where)
        if isinstance(node, RelationCondition):
            return self.relation(node, model, alias, where)
        if isinstance(node, EventCondition):
            return self.event(node, model, alias, where)
        if isinstance(node, SequenceCondition):
            return self.sequence(node, model, alias, where)
        if isinstance(node, TraitCondition):
            self._parent_only(model, "trait", where)
            return self.traits.condition(node, alias, f"{where} > trait {node.trait}")
        if isinstance(node, AudienceCondition):
            self._parent_only(model, "audience", where)
            return self.membership(node, alias, where)
        raise TypeError(f"unknown condition {type(node).__name__}")

    def group(self, node: Group, model: Model, alias: str, where: str) -> exp.Expr:
        parts = [
            self.condition(c, model, alias, f"{where} > condition {i + 1}")
            for i, c in enumerate(node.conditions)
        ]
        combined = conjunction(parts) if node.match == "all" else disjunction(parts)
        if len(parts) > 1:
            combined = exp.paren(combined)
        return negation(combined) if node.negate else combined

    def property(self, node: PropertyCondition, model: Model, alias: str, where: str) -> exp.Expr:
        here = f"{where} > property {node.column}"
        column_type = model.column_type(node.column, where=here)
        value_sql = column(node.column, alias)
        return compare(
            value_sql, column_type, node.operator, node.value, as_of=self.as_of, where=here
        )

    def relation(self, node: RelationCondition, model: Model, alias: str, where: str) -> exp.Expr:
        here = f"{where} > relation {node.relation}"
        relation = self.schema.relation(model.name, node.relation, where=here)
        return self._rows_condition(node, relation, alias, node.has, [], here)

    def event(self, node: EventCondition, model: Model, alias: str, where: str) -> exp.Expr:
        here = f"{where} > event {node.event or node.model}"
        event_model = self.schema.event_model(node.model, node.event, where=here)
        relation = self.schema.relation(model.name, event_model.name, where=here)
        extra = self._event_filters(node.event, event_model, here)
        return self._rows_condition(node, relation, alias, node.performed, extra, here)

    def _rows_condition(
        self,
        node: RelationCondition | EventCondition,
        relation: Relation,
        alias: str,
        present: bool,
        extra: list[Any],
        where: str,
    ) -> exp.Expr:
        def filters_of(rows: Rows) -> list[exp.Expr]:
            found = [f(rows.alias) for f in extra]
            return found + self.row_filters(rows, node.where, node.within, where)

        if node.operator is not None:
            aggregate = node.aggregate or Aggregate(function="count")
            shared = self.shared_measure(relation, alias, aggregate, filters_of, where)
            if shared is not None:
                value_sql, value_type = shared
                return compare(
                    value_sql, value_type, node.operator, node.value, as_of=self.as_of, where=where
                )

        rows = self.rows(relation, alias)
        filters = filters_of(rows)
        if node.operator is None:
            probe = rows.select.select(exp.Literal.number(1), append=False)
            probe = probe.where(conjunction([self.correlate(rows, alias), *filters]))
            exists = exp.Exists(this=probe)
            return exists if present else exp.not_(exists)
        aggregate = node.aggregate or Aggregate(function="count")
        measure = self.aggregate_measure(aggregate, rows, where)
        return self.compare_measure(rows, filters, measure, node.operator, node.value, alias, where)

    def shared_measure(
        self,
        relation: Relation,
        alias: str,
        aggregate: Aggregate,
        filters_of: Callable[[Rows], list[exp.Expr]],
        where: str,
    ) -> tuple[exp.Expr, ColumnType] | None:
        """An aggregate's value read from the shared table of its path, with its type.

        None when it is not shared: outside `shared`, in its first pass, on a row other
        than the parent's, for a path with one aggregate, or when the filters hold a
        subquery (Spark refuses correlated subqueries inside an aggregate).
        """
        sharing = self._sharing
        if sharing is None or alias != sharing.alias or aggregate.function not in SHAREABLE:
            return None
        path = sharing.paths.get(relation.hops)
        if path is None:
            if not sharing.collecting:
                return None
            path = SharedPath(self.rows(relation, alias, prefix="g"), self.alias("a"))
            sharing.paths[relation.hops] = path
        filters = filters_of(path.rows)
        if has_subquery(filters):
            return None

        _, value_type, empty = self.aggregate_measure(aggregate, path.rows, where)
        counted = aggregate.function == "count" or aggregate.column is None
        value = None if counted else column(aggregate.column or "", path.rows.alias)
        measure = path.measure(
            aggregate.function, value, filters, value_type, empty, register=sharing.collecting
        )
        if measure is None or not sharing.is_shared(path):
            return None
        return path.value(measure), value_type

    def row_filters(
        self, rows: Rows, where_group: Group | None, within: Any, where: str
    ) -> list[exp.Expr]:
        """Filters on related rows: the nested `where` group and the time window."""
        filters: list[exp.Expr] = []
        if where_group is not None and _filters(where_group):
            filters.append(self.group(where_group, rows.model, rows.alias, f"{where} > where"))
        if within is not None:
            filters.append(self.window(rows.model, rows.alias, within, where))
        return filters

    def window(self, model: Model, alias: str, within: Any, where: str) -> exp.Expr:
        time_column = model.definition.time_column
        if time_column is None:
            raise DefinitionError(
                f"model {model.name!r} has no time column, so 'within' cannot apply",
                where=where,
                hint=f"set 'timestamp' (or 'event.timestamp') on model {model.name!r}",
            )
        column_type = model.column_type(time_column, where=where)
        interval = tw.window_interval(within, self.as_of)
        return interval_predicate(column(time_column, alias), column_type, interval)

    def aggregate_measure(
        self, aggregate: Aggregate, rows: Rows, where: str
    ) -> tuple[exp.Expr, ColumnType, int | None]:
        """The SQL of an aggregate over `rows`, its type, and its value over no rows."""
        if aggregate.function == "count":
            return exp.Count(this=exp.Star()), "integer", 0
        assert aggregate.column is not None
        column_type = rows.model.column_type(aggregate.column, where=where)
        value = column(aggregate.column, rows.alias)
        if aggregate.function == "count_distinct":
            return exp.Count(this=exp.Distinct(expressions=[value])), "integer", 0
        if aggregate.function in ("min", "max"):
            node = exp.Min if aggregate.function == "min" else exp.Max
            return node(this=value), column_type, None
        if column_type not in ("integer", "decimal", "float"):
            raise DefinitionError(
                f"'{aggregate.function}' needs a number column; "
                f"{aggregate.column!r} is {column_type}",
                where=where,
                hint="use count, count_distinct, min or max for other columns",
            )
        if aggregate.function == "sum":
            total = exp.Coalesce(this=exp.Sum(this=value), expressions=[exp.Literal.number(0)])
            return total, column_type, 0
        return exp.Avg(this=value), "float", None

    def compare_measure(
        self,
        rows: Rows,
        filters: list[exp.Expr],
        measure: tuple[exp.Expr, ColumnType, int | None],
        operator: str,
        value: Any,
        alias: str,
        where: str,
    ) -> exp.Expr:
        """Members whose aggregate over `rows` (after `filters`) satisfies the comparison."""
        sql, value_type, empty = measure
        key_columns = [k.copy() for k in rows.keys]
        selected = [exp.alias_(k, f"{KEY}{i}", quoted=True) for i, k in enumerate(key_columns)]
        query = rows.select.select(*selected, exp.alias_(sql, VALUE, quoted=True), append=False)
        if filters:
            query = query.where(conjunction(filters))
        query = query.group_by(*[k.copy() for k in rows.keys])
        return self.measured_comparison(
            query,
            len(rows.keys),
            rows.source_keys,
            alias,
            value_type,
            operator,
            value,
            empty,
            where,
        )

    def measured_comparison(
        self,
        query: exp.Select,
        key_count: int,
        source_keys: tuple[str, ...],
        alias: str,
        value_type: ColumnType,
        operator: str,
        value: Any,
        empty: int | None,
        where: str,
    ) -> exp.Expr:
        def satisfied(value_sql: exp.Expr) -> exp.Expr:
            return compare(value_sql, value_type, operator, value, as_of=self.as_of, where=where)

        missing = holds_for_missing(operator, value, empty, value_type)
        return self.measured(
            query, key_count, source_keys, alias, satisfied, holds_when_missing=missing
        )

    # -- events and sequences -----------------------------------------------------------------

    def _event_filters(self, event: str | None, model: Model, where: str) -> list[Any]:
        """Row filters every event condition applies: its type, and nothing after as-of."""
        settings = model.definition.event
        assert settings is not None
        filters: list[Any] = []
        time_column = settings.timestamp
        time_type = model.column_type(time_column, where=where)
        up_to_now = tw.Interval(None, self.as_of, True, True)
        filters.append(lambda a: interval_predicate(column(time_column, a), time_type, up_to_now))
        if event is not None:
            if settings.type is None:
                raise DefinitionError(
                    f"event model {model.name!r} has no type column, so 'event: {event}' "
                    "cannot filter it",
                    where=where,
                    hint=f"set 'event.type' on model {model.name!r}, or drop 'event:' "
                    "and name the model only",
                )
            type_column = settings.type
            filters.append(
                lambda a: exp.EQ(this=column(type_column, a), expression=exp.Literal.string(event))
            )
        return filters

    def sequence(self, node: SequenceCondition, model: Model, alias: str, where: str) -> exp.Expr:
        here = f"{where} > sequence"
        event_model = self.schema.event_model(node.model, node.steps[0].event, where=here)
        relation = self.schema.relation(model.name, event_model.name, where=here)
        if len(relation.hops) != 1:
            raise DefinitionError(
                "a sequence needs events related directly to the parent",
                where=here,
                hint="relate the event model to the parent model with one relationship",
            )
        settings = event_model.definition.event
        assert settings is not None
        time = settings.timestamp
        keys = relation.hops[0].target_keys
        aliases = [self.alias("s") for _ in node.steps]
        after_start = self._after_window_start(node.within, event_model, here)

        def step_filters(index: int) -> list[exp.Expr]:
            step = node.steps[index]
            step_where = f"{here} > step {index + 1}"
            found = [
                f(aliases[index]) for f in self._event_filters(step.event, event_model, step_where)
            ]
            if index > 0 and after_start is not None:
                found.append(after_start(aliases[index]))
            if step.where is not None and _filters(step.where):
                found.append(self.group(step.where, event_model, aliases[index], step_where))
            return found

        def follows(index: int) -> exp.Expr:
            before, after = aliases[index - 1], aliases[index]
            parts: list[exp.Expr] = [
                exp.EQ(this=column(k, after), expression=column(k, before)) for k in keys
            ]
            parts.append(exp.GT(this=column(time, after), expression=column(time, before)))
            within = node.steps[index].within
            if within is not None:
                limit = _add_duration(column(time, before), within.amount, within.unit)
                parts.append(exp.LTE(this=column(time, after), expression=limit))
            return conjunction(parts)

        positive = [i for i, s in enumerate(node.steps) if s.performed]
        select = exp.select(exp.Literal.number(1)).from_(self.source(event_model, aliases[0]))
        filters = step_filters(0)
        if node.within is not None:
            filters.append(self.window(event_model, aliases[0], node.within, here))
        for index in positive[1:]:
            on = conjunction([follows(index), *step_filters(index)])
            select = select.join(self.source(event_model, aliases[index]), on=on)
        if not node.steps[-1].performed:
            last = len(node.steps) - 1
            absent = exp.select(exp.Literal.number(1)).from_(
                self.source(event_model, aliases[last])
            )
            absent = absent.where(conjunction([follows(last), *step_filters(last)]))
            filters.append(exp.not_(exp.Exists(this=absent)))
        correlation = [
            exp.EQ(this=column(t, aliases[0]), expression=column(s, alias))
            for s, t in zip(relation.hops[0].source_keys, keys, strict=True)
        ]
        return exp.Exists(this=select.where(conjunction([*correlation, *filters])))

    def _after_window_start(
        self, within: Any, model: Model, where: str
    ) -> Callable[[str], exp.Expr] | None:
        """A filter for the later steps of a sequence: after the start of its window.

        Each step is strictly after the first, which is in the window, so each is after
        the window's start. Implied, but stating it lets the warehouse skip the events
        before the window in every scan instead of joining them and discarding the pairs:
        the demo's cart abandoners run twice as fast at 1M users in DuckDB.
        """
        if within is None:
            return None
        start = tw.window_interval(within, self.as_of).low
        if start is None:
            return None
        time_column = model.definition.time_column
        assert time_column is not None
        column_type = model.column_type(time_column, where=where)
        after = tw.Interval(start, None, low_inclusive=False)
        return lambda a: interval_predicate(column(time_column, a), column_type, after)

    # -- audiences ------------------------------------------------------------------------------

    def membership(self, node: AudienceCondition, alias: str, where: str) -> exp.Expr:
        here = f"{where} > audience {node.audience}"
        if node.audience not in self.audiences:
            raise UnknownReferenceError(
                f"there is no audience {node.audience!r}",
                where=here,
                hint="audiences are: " + (", ".join(sorted(self.audiences)) or "(none)"),
            )
        if node.audience in self._stack:
            loop = " -> ".join([*self._stack[self._stack.index(node.audience) :], node.audience])
            raise AudienceCycleError(
                f"audiences include each other in a loop: {loop}",
                where=here,
                hint="remove one of the audience conditions in the loop",
            )
        predicate = self.audience_predicate(self.audiences[node.audience], alias)
        return predicate if node.member else negation(predicate)

    def _parent_only(self, model: Model, what: str, where: str) -> None:
        if model.name != self.schema.parent.name:
            raise DefinitionError(
                f"{what} conditions apply to the parent model, not to {model.name!r}",
                where=where,
                hint=f"move the {what} condition out of the 'where' of a relation",
            )


def _filters(group: Group) -> bool:
    """Whether a `where` group removes any row: all of nothing keeps every row, but any of
    nothing (or a negated group) keeps none."""
    return bool(group.conditions) or group.match == "any" or group.negate


def _add_duration(value_sql: exp.Expr, amount: int, unit: str) -> exp.Expr:
    singular = {"minutes": "minute", "hours": "hour", "days": "day", "weeks": "week",
                "months": "month", "years": "year"}[unit]  # fmt: skip
    return add_time(value_sql, amount, singular)


def check_audiences(
    schema: Schema,
    audiences: Mapping[str, AudienceDefinition],
    *,
    as_of: datetime,
    source_dialect: str = "duckdb",
) -> list[Problem]:
    """Compile every audience without running it; one problem per audience that fails."""
    problems: list[Problem] = []
    for name, audience in audiences.items():
        compiler = AudienceCompiler(schema, as_of, audiences, source_dialect=source_dialect)
        try:
            compiler.members(audience)
        except CorralError as error:
            where = f"audience {name}" + (f" > {error.where}" if error.where else "")
            problems.append(Problem(where, error.message, error.hint))
    return problems
