"""Samples of an audience's members, with private values redacted in the warehouse.

A sample shows the primary key, the parent's visible label columns, then any chosen
columns or traits. A pii or sensitive value is replaced by REDACTED in the query itself,
unless revealed, so it never reaches Corral.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from corral.audiences.dimensions import PRIVATE, Dimension, dimension_named
from corral.audiences.plan import Clock, Plan
from corral.sql.build import alias, column, literal

REDACTED = "••••"


@dataclass(frozen=True)
class Sample:
    """Some members in primary key order; `redacted` columns show REDACTED."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    redacted: tuple[str, ...] = ()


def sample_dimensions(plan: Plan, chosen: Sequence[str]) -> list[Dimension]:
    """The primary key, the visible label columns, then the chosen columns or traits."""
    parent = plan.schema.parent
    definition = parent.definition
    labels = [c for c in definition.label_columns if not definition.settings(c).hidden]
    names = list(dict.fromkeys([parent.primary_key, *labels, *chosen]))
    return [dimension_named(plan, n, where=f"sample column {n}") for n in names]


def sample_members(
    plan: Plan, clock: Clock, limit: int, dimensions: Sequence[Dimension], reveal: bool
) -> Sample:
    """The first `limit` members by primary key; private values never leave the warehouse."""
    with clock.step("sample"):
        redacted = [d.name for d in dimensions if d.privacy in PRIVATE and not reveal]
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
