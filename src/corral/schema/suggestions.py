"""Value suggestions for a column: its most frequent values, computed on demand.

The audience builder offers these while a marketer types a value. They are counted in
the warehouse each time they are asked for, so they are never stale and never stored.

    >>> suggest_values(schema.parent, "country", warehouse, prefix="c")  # doctest: +SKIP
    [('CA', 4012), ('CN', 388), ('CO', 120)]
"""

from __future__ import annotations

import logging
from typing import Any

import sqlglot
from sqlglot import exp

from corral.errors import DefinitionError
from corral.schema.resolved import Model
from corral.sql.build import alias, column, conjunction, literal
from corral.sql.dialects import sqlglot_dialect
from corral.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

MAX_LIMIT = 1000


def suggest_values(
    model: Model,
    column_name: str,
    warehouse: Warehouse,
    *,
    prefix: str | None = None,
    limit: int = 20,
) -> list[tuple[Any, int]]:
    """The `limit` most frequent non-null values of a column, with their row counts.

    `prefix` keeps values that start with it, ignoring case (values that are not text
    are compared as text). Hidden columns, columns marked pii or sensitive, and columns
    with suggestions turned off are refused.
    """
    where = f"model {model.name} > column {column_name}"
    column_type = model.column_type(column_name, where=where)
    _check_allowed(model, column_name, where)
    if not 1 <= limit <= MAX_LIMIT:
        raise DefinitionError(
            f"cannot suggest {limit} values", where=where, hint=f"ask for 1 to {MAX_LIMIT}"
        )

    value = column(column_name, "m")
    filters: list[exp.Expr] = [exp.not_(exp.Is(this=value, expression=exp.null()))]
    if prefix:
        text = value.copy() if column_type == "string" else exp.cast(value.copy(), "text")
        filters.append(_starts_with(text, prefix))
    count = exp.Count(this=exp.Star())
    query = (
        exp.select(alias(value.copy(), "value"), alias(count, "count"))
        .from_(_source(model, warehouse.dialect))
        .where(conjunction(filters))
        .group_by(value.copy())
        .order_by(exp.Ordered(this=count.copy(), desc=True), exp.Ordered(this=value.copy()))
        .limit(limit)
    )
    rows = warehouse.query(query).to_pylist()
    logger.debug("suggested %d values for %s", len(rows), where)
    return [(row["value"], int(row["count"])) for row in rows]


def _check_allowed(model: Model, column_name: str, where: str) -> None:
    settings = model.definition.settings(column_name)
    if settings.hidden:
        raise DefinitionError(
            f"column {column_name!r} of {model.name!r} is hidden, so it has no suggestions",
            where=where,
            hint="suggest values of a visible column, or un-hide it in schema.yaml",
        )
    if settings.privacy in ("pii", "sensitive"):
        raise DefinitionError(
            f"column {column_name!r} of {model.name!r} is {settings.privacy}: "
            "suggesting its values would show them",
            where=where,
            hint="type the value instead; suggestions are never offered for pii or "
            "sensitive columns",
        )
    if not settings.suggestions:
        raise DefinitionError(
            f"suggestions are turned off for column {column_name!r} of {model.name!r}",
            where=where,
            hint="set 'suggestions: true' on the column in schema.yaml",
        )


def _starts_with(text: exp.Expr, prefix: str) -> exp.Expr:
    """LOWER(text) begins with the prefix, compared literally (no LIKE wildcards)."""
    lowered = prefix.lower()
    head = exp.Left(this=exp.Lower(this=text), expression=exp.Literal.number(len(lowered)))
    return exp.EQ(this=head, expression=literal(lowered))


def _source(model: Model, dialect: str) -> exp.Expr:
    """The model's table or query, aliased `m`."""
    definition = model.definition
    if definition.table is not None:
        table = exp.to_table(definition.table, dialect=sqlglot_dialect(dialect))
        for part in table.parts:
            part.set("quoted", True)
        return table.as_("m", quoted=True)
    assert definition.sql is not None
    query = sqlglot.parse_one(definition.sql, dialect=sqlglot_dialect(dialect))
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier("m", True)))
