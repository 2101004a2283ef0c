"""What a breakdown or a sample column is: a value per parent row, and how private it is.

A dimension is a parent column (by name or alias) or a trait; a trait computed from
related rows brings the join that attaches its value to the parent row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from corral.audiences.compiler import KEY, VALUE
from corral.audiences.plan import Plan, derived
from corral.audiences.shared import Join
from corral.errors import DefinitionError, UnknownReferenceError
from corral.schema.model import ColumnType, Privacy, TraitDefinition
from corral.schema.resolved import Schema
from corral.sql import parse_one
from corral.sql.build import column, conjunction

# Values at these levels are redacted in samples and refused as breakdowns, unless revealed.
PRIVATE: tuple[Privacy, ...] = ("pii", "sensitive")


@dataclass(frozen=True)
class Dimension:
    """A value per parent row: a column, or a trait with the joins it needs."""

    name: str
    source: Literal["column", "trait"]
    value: exp.Expr
    value_type: ColumnType
    privacy: Privacy
    joins: tuple[Join, ...] = ()


def dimension_named(plan: Plan, name: str, *, where: str) -> Dimension:
    """The parent column (by name or alias) or trait called `name`."""
    parent = plan.schema.parent
    column_name = _column_named(plan.schema, name)
    if column_name is not None:
        settings = parent.definition.settings(column_name)
        if settings.hidden:
            raise DefinitionError(
                f"column {column_name!r} of {parent.name!r} is hidden",
                where=where,
                hint="pick a visible column, or un-hide it in schema.yaml",
            )
        value_type = parent.column_type(column_name, where=where)
        return Dimension(
            column_name, "column", column(column_name, plan.alias), value_type, settings.privacy
        )
    if name in plan.schema.traits:
        return _trait_dimension(plan, plan.schema.traits[name], where)
    raise UnknownReferenceError(
        f"{name!r} is neither a column of {parent.name!r} nor a trait",
        where=where,
        hint=_known_dimensions(plan.schema),
    )


def _column_named(schema: Schema, name: str) -> str | None:
    parent = schema.parent
    if parent.has_column(name):
        return name
    for column_name, settings in parent.definition.columns.items():
        if settings.alias and settings.alias.lower() == name.lower():
            return column_name
    return None


def _known_dimensions(schema: Schema) -> str:
    definition = schema.parent.definition
    columns = [c for c in schema.parent.column_types if not definition.settings(c).hidden]
    traits = sorted(schema.traits) or ["(none)"]
    return f"columns are: {', '.join(sorted(columns))}; traits are: {', '.join(traits)}"


def _trait_dimension(plan: Plan, trait: TraitDefinition, where: str) -> Dimension:
    here = f"{where} > trait {trait.name}"
    traits = plan.compiler.traits
    if trait.kind == "formula":
        formula = traits.formula(trait, plan.alias, here)
        value_type = traits.value_type(trait, here)
        return Dimension(trait.name, "trait", formula, value_type, _trait_privacy(plan, trait))
    if trait.aggregate == "list":
        raise DefinitionError(
            f"trait {trait.name!r} is a list, and a member may hold many of its values",
            where=here,
            hint="break down by a single-valued trait, such as a most_frequent one",
        )

    values = traits.values(trait, here)
    t = plan.compiler.alias("t")
    table = derived(values.query, t)
    on = conjunction(
        [
            exp.EQ(this=column(f"{KEY}{i}", t), expression=column(key, plan.alias))
            for i, key in enumerate(values.source_keys)
        ]
    )
    value: exp.Expr = column(VALUE, t)
    if values.empty is not None:
        value = exp.Coalesce(this=value, expressions=[exp.Literal.number(values.empty)])
    privacy = _trait_privacy(plan, trait)
    return Dimension(trait.name, "trait", value, values.value_type, privacy, (Join(table, on),))


def _trait_privacy(plan: Plan, trait: TraitDefinition) -> Privacy:
    """A trait that shows column values (first, max, a formula...) is as private as they."""
    if trait.kind == "aggregate" and trait.aggregate in ("count", "count_distinct", "average"):
        return "public"
    schema, dialect = plan.schema, plan.compiler.source_dialect
    if trait.kind == "formula":
        model, text = schema.parent, trait.formula or ""
    else:
        assert trait.relation is not None
        relation = schema.relation(schema.parent.name, trait.relation, where="trait")
        model, text = schema.model(relation.target), trait.sql or ""
    names = {trait.column} if trait.column else set()
    names |= {c.name for c in _columns_in(text, dialect)}
    levels = [model.definition.settings(n).privacy for n in names if n]
    return next((p for p in ("sensitive", "pii", "internal") if p in levels), "public")


def _columns_in(text: str, dialect: str) -> list[exp.Column]:
    return list(parse_one(text, dialect).find_all(exp.Column)) if text else []
