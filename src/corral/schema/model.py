"""The customer schema: a parent model, related and event models, relationships, traits.

A data team describes this once (in `schema.yaml`); audiences are written against it.
These are pydantic models because they are read from YAML and JSON at the edge; once
loaded they are frozen and only read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Privacy = Literal["public", "internal", "pii", "sensitive"]
ColumnType = Literal["string", "integer", "decimal", "float", "boolean", "date", "timestamp"]
Cardinality = Literal["one_to_one", "one_to_many", "many_to_one"]
Aggregation = Literal[
    "count", "count_distinct", "sum", "average", "min", "max", "first", "last",
    "most_frequent", "list",
]  # fmt: skip

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSettings(_Frozen):
    """How a column appears to marketers. Every setting is optional."""

    alias: str | None = None
    type: ColumnType | None = None
    hidden: bool = False
    privacy: Privacy = "public"
    description: str | None = None
    suggestions: bool = True


class EventSettings(_Frozen):
    """Makes a model an event model: each row happened at `timestamp`."""

    timestamp: Name
    type: Name | None = None


class ModelDefinition(_Frozen):
    """A table (or a SQL query) in the warehouse that Corral can read.

    Exactly one of `table` and `sql` is given. `table` may be qualified (`schema.table`).
    """

    name: Name
    table: str | None = None
    sql: str | None = None
    primary_key: Name
    label_columns: tuple[Name, ...] = ()
    columns: dict[Name, ColumnSettings] = Field(default_factory=dict)
    event: EventSettings | None = None
    timestamp: Name | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelDefinition:
        if (self.table is None) == (self.sql is None):
            raise ValueError(f"model {self.name!r} needs exactly one of 'table' or 'sql'")
        return self

    @property
    def is_event_model(self) -> bool:
        return self.event is not None

    @property
    def time_column(self) -> str | None:
        """The column that places a row in time, for windows; None when there is none."""
        return self.event.timestamp if self.event else self.timestamp

    def settings(self, column: str) -> ColumnSettings:
        return self.columns.get(column, ColumnSettings())


class RelationshipDefinition(_Frozen):
    """How rows of one model relate to rows of another.

    A direct relationship joins `from` to `to` on pairs of columns, `join`: {from column:
    to column} (not `on`, which YAML reads as the boolean true). A through relationship
    chains direct ones: `through: [purchases, products]` reaches products from users via
    purchases.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: Name | None = None
    from_model: Name = Field(alias="from")
    to_model: Name | None = Field(default=None, alias="to")
    cardinality: Cardinality | None = None
    join: dict[Name, Name] = Field(default_factory=dict)
    through: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _direct_or_through(self) -> RelationshipDefinition:
        if self.through:
            if self.join:
                raise ValueError("a through relationship takes its keys from its hops; drop 'join'")
            if self.name is None:
                raise ValueError("a through relationship needs a 'name'")
        else:
            if self.to_model is None or not self.join or self.cardinality is None:
                raise ValueError("a direct relationship needs 'to', 'cardinality' and 'join'")
        return self

    @property
    def relation_name(self) -> str:
        return self.name or (self.to_model or self.through[-1])


class TraitDefinition(_Frozen):
    """A computed property of each parent row.

    Either an aggregation over a related model (`relation`, `aggregate`, optional
    `column`, `where` filter and `order_by` for first/last), or a SQL formula on parent
    columns (`formula`), or a SQL aggregation over a related model (`relation` plus
    `sql`, an aggregate expression over that model's columns).
    """

    name: Name
    description: str | None = None
    relation: Name | None = None
    aggregate: Aggregation | None = None
    column: Name | None = None
    order_by: Name | None = None
    where: dict[str, Any] | None = None
    formula: str | None = None
    sql: str | None = None
    type: ColumnType | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TraitDefinition:
        kinds = [self.formula is not None, self.aggregate is not None, self.sql is not None]
        if sum(kinds) != 1:
            raise ValueError(
                f"trait {self.name!r} needs exactly one of 'aggregate', 'formula' or 'sql'"
            )
        if (self.aggregate or self.sql) and self.relation is None:
            raise ValueError(f"trait {self.name!r} aggregates rows: name their 'relation'")
        if self.formula and (self.relation or self.where):
            raise ValueError(f"trait {self.name!r} is a formula on parent columns: no 'relation'")
        needs_column = self.aggregate not in (None, "count")
        if needs_column and self.column is None:
            raise ValueError(f"trait {self.name!r}: '{self.aggregate}' needs a 'column'")
        return self

    @property
    def kind(self) -> Literal["aggregate", "formula", "sql"]:
        if self.formula is not None:
            return "formula"
        return "sql" if self.sql is not None else "aggregate"


class SchemaDefinition(_Frozen):
    """The whole schema of a workspace, as written in `schema.yaml`."""

    parent: ModelDefinition
    models: tuple[ModelDefinition, ...] = ()
    relationships: tuple[RelationshipDefinition, ...] = ()
    traits: tuple[TraitDefinition, ...] = ()
