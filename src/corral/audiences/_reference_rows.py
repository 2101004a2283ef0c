"""Rows for the reference evaluator: conditions on the rows of models, through relations.

`RowEvaluator` reads each model's rows (as given in `tables`) and evaluates a condition over
every row of a model at once, as a list of booleans: properties, groups, relations, events
and sequences. Relations are followed hop by hop through an index on the target's keys, so
a row reaches each related row once per path. Trait and audience conditions are left to the
subclasses in `_reference_traits` and `corral.audiences.evaluator`.

Part of `corral.audiences.evaluator`, and like it independent of the SQL compiler.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import polars as pl
import pyarrow as pa

from corral.audiences._reference_calendar import moment, shift, window_test
from corral.audiences._reference_values import aggregate, comparison, measure_type
from corral.audiences.conditions import (
    Aggregate,
    AudienceCondition,
    Duration,
    EventCondition,
    Group,
    PropertyCondition,
    RelationCondition,
    SequenceCondition,
    TraitCondition,
    Window,
)
from corral.errors import DefinitionError
from corral.schema.resolved import Model, Relation, Schema

Row = Mapping[str, Any]


class RowEvaluator(ABC):
    """Evaluates conditions over every row of a model at once, as lists of booleans."""

    def __init__(
        self,
        schema: Schema,
        tables: Mapping[str, pl.DataFrame | pa.Table],
        as_of: datetime,
    ):
        self.schema = schema
        self.tables = tables
        self.as_of = as_of
        self._frames: dict[str, pl.DataFrame] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], list[int]]] = {}

    @abstractmethod
    def trait_condition(self, node: TraitCondition, where: str) -> list[bool]:
        """For every parent row, whether its trait value satisfies `node`."""

    @abstractmethod
    def audience_mask(self, name: str, where: str) -> list[bool]:
        """For every parent row, whether it is a member of the audience `name`."""

    # -- data --------------------------------------------------------------------------------

    def frame(self, model: Model) -> pl.DataFrame:
        if model.name not in self._frames:
            if model.name not in self.tables and model.definition.sql is not None:
                raise NotImplementedError(
                    f"model {model.name!r} is defined by SQL, which the reference evaluator "
                    "cannot run: pass the rows of its query in `tables`"
                )
            if model.name not in self.tables:
                raise KeyError(f"no rows given for model {model.name!r}: add it to `tables`")
            data = self.tables[model.name]
            self._frames[model.name] = pl.from_arrow(data) if isinstance(data, pa.Table) else data  # type: ignore[assignment]
        return self._frames[model.name]

    def rows(self, model: Model) -> list[dict[str, Any]]:
        if model.name not in self._rows:
            self._rows[model.name] = self.frame(model).to_dicts()
        return self._rows[model.name]

    def column(self, model: Model, name: str, where: str) -> list[Any]:
        model.column_type(name, where=where)
        return [row[name] for row in self.rows(model)]

    def reach(self, relation: Relation, row: Row) -> list[int]:
        """Indexes of the rows at the end of `relation` from `row`, once per path."""
        current: list[Row] = [row]
        found: list[int] = []
        for hop in relation.hops:
            target = self.schema.model(hop.target)
            index = self._index(target, hop.target_keys)
            found = []
            for source in current:
                key = tuple(source[k] for k in hop.source_keys)
                if None not in key:
                    found += index.get(key, [])
            target_rows = self.rows(target)
            current = [target_rows[i] for i in found]
        return found

    def _index(self, model: Model, keys: tuple[str, ...]) -> dict[tuple[Any, ...], list[int]]:
        if (model.name, keys) not in self._indexes:
            index: dict[tuple[Any, ...], list[int]] = {}
            for i, row in enumerate(self.rows(model)):
                index.setdefault(tuple(row[k] for k in keys), []).append(i)
            self._indexes[(model.name, keys)] = index
        return self._indexes[(model.name, keys)]

    # -- conditions ------------------------------------------------------------------------

    def mask(self, node: Any, model: Model, where: str) -> list[bool]:
        """For every row of `model`, whether it satisfies the condition `node`."""
        if isinstance(node, Group):
            return self.group(node, model, where)
        if isinstance(node, PropertyCondition):
            here = f"{where} > property {node.column}"
            test = comparison(
                model.column_type(node.column, where=here), node.operator, node.value,
                self.as_of, here,
            )  # fmt: skip
            return [test(v) for v in self.column(model, node.column, here)]
        if isinstance(node, RelationCondition):
            return self.relation(node, model, where)
        if isinstance(node, EventCondition):
            return self.event(node, model, where)
        if isinstance(node, SequenceCondition):
            return self.sequence(node, model, f"{where} > sequence")
        if isinstance(node, TraitCondition):
            self._parent_only(model, "trait", where)
            return self.trait_condition(node, f"{where} > trait {node.trait}")
        if isinstance(node, AudienceCondition):
            self._parent_only(model, "audience", where)
            inside = self.audience_mask(node.audience, where)
            return inside if node.member else [not hit for hit in inside]
        raise TypeError(f"unknown condition {type(node).__name__}")

    def group(self, node: Group, model: Model, where: str) -> list[bool]:
        """All (or any) of the conditions; all of none is true, any of none false."""
        masks = [
            self.mask(c, model, f"{where} > condition {i + 1}")
            for i, c in enumerate(node.conditions)
        ]
        combine = all if node.match == "all" else any
        combined = [combine(hits) for hits in zip(*masks, strict=True)] if masks else None
        if combined is None:
            combined = [node.match == "all"] * len(self.rows(model))
        return [not hit for hit in combined] if node.negate else combined

    def relation(self, node: RelationCondition, model: Model, where: str) -> list[bool]:
        here = f"{where} > relation {node.relation}"
        relation = self.schema.relation(model.name, node.relation, where=here)
        target = self.schema.model(relation.target)
        passes = self.row_filter(target, node.where, node.within, here)
        return self.related_rows(node, model, relation, passes, node.has, here)

    def event(self, node: EventCondition, model: Model, where: str) -> list[bool]:
        """A relation condition on an event model, of one type, up to the as-of time."""
        here = f"{where} > event {node.event or node.model}"
        events = self.schema.event_model(node.model, node.event, where=here)
        relation = self.schema.relation(model.name, events.name, where=here)
        passes = self.row_filter(events, node.where, node.within, here)
        happened = self.event_filter(events, node.event, here)
        passes = [a and b for a, b in zip(passes, happened, strict=True)]
        return self.related_rows(node, model, relation, passes, node.performed, here)

    def related_rows(
        self,
        node: RelationCondition | EventCondition,
        model: Model,
        relation: Relation,
        passes: list[bool],
        present: bool,
        where: str,
    ) -> list[bool]:
        """Has (not) a passing related row, or a measure of the passing rows compared."""
        if node.operator is None:
            return [
                any(passes[i] for i in self.reach(relation, row)) is present
                for row in self.rows(model)
            ]
        # The condition tree refuses 'has: false' with a measure, so `present` holds here.
        target = self.schema.model(relation.target)
        spec = node.aggregate or Aggregate(function="count")
        column_type = None
        if spec.function != "count":
            assert spec.column is not None
            column_type = target.column_type(spec.column, where=where)
        test = comparison(
            measure_type(spec.function, column_type, where), node.operator, node.value,
            self.as_of, where,
        )  # fmt: skip
        target_rows = self.rows(target)

        def measure(row: Row) -> Any:
            hits = [i for i in self.reach(relation, row) if passes[i]]
            return aggregate(spec.function, [target_rows[i].get(spec.column or "") for i in hits])

        return [test(measure(row)) for row in self.rows(model)]

    def row_filter(
        self, model: Model, where_group: Group | None, within: Window | None, where: str
    ) -> list[bool]:
        """For every row of a related model, whether it passes `where` and `within`."""
        passes = [True] * len(self.rows(model))
        if where_group is not None:
            passes = self.group(where_group, model, f"{where} > where")
        if within is not None:
            in_window = window_test(within, self.as_of)
            times = self.column(model, self.time_column(model, where), where)
            passes = [
                ok and t is not None and in_window(moment(t))
                for ok, t in zip(passes, times, strict=True)
            ]
        return passes

    def time_column(self, model: Model, where: str) -> str:
        name = model.definition.time_column
        if name is None:
            raise DefinitionError(
                f"model {model.name!r} has no time column, so 'within' cannot apply",
                where=where,
                hint=f"set 'timestamp' (or 'event.timestamp') on model {model.name!r}",
            )
        return name

    def _parent_only(self, model: Model, what: str, where: str) -> None:
        if model.name != self.schema.parent.name:
            raise DefinitionError(
                f"{what} conditions apply to the parent model, not to {model.name!r}",
                where=where,
                hint=f"move the {what} condition out of the 'where' of a relation",
            )

    # -- events and sequences ---------------------------------------------------------------

    def event_filter(self, model: Model, event: str | None, where: str) -> list[bool]:
        """Events of type `event` (any type when None) that happened by the as-of time."""
        settings = model.definition.event
        assert settings is not None
        times = self.column(model, settings.timestamp, where)
        happened = [t is not None and moment(t) <= self.as_of for t in times]
        if event is None:
            return happened
        if settings.type is None:
            raise DefinitionError(
                f"event model {model.name!r} has no type column, so 'event: {event}' "
                "cannot filter it",
                where=where,
                hint=f"set 'event.type' on model {model.name!r}",
            )
        types = self.column(model, settings.type, where)
        return [ok and kind == event for ok, kind in zip(happened, types, strict=True)]

    def sequence(self, node: SequenceCondition, model: Model, where: str) -> list[bool]:
        """Events in order, each within its step's time of the previous one."""
        events = self.schema.event_model(node.model, node.steps[0].event, where=where)
        relation = self.schema.relation(model.name, events.name, where=where)
        if len(relation.hops) != 1:
            raise DefinitionError(
                "a sequence needs events related directly to the parent",
                where=where,
                hint="relate the event model to the parent model with one relationship",
            )
        assert events.definition.event is not None
        times = self.column(events, events.definition.event.timestamp, where)
        steps = [self.step_filter(node, i, events, f"{where} > step {i + 1}")
                 for i in range(len(node.steps))]  # fmt: skip

        def qualifies(row: Row) -> bool:
            reached = self.reach(relation, row)
            candidates = [
                sorted(moment(times[i]) for i in reached if passes[i]) for passes in steps
            ]
            return sequence_holds(node, candidates)

        return [qualifies(row) for row in self.rows(model)]

    def step_filter(
        self, node: SequenceCondition, index: int, events: Model, where: str
    ) -> list[bool]:
        step = node.steps[index]
        passes = self.event_filter(events, step.event, where)
        within = node.within if index == 0 else None
        extra = self.row_filter(events, step.where, within, where)
        return [a and b for a, b in zip(passes, extra, strict=True)]


def sequence_holds(node: SequenceCondition, candidates: list[list[datetime]]) -> bool:
    """Whether some chain of step times exists (each list: a step's candidate times, sorted).

    `ends` holds every time at which a chain of the performed steps so far can end.
    """
    ends = candidates[0]
    for index in range(1, len(node.steps)):
        step = node.steps[index]
        follows = _follows(step.within)
        if not step.performed:
            return any(not any(follows(end, t) for t in candidates[index]) for end in ends)
        ends = [t for t in candidates[index] if any(follows(end, t) for end in ends)]
    return bool(ends)


def _follows(within: Duration | None) -> Callable[[datetime, datetime], bool]:
    """Whether time `t` may follow `previous`: strictly after, and no later than `within`."""
    if within is None:
        return lambda previous, t: t > previous
    return lambda previous, t: previous < t <= shift(previous, within)
