"""A schema bound to the warehouse's real columns, with relations resolved to join paths.

`Schema` is what the compiler, the evaluator and previews read. It is built from a
`SchemaDefinition` and the column types the warehouse reports for each model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.errors import DefinitionError, UnknownReferenceError
from corral.schema.model import (
    ColumnType,
    ModelDefinition,
    RelationshipDefinition,
    SchemaDefinition,
    TraitDefinition,
)

_REVERSED = {"one_to_many": "many_to_one", "many_to_one": "one_to_many", "one_to_one": "one_to_one"}


@dataclass(frozen=True)
class Hop:
    """One join step: rows of `target` whose `target_keys` equal `source_keys` of `source`."""

    source: str
    target: str
    source_keys: tuple[str, ...]
    target_keys: tuple[str, ...]
    cardinality: str


@dataclass(frozen=True)
class Relation:
    """A named way from one model to another: one hop, or several for a through path."""

    name: str
    source: str
    target: str
    hops: tuple[Hop, ...]

    @property
    def is_to_many(self) -> bool:
        return any(h.cardinality == "one_to_many" for h in self.hops)


@dataclass(frozen=True)
class Model:
    """A model with its definition and the column types the warehouse reported."""

    definition: ModelDefinition
    column_types: Mapping[str, ColumnType]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def primary_key(self) -> str:
        return self.definition.primary_key

    def column_type(self, column: str, *, where: str) -> ColumnType:
        """The type of a column, or a clear error naming the model's real columns."""
        if column in self.column_types:
            return self.column_types[column]
        known = ", ".join(sorted(self.column_types)) or "(none)"
        raise UnknownReferenceError(
            f"model {self.name!r} has no column {column!r}",
            where=where,
            hint=f"its columns are: {known}",
        )

    def has_column(self, column: str) -> bool:
        return column in self.column_types


@dataclass(frozen=True)
class Schema:
    """The parent model, every other model, their relations and the parent's traits."""

    parent: Model
    models: Mapping[str, Model]
    relationships: tuple[RelationshipDefinition, ...]
    traits: Mapping[str, TraitDefinition]
    definition: SchemaDefinition = field(repr=False)

    @classmethod
    def bind(
        cls, definition: SchemaDefinition, columns: Mapping[str, Mapping[str, ColumnType]]
    ) -> Schema:
        """Join a schema definition with the column types of each model (by model name)."""
        models: dict[str, Model] = {}
        for model_def in (definition.parent, *definition.models):
            if model_def.name in models:
                raise DefinitionError(
                    f"two models are named {model_def.name!r}",
                    where="schema.yaml",
                    hint="give every model a unique name",
                )
            declared = {c: s.type for c, s in model_def.columns.items() if s.type}
            found = dict(columns.get(model_def.name, {}))
            models[model_def.name] = Model(model_def, {**found, **declared})
        traits = {t.name: t for t in definition.traits}
        schema = cls(models[definition.parent.name], models, definition.relationships, traits,
                     definition)  # fmt: skip
        schema._check_relationship_endpoints()
        return schema

    def model(self, name: str, *, where: str = "schema") -> Model:
        if name in self.models:
            return self.models[name]
        raise UnknownReferenceError(
            f"there is no model {name!r}",
            where=where,
            hint="models are: " + ", ".join(sorted(self.models)),
        )

    def trait(self, name: str, *, where: str = "audience") -> TraitDefinition:
        if name in self.traits:
            return self.traits[name]
        raise UnknownReferenceError(
            f"there is no trait {name!r}",
            where=where,
            hint="traits are: " + (", ".join(sorted(self.traits)) or "(none defined)"),
        )

    def relation(self, source: str, name: str, *, where: str = "audience") -> Relation:
        """The relation called `name` starting at model `source`."""
        for rel in self.relationships:
            if rel.through and rel.from_model == source and rel.relation_name == name:
                return self._through(rel, where)
        hop = self._direct_hop(source, name)
        if hop is not None:
            return Relation(name, source, hop.target, (hop,))
        raise UnknownReferenceError(
            f"model {source!r} has no relation {name!r}",
            where=where,
            hint="relations from it are: " + (", ".join(self.relation_names(source)) or "(none)"),
        )

    def relation_names(self, source: str) -> list[str]:
        names = [r.relation_name for r in self.relationships if r.from_model == source]
        names += [
            r.from_model for r in self.relationships if not r.through and r.to_model == source
        ]
        return sorted(set(names))

    def event_models(self) -> list[Model]:
        return [m for m in self.models.values() if m.definition.is_event_model]

    def event_model(self, name: str | None, event: str | None, *, where: str) -> Model:
        """The event model a condition refers to: by name, or the only one with types."""
        if name is not None:
            model = self.model(name, where=where)
            if not model.definition.is_event_model:
                raise DefinitionError(
                    f"model {name!r} is not an event model",
                    where=where,
                    hint=f"add 'event: {{timestamp: <column>}}' to model {name!r}, "
                    "or use a relation condition",
                )
            return model
        typed = [m for m in self.event_models() if m.definition.event and m.definition.event.type]
        if len(typed) == 1:
            return typed[0]
        names = ", ".join(m.name for m in typed) or "(none)"
        raise DefinitionError(
            f"cannot tell which event model has events of type {event!r}",
            where=where,
            hint=f"name the event model with 'model:'; event models with types: {names}",
        )

    def _direct_hop(self, source: str, name: str) -> Hop | None:
        for rel in self.relationships:
            if rel.through:
                continue
            assert rel.to_model is not None and rel.cardinality is not None
            if rel.from_model == source and rel.relation_name == name:
                return Hop(source, rel.to_model, tuple(rel.join), tuple(rel.join.values()),
                           rel.cardinality)  # fmt: skip
            if rel.to_model == source and rel.from_model == name:
                return Hop(source, rel.from_model, tuple(rel.join.values()), tuple(rel.join),
                           _REVERSED[rel.cardinality])  # fmt: skip
        return None

    def _through(self, rel: RelationshipDefinition, where: str) -> Relation:
        hops: list[Hop] = []
        current = rel.from_model
        for step in rel.through:
            hop = self._direct_hop(current, step)
            if hop is None:
                raise DefinitionError(
                    f"through relationship {rel.relation_name!r}: no relationship from "
                    f"{current!r} to {step!r}",
                    where=where,
                    hint="define a direct relationship for each hop of 'through'",
                )
            hops.append(hop)
            current = hop.target
        return Relation(rel.relation_name, rel.from_model, current, tuple(hops))

    def _check_relationship_endpoints(self) -> None:
        for rel in self.relationships:
            where = f"relationship {rel.relation_name!r}"
            self.model(rel.from_model, where=where)
            if rel.through:
                self._through(rel, where)
                continue
            assert rel.to_model is not None
            target = self.model(rel.to_model, where=where)
            source = self.models[rel.from_model]
            for left, right in rel.join.items():
                source.column_type(left, where=where)
                target.column_type(right, where=where)
