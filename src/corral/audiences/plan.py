"""What every preview query starts from: the audience compiled once, and a clock.

`Plan` holds the audience's predicate on parent rows and its blocks' predicates, the
tables of shared aggregates they read (LEFT JOINed to the parent row), and builds the
members query that counts, breakdowns and samples select from. `Clock` times
each step of a preview and the part of it spent inside `Warehouse.query`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import AudienceDefinition, Group
from corral.audiences.shared import Join
from corral.schema.resolved import Schema
from corral.sql.build import column
from corral.warehouse.base import Warehouse

# Step timings log under the preview module's name, where they have always been.
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """One step of a preview: its wall time, and the part spent in the warehouse, of which
    `queued_ms` waiting for the warehouse to take the query (a busy embedded DuckDB admits
    a few queries at a time, see corral.warehouse.duckdb)."""

    step: str
    total_ms: float
    warehouse_ms: float
    queued_ms: float = 0.0

    @property
    def corral_ms(self) -> float:
        return max(0.0, self.total_ms - self.warehouse_ms)


@dataclass(frozen=True)
class Plan:
    """The audience compiled once: its predicate on parent rows aliased `alias`, and blocks.

    Both hold only on the parent row joined to `joins` (see `from_parent`).
    """

    compiler: AudienceCompiler
    schema: Schema
    alias: str
    predicate: exp.Expr
    blocks: tuple[exp.Expr, ...]
    combine: Group
    joins: tuple[Join, ...] = ()

    @classmethod
    def build(
        cls, compiler: AudienceCompiler, audience: AudienceDefinition, *, with_blocks: bool
    ) -> Plan:
        alias_ = compiler.alias("p")

        def build() -> tuple[exp.Expr, list[exp.Expr]]:
            predicate = compiler.audience_predicate(audience, alias_)
            blocks = compiler.block_predicates(audience, alias_) if with_blocks else []
            return predicate, blocks

        (predicate, blocks), joins = compiler.shared(alias_, build)
        return cls(
            compiler, compiler.schema, alias_, predicate, tuple(blocks), audience.root, joins
        )

    def from_parent(self, select: exp.Select) -> exp.Select:
        """`select` FROM the parent row joined to the shared aggregates the predicates read."""
        return self.compiler.from_parent(select, self.alias, self.joins)

    def members(self) -> exp.Select:
        """The primary key of every member: the same query as `AudienceCompiler.members`."""
        key = column(self.schema.parent.primary_key, self.alias)
        return self.from_parent(exp.select(key)).where(self.predicate.copy())

    def members_from(self, select: exp.Select, joins: Sequence[Join] = ()) -> exp.Select:
        """`select` FROM the parent, LEFT JOIN each of `joins`, WHERE the row is a member."""
        query = self.from_parent(select)
        for join in joins:
            query = query.join(join.source, on=join.on, join_type="LEFT")
        return query.where(self.predicate.copy(), copy=False)


class Clock:
    """Times the steps of a preview, and the warehouse's share of each."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.timings: list[Timing] = []
        self._in_warehouse = 0.0
        self._queued = 0.0
        # Adapters that queue queries themselves say how long the calling thread waited.
        self._queued_seconds: Callable[[], float] = getattr(
            warehouse, "queued_seconds", lambda: 0.0
        )

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started, self._in_warehouse, self._queued = time.perf_counter(), 0.0, 0.0
        yield
        total = (time.perf_counter() - started) * 1000
        self.timings.append(Timing(name, total, self._in_warehouse * 1000, self._queued * 1000))
        logger.debug(
            "preview %s: %.1f ms (warehouse %.1f ms)", name, total, self._in_warehouse * 1000
        )

    def query(self, statement: exp.Expr) -> pa.Table:
        started, queued = time.perf_counter(), self._queued_seconds()
        try:
            return self.warehouse.query(statement)
        finally:
            self._in_warehouse += time.perf_counter() - started
            self._queued += self._queued_seconds() - queued


def derived(query: exp.Query, name: str) -> exp.Subquery:
    """`query` as a derived table aliased `name`."""
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(name, True)))
