"""Bind a schema definition to a warehouse, and check it against the real columns.

`bind_schema` reads each model's columns from the warehouse and returns a `Schema` ready
for compiling; `check_schema` goes further and reports every problem it finds at once:
unknown columns, join keys whose types do not match, primary keys that are not unique.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from corral.errors import CorralError, DefinitionError, WarehouseError
from corral.schema.model import ColumnType, ModelDefinition, SchemaDefinition
from corral.schema.resolved import Schema
from corral.sql.build import column
from corral.sql.dialects import sqlglot_dialect
from corral.warehouse.base import ColumnInfo, TableRef, Warehouse

logger = logging.getLogger(__name__)

_FAMILIES: dict[str, ColumnType] = {
    "string": "string",
    "integer": "integer",
    "decimal": "decimal",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
_JOINABLE = [{"integer", "decimal"}, {"string"}, {"date"}, {"timestamp"}, {"boolean"}, {"float"}]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a schema, where it is, and how to fix it."""

    where: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.where}: {self.message}{hint}"


def model_source(model: ModelDefinition, dialect: str) -> exp.Expr:
    """The model's table, or its SQL as a subquery, for reading its columns."""
    if model.table is not None:
        return exp.to_table(model.table, dialect=sqlglot_dialect(dialect))
    assert model.sql is not None
    return sqlglot.parse_one(model.sql, dialect=sqlglot_dialect(dialect))


def read_columns(model: ModelDefinition, warehouse: Warehouse) -> list[ColumnInfo]:
    """The columns the warehouse reports for a model's table or query."""
    if model.table is not None:
        table = exp.to_table(model.table, dialect=sqlglot_dialect(warehouse.dialect))
        ref = TableRef(table.name, table.db or None, table.catalog or None)
        return warehouse.columns(ref)
    query = model_source(model, warehouse.dialect)
    if not isinstance(query, exp.Query):
        raise DefinitionError(
            f"model {model.name!r}: its 'sql' is not a query",
            where="schema.yaml",
            hint="write a SELECT statement",
        )
    return warehouse.query_columns(query)


def bind_schema(definition: SchemaDefinition, warehouse: Warehouse) -> Schema:
    """The schema with each model's column types read from the warehouse."""
    columns: dict[str, dict[str, ColumnType]] = {}
    for model in (definition.parent, *definition.models):
        try:
            found = read_columns(model, warehouse)
        except WarehouseError as error:
            raise DefinitionError(
                f"model {model.name!r}: cannot read its columns: {error.message}",
                where="schema.yaml",
                hint="check the model's 'table' or 'sql' against the warehouse",
            ) from None
        columns[model.name] = {c.name: _FAMILIES[c.type] for c in found if c.type in _FAMILIES}
    return Schema.bind(definition, columns)


def check_schema(
    definition: SchemaDefinition, warehouse: Warehouse, *, unique_keys: bool = False
) -> list[Problem]:
    """Every problem with the schema against the warehouse; an empty list when all is well."""
    problems: list[Problem] = []
    columns: dict[str, dict[str, ColumnType]] = {}
    for model in (definition.parent, *definition.models):
        try:
            found = read_columns(model, warehouse)
        except CorralError as error:
            problems.append(Problem(f"model {model.name}", error.message, error.hint))
            continue
        columns[model.name] = {c.name: _FAMILIES.get(c.type, "string") for c in found}
        problems += _model_problems(model, columns[model.name])
    problems += _relationship_problems(definition, columns)
    if not problems:
        try:
            Schema.bind(definition, columns)
        except CorralError as error:
            problems.append(Problem(error.where or "schema", error.message, error.hint))
    if unique_keys and not problems:
        problems += _duplicate_keys(definition, warehouse)
    return problems


def _model_problems(model: ModelDefinition, types: dict[str, ColumnType]) -> list[Problem]:
    where = f"model {model.name}"
    wanted = [("primary_key", model.primary_key)]
    wanted += [("label_columns", c) for c in model.label_columns]
    wanted += [("columns", c) for c in model.columns]
    if model.event is not None:
        wanted.append(("event.timestamp", model.event.timestamp))
        if model.event.type:
            wanted.append(("event.type", model.event.type))
    if model.timestamp:
        wanted.append(("timestamp", model.timestamp))
    problems = [
        Problem(f"{where} > {setting}", f"no column {name!r}", _known(types))
        for setting, name in wanted
        if name not in types
    ]
    time_column = model.time_column
    if time_column in types and types[time_column] not in ("date", "timestamp"):
        problems.append(Problem(
            f"{where} > timestamp", f"column {time_column!r} is {types[time_column]}, not a time",
            "point the timestamp at a DATE or TIMESTAMP column",
        ))  # fmt: skip
    return problems


def _relationship_problems(
    definition: SchemaDefinition, columns: dict[str, dict[str, ColumnType]]
) -> list[Problem]:
    problems: list[Problem] = []
    for rel in definition.relationships:
        if rel.through or rel.to_model is None:
            continue
        where = f"relationship {rel.relation_name}"
        for model in (rel.from_model, rel.to_model):
            if model not in columns:
                problems.append(Problem(where, f"no model {model!r}", "define it under 'models'"))
        if rel.from_model not in columns or rel.to_model not in columns:
            continue
        for left, right in rel.join.items():
            left_type = columns[rel.from_model].get(left)
            right_type = columns[rel.to_model].get(right)
            if left_type is None or right_type is None:
                missing = (
                    f"{rel.from_model}.{left}" if left_type is None else f"{rel.to_model}.{right}"
                )
                problems.append(Problem(where, f"join column {missing} does not exist"))
            elif not any({left_type, right_type} <= group for group in _JOINABLE):
                problems.append(Problem(
                    where, f"join keys do not match: {rel.from_model}.{left} is {left_type}, "
                    f"{rel.to_model}.{right} is {right_type}",
                    "join columns of the same type, or add a model with 'sql' that casts one",
                ))  # fmt: skip
    return problems


def _duplicate_keys(definition: SchemaDefinition, warehouse: Warehouse) -> list[Problem]:
    problems = []
    for model in (definition.parent, *definition.models):
        duplicated = duplicate_key_count(model, warehouse)
        if duplicated:
            problems.append(Problem(
                f"model {model.name} > primary_key",
                f"{duplicated} values of {model.primary_key!r} appear more than once",
                "choose a unique column, or a 'sql' model that makes one",
            ))  # fmt: skip
    return problems


def duplicate_key_count(model: ModelDefinition, warehouse: Warehouse) -> int:
    """How many primary key values appear on more than one row."""
    source = model_source(model, warehouse.dialect)
    if isinstance(source, exp.Query):
        source = source.subquery("m")
    key = column(model.primary_key)
    grouped = (
        exp.select(key).from_(source).group_by(key.copy())
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )  # fmt: skip
    query = exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(grouped.subquery("d"))
    result = warehouse.query(query)
    return int(result.column(0)[0].as_py())


def _known(types: Iterable[str]) -> str:
    return "columns are: " + ", ".join(sorted(types))
