"""The customer schema: models, relationships, column settings and traits."""

from corral.schema.check import Problem, bind_schema, check_schema
from corral.schema.model import (
    ColumnSettings,
    EventSettings,
    ModelDefinition,
    RelationshipDefinition,
    SchemaDefinition,
    TraitDefinition,
)
from corral.schema.resolved import Hop, Model, Relation, Schema

__all__ = [
    "ColumnSettings",
    "EventSettings",
    "Hop",
    "Model",
    "ModelDefinition",
    "Problem",
    "Relation",
    "RelationshipDefinition",
    "Schema",
    "SchemaDefinition",
    "TraitDefinition",
    "bind_schema",
    "check_schema",
]
