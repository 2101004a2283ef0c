"""A reference evaluator: audiences computed in plain Python over the rows of each model.

This is `docs/semantics.md` made executable. It shares nothing with the SQL compiler but
the condition tree and the schema, and the differential test checks that both select
the same members on random audiences over random data. It favours being obviously right
over being fast: every condition is evaluated row by row, for data of a few thousand rows.

    >>> members = evaluate(audience, schema, {"users": users, "purchases": purchases},
    ...                    as_of=datetime(2024, 6, 1))  # doctest: +SKIP

What it does not do:

- run the query of a model defined by `sql:`: pass the query's rows in `tables`, or get
  NotImplementedError;
- formula and `sql` traits are run through DuckDB on the model's rows, so their SQL must
  be written in DuckDB's dialect (the compiler's default `source_dialect`).

Where the semantics leave a choice to the warehouse, this evaluator makes one:

- strings are ordered by code point (a "C" collation) for min, max and most_frequent ties;
- averages of integers and decimals are exact fractions (engines may round them to doubles
  first); a float column is compared with the user's value as a float, like the engines do;
- an event's type matches its `event:` name exactly, case included.

The evaluator is split by responsibility; this module keeps the public API and re-exports
the helpers of the others:

- `_reference_calendar`: calendar arithmetic (durations, periods, anniversaries, windows);
- `_reference_values`: operators on strings, numbers, booleans and times, and aggregates;
- `_reference_rows`: conditions over the rows of a model: relations, events, sequences;
- `_reference_traits`: trait values over related rows, and formula / `sql` traits;
- here: audiences, which may refer to each other by name, and `evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import polars as pl
import pyarrow as pa

from corral.audiences._reference_calendar import (
    ONE_DAY,
    add_months,
    anniversary_days,
    local_time,
    midnight,
    moment,
    period_bounds,
    shift,
    window_test,
)
from corral.audiences._reference_rows import Row, sequence_holds
from corral.audiences._reference_traits import TraitEvaluator
from corral.audiences._reference_values import (
    Test,
    aggregate,
    check_operator,
    comparison,
    measure_type,
    most_frequent,
)
from corral.audiences.conditions import (
    AudienceCondition,
    AudienceDefinition,
    EventCondition,
    Group,
    RelationCondition,
)
from corral.errors import AudienceCycleError, UnknownReferenceError
from corral.schema.resolved import Schema

__all__ = [
    "ONE_DAY",
    "Row",
    "Test",
    "add_months",
    "aggregate",
    "anniversary_days",
    "check_operator",
    "comparison",
    "evaluate",
    "evaluate_trait",
    "local_time",
    "measure_type",
    "midnight",
    "moment",
    "most_frequent",
    "period_bounds",
    "sequence_holds",
    "shift",
    "window_test",
]

_NO_AUDIENCES: Mapping[str, AudienceDefinition] = MappingProxyType({})


def evaluate(
    audience: AudienceDefinition,
    schema: Schema,
    tables: Mapping[str, pl.DataFrame | pa.Table],
    *,
    as_of: datetime,
    audiences: Mapping[str, AudienceDefinition] = _NO_AUDIENCES,
    time_zone: str = "UTC",
) -> set[Any]:
    """The primary keys of the parent rows that are members of `audience`.

    `tables` holds the rows of each model (by model name) that the audience reads (for a
    model defined by `sql:`, the rows its query returns);
    `audiences` every audience it may refer to by name. A tz-aware `as_of` is converted
    to `time_zone`; a naive one is read as a wall-clock time there already.
    """
    evaluator = _Evaluator(schema, tables, local_time(as_of, time_zone), audiences)
    return evaluator.members(audience)


def evaluate_trait(
    trait: str,
    schema: Schema,
    tables: Mapping[str, pl.DataFrame | pa.Table],
    *,
    as_of: datetime,
    time_zone: str = "UTC",
) -> dict[Any, Any]:
    """Every parent row's value of a trait, by primary key; a list trait's is a frozenset."""
    evaluator = _Evaluator(schema, tables, local_time(as_of, time_zone), _NO_AUDIENCES)
    definition = schema.trait(trait, where=f"trait {trait}")
    values = evaluator.trait_values(definition, f"trait {trait}")
    parent = schema.parent
    rows = evaluator.rows(parent)
    return {row[parent.primary_key]: v for row, v in zip(rows, values, strict=True)}


class _Evaluator(TraitEvaluator):
    """Evaluates audiences, and the audiences they refer to, over the rows of each model."""

    def __init__(
        self,
        schema: Schema,
        tables: Mapping[str, pl.DataFrame | pa.Table],
        as_of: datetime,
        audiences: Mapping[str, AudienceDefinition],
    ):
        super().__init__(schema, tables, as_of)
        self.audiences = audiences
        self._members: dict[str, list[bool]] = {}

    def members(self, audience: AudienceDefinition) -> set[Any]:
        """The primary keys of the parent rows that are members of `audience`."""
        self._check_cycles(audience)
        parent = self.schema.parent
        mask = self.mask(audience.root, parent, audience.name)
        rows = self.rows(parent)
        return {row[parent.primary_key] for row, hit in zip(rows, mask, strict=True) if hit}

    def audience_mask(self, name: str, where: str) -> list[bool]:
        if name not in self._members:
            audience = self._audience(name, where)
            self._members[name] = self.mask(audience.root, self.schema.parent, name)
        return self._members[name]

    def _audience(self, name: str, where: str) -> AudienceDefinition:
        if name not in self.audiences:
            raise UnknownReferenceError(
                f"there is no audience {name!r}",
                where=where,
                hint="audiences are: " + (", ".join(sorted(self.audiences)) or "(none)"),
            )
        return self.audiences[name]

    def _check_cycles(self, audience: AudienceDefinition) -> None:
        """Audiences that include each other in a loop are an error, before any evaluation."""

        def visit(name: str, root: Group, path: list[str]) -> None:
            for used in _audience_references(root):
                if used in path:
                    loop = " -> ".join([*path[path.index(used) :], used])
                    raise AudienceCycleError(
                        f"audiences include each other in a loop: {loop}",
                        where=f"{name} > audience {used}",
                        hint="remove one of the audience conditions in the loop",
                    )
                visit(used, self._audience(used, name).root, [*path, used])

        visit(audience.name, audience.root, [audience.name])


def _audience_references(group: Group) -> list[str]:
    """Names of the audiences a condition tree refers to, wherever they appear."""
    found: list[str] = []
    for node in group.conditions:
        if isinstance(node, AudienceCondition):
            found.append(node.audience)
        elif isinstance(node, Group):
            found += _audience_references(node)
        elif isinstance(node, RelationCondition | EventCondition) and node.where is not None:
            found += _audience_references(node.where)
    return found
