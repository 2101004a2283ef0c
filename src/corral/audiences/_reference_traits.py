"""Traits for the reference evaluator: a value per parent row, computed over related rows.

`TraitEvaluator` adds trait conditions to `RowEvaluator`: an aggregate trait reduces each
parent's related rows (those passing the trait's `where`) with `aggregate`, first / last,
most_frequent or list; formula and `sql` traits are run through DuckDB on the model's rows,
so their SQL must be written in DuckDB's dialect.

Part of `corral.audiences.evaluator`, and like it independent of the SQL compiler.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp

from corral.audiences._reference_rows import Row, RowEvaluator
from corral.audiences._reference_values import aggregate, comparison, measure_type, most_frequent
from corral.audiences.conditions import TraitCondition, parse_group
from corral.errors import DefinitionError
from corral.schema.model import ColumnType, TraitDefinition
from corral.schema.resolved import Model


class TraitEvaluator(RowEvaluator):
    """A `RowEvaluator` that also evaluates the traits of the parent model."""

    def trait_condition(self, node: TraitCondition, where: str) -> list[bool]:
        trait = self.schema.trait(node.trait, where=where)
        if trait.aggregate == "list":
            return self.list_condition(trait, node, where)
        value_type = self.trait_type(trait, where)
        test = comparison(value_type, node.operator, node.value, self.as_of, where)
        return [test(v) for v in self.trait_values(trait, where)]

    def trait_type(self, trait: TraitDefinition, where: str) -> ColumnType:
        if trait.kind != "aggregate":
            if trait.type is None:
                raise DefinitionError(
                    f"trait {trait.name!r} is SQL, so its type must be declared",
                    where=where,
                    hint="add 'type:' to the trait",
                )
            return trait.type
        assert trait.aggregate is not None
        column_type = None
        if trait.column is not None:
            column_type = self.trait_target(trait, where).column_type(trait.column, where=where)
        if trait.aggregate in ("first", "last", "most_frequent", "list"):
            assert column_type is not None
            return column_type
        return measure_type(trait.aggregate, column_type, where)

    def trait_target(self, trait: TraitDefinition, where: str) -> Model:
        assert trait.relation is not None
        relation = self.schema.relation(self.schema.parent.name, trait.relation, where=where)
        return self.schema.model(relation.target)

    def trait_rows(self, trait: TraitDefinition, where: str) -> tuple[Model, list[list[int]]]:
        """The related model and, per parent row, its related rows passing `where` (by index)."""
        assert trait.relation is not None
        parent = self.schema.parent
        relation = self.schema.relation(parent.name, trait.relation, where=where)
        target = self.schema.model(relation.target)
        group = parse_group(trait.where) if trait.where else None
        passes = self.row_filter(target, group, None, where)
        per_parent = [
            [i for i in self.reach(relation, row) if passes[i]] for row in self.rows(parent)
        ]
        return target, per_parent

    def trait_values(self, trait: TraitDefinition, where: str) -> list[Any]:
        """The trait's value for every parent row."""
        if trait.formula is not None:
            return self.formula_values(trait.formula, where)
        target, per_parent = self.trait_rows(trait, where)
        if trait.sql is not None:
            return self.sql_values(trait.sql, target, per_parent, where)

        assert trait.aggregate is not None
        self.trait_type(trait, where)  # checks that the column suits the aggregate
        rows = self.rows(target)
        column = trait.column or ""
        if trait.aggregate in ("first", "last"):
            order = trait.order_by or self.time_column(target, where)
            target.column_type(order, where=where)
            return [self.ranked(trait.aggregate, target, [rows[i] for i in hits], column, order)
                    for hits in per_parent]  # fmt: skip
        if trait.aggregate == "most_frequent":
            return [most_frequent(rows[i][column] for i in hits) for hits in per_parent]
        if trait.aggregate == "list":
            return [frozenset(rows[i][column] for i in hits) - {None} for hits in per_parent]
        return [
            aggregate(trait.aggregate, [rows[i].get(column) for i in hits]) for hits in per_parent
        ]

    @staticmethod
    def ranked(which: str, model: Model, rows: list[Row], column: str, order: str) -> Any:
        """first / last: the value on the row with the smallest / largest order, then key."""
        ordered = [r for r in rows if r[order] is not None]
        if not ordered:
            return None
        key = model.primary_key
        pick = min if which == "first" else max
        return pick(ordered, key=lambda r: (r[order], r[key]))[column]

    def list_condition(
        self, trait: TraitDefinition, node: TraitCondition, where: str
    ) -> list[bool]:
        """A list trait holds any of (`in`) or none of (`not_in`) the values; null is empty."""
        if node.operator not in ("in", "not_in", "is_null", "is_not_null"):
            raise DefinitionError(
                f"a list trait takes in, not_in, is_null or is_not_null, not {node.operator!r}",
                where=where,
                hint="'in: [a, b]' keeps parents whose list holds any of the values",
            )
        value_type = self.trait_type(trait, where)
        lists = self.trait_values(trait, where)
        if node.operator in ("is_null", "is_not_null"):
            return [bool(values) is (node.operator == "is_not_null") for values in lists]
        holds = comparison(value_type, "in", node.value, self.as_of, where)
        return [any(holds(v) for v in values) is (node.operator == "in") for values in lists]

    def formula_values(self, formula: str, where: str) -> list[Any]:
        """A formula on the parent's columns, run by DuckDB on the parent rows."""
        parent = self.schema.parent
        frame = self.frame(parent).with_row_index("__corral_row")
        expression = _parse_sql(formula, where)
        if expression.find(exp.AggFunc) is not None:
            raise DefinitionError(
                "a formula trait works on one parent row and cannot aggregate",
                where=where,
                hint="use 'relation' with 'sql' for an aggregation over related rows",
            )
        query = exp.select("__corral_row", exp.alias_(expression, "__corral_value")).from_("f")
        found = dict(_run_duckdb(query.order_by("__corral_row"), frame))
        return [found.get(i) for i in range(frame.height)]

    def sql_values(
        self, sql: str, target: Model, per_parent: list[list[int]], where: str
    ) -> list[Any]:
        """A SQL aggregate over each parent's related rows, run by DuckDB; null without rows."""
        expression = _parse_sql(sql, where)
        if expression.find(exp.AggFunc) is None:
            raise DefinitionError(
                "a 'sql' trait must aggregate, like SUM(amount * quantity)",
                where=where,
                hint="for a per-row expression on the parent, use 'formula'",
            )
        indexes = [i for hits in per_parent for i in hits]
        owners = [p for p, hits in enumerate(per_parent) for _ in hits]
        frame = self.frame(target)[indexes].with_columns(
            pl.Series("__corral_parent", owners, dtype=pl.Int64)
        )
        query = (
            exp.select("__corral_parent", exp.alias_(expression, "__corral_value"))
            .from_("f")
            .group_by("__corral_parent")
        )
        found = dict(_run_duckdb(query, frame))
        return [found.get(p) for p in range(len(per_parent))]


def _parse_sql(text: str, where: str) -> exp.Expr:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise DefinitionError(
            f"cannot parse SQL {text!r}: {error}", where=where, hint="write one SQL expression"
        ) from None


def _run_duckdb(query: exp.Select, frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Rows of `query` run by DuckDB over `frame`, which the query reads as table `f`."""
    connection = duckdb.connect()
    try:
        connection.register("f", frame.to_arrow())
        return connection.execute(query.sql(dialect="duckdb")).fetchall()
    finally:
        connection.close()
