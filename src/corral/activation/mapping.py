"""A sync's source rows as one SQL query: key, mapped fields, and a hash of the fields.

The query runs in the warehouse; Corral reads only the rows a run must deliver. Each
destination field becomes a column named `f_<field>`, so planner tables have one
stable, engine-safe column per field whatever the destination calls it. The hash is
computed over those columns, so the planner can hash its delivered state the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from corral.activation.syncs import ConstantValue, SyncDefinition, TemplateValue
from corral.audiences import AudienceCompiler, AudienceDefinition
from corral.errors import UnknownReferenceError
from corral.schema.resolved import Model
from corral.sql.build import column, literal

KEY = "__key"
HASH = "__hash"
OP = "__op"


_NATIVE_KEYS = frozenset({"integer", "string"})


@dataclass(frozen=True)
class Field:
    """One destination field and the planner column that carries it."""

    name: str
    column: str


def field_columns(names: list[str]) -> list[Field]:
    """Planner columns for destination fields: `f_` + a lower-case slug, unique."""
    fields: list[Field] = []
    used: set[str] = set()
    for name in names:
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or "field"
        candidate, n = f"f_{slug}", 2
        while candidate in used:
            candidate, n = f"f_{slug}_{n}", n + 1
        used.add(candidate)
        fields.append(Field(name, candidate))
    return fields


def hash_type(dialect: str | None) -> exp.DataType:
    """The SQL type of `row_hash` on a warehouse: UBIGINT on DuckDB, text elsewhere."""
    if dialect == "duckdb":
        return exp.DataType.build("UBIGINT", dialect="duckdb")
    return exp.DataType.build("TEXT")


# Warehouses whose row hash may change with the engine's version: the planner checks a
# sample of its state against a fresh hash before each plan, and rehashes it if it differs.
UNSTABLE_HASH_DIALECTS = frozenset({"duckdb"})


def row_hash(columns: list[exp.Expr], dialect: str | None = None) -> exp.Expr:
    """A hash of the values, which changes when any of them does; typed as `hash_type` says.

    On DuckDB, the engine's own `hash` of the values: a 64-bit unsigned integer, about
    eight times cheaper than MD5 over the values' text, and kept as a number, which a
    diff compares and joins several times faster than its text (the diff of a
    10-million-row sync spends most of its time hashing and comparing). DuckDB may change
    that function between releases; the planner then rehashes its state (see
    `UNSTABLE_HASH_DIALECTS`), so an upgrade costs one pass over the state, not a resend.
    A changed row keeps its hash with a chance of 2^-64.

    Elsewhere, MD5 over the values: each as `<length>:<text>`, or `~` for NULL, joined by
    `|`. Lengths make the encoding unambiguous, so different rows cannot hash alike by
    shifting text between fields. The text form is the engine's own cast, stable
    between runs on one warehouse, which is all the planner compares.
    """
    if dialect == "duckdb":
        return exp.Anonymous(this="hash", expressions=[value.copy() for value in columns])
    parts: list[exp.Expr] = []
    for index, value in enumerate(columns):
        text = exp.cast(value.copy(), exp.DataType.Type.TEXT)
        encoded = exp.Case(
            ifs=[exp.If(this=exp.Is(this=value.copy(), expression=exp.Null()), true=literal("~"))],
            default=exp.Concat(
                expressions=[
                    exp.cast(exp.Length(this=text.copy()), exp.DataType.Type.TEXT),
                    literal(":"),
                    text,
                ],
                safe=False,
            ),
        )
        if index:
            parts.append(literal("|"))
        parts.append(encoded)
    joined = parts[0] if len(parts) == 1 else exp.Concat(expressions=parts, safe=False)
    return exp.MD5(this=joined)


def mapped_value(
    value: str | ConstantValue | TemplateValue, model: Model, alias: str, where: str
) -> exp.Expr:
    """The SQL of one mapped field over the source row `alias`."""
    if isinstance(value, str):
        _check_column(model, value, where)
        return column(value, alias)
    if isinstance(value, ConstantValue):
        return literal(value.constant)
    pieces: list[exp.Expr] = []
    for text, name in value.pieces():
        if text:
            pieces.append(literal(text))
        if name is not None:
            _check_column(model, name, where)
            as_text = exp.cast(column(name, alias), exp.DataType.Type.TEXT)
            pieces.append(exp.Coalesce(this=as_text, expressions=[literal("")]))
    if not pieces:
        return literal("")
    return pieces[0] if len(pieces) == 1 else exp.Concat(expressions=pieces, safe=False)


def planned_key_type(sync: SyncDefinition, model: Model) -> str:
    """The type family of the key `source_query` plans: the source's for integer and text
    keys, text for the others."""
    family = model.column_types[sync.key or model.primary_key]
    return family if family in _NATIVE_KEYS else "string"


def source_query(
    sync: SyncDefinition,
    model: Model,
    compiler: AudienceCompiler,
    audience: AudienceDefinition | None,
    dialect: str | None = None,
) -> tuple[exp.Select, list[Field]]:
    """SELECT __key, __hash, f_... for every row the sync should hold at the destination.

    `dialect` is the warehouse's, which picks the row hash (see `row_hash`)."""
    where = f"sync {sync.name!r}"
    alias = compiler.alias("s")
    key_column = sync.key or model.primary_key
    _check_column(model, key_column, f"{where} > key")

    fields = field_columns(list(sync.mapping))
    values = [
        mapped_value(sync.mapping[f.name], model, alias, f"{where} > mapping > {f.name}")
        for f in fields
    ]
    # Integer and text keys are planned as the source has them (a diff joins integers
    # several times faster than their text); other keys as text, which every engine
    # compares alike. Destinations always receive keys as text.
    key: exp.Expr = column(key_column, alias)
    if planned_key_type(sync, model) != model.column_types[key_column]:
        key = exp.cast(key, exp.DataType.Type.TEXT)
    mapped = exp.select(
        exp.alias_(key, KEY, quoted=True),
        *(exp.alias_(v, f.column, quoted=True) for v, f in zip(values, fields, strict=True)),
    ).from_(compiler.source(model, alias))
    has_key = exp.Not(this=exp.Is(this=column(key_column, alias), expression=exp.Null()))
    mapped = mapped.where(has_key)
    if audience is not None:
        mapped = mapped.where(compiler.audience_predicate(audience, alias))

    # Hashed over the mapped columns, as the planner hashes the state's (engines inline it).
    m = compiler.alias("m")
    select = exp.select(
        column(KEY, m),
        exp.alias_(row_hash([column(f.column, m) for f in fields], dialect), HASH, quoted=True),
        *(column(f.column, m) for f in fields),
    ).from_(exp.alias_(exp.Subquery(this=mapped), m, table=True, quoted=True))
    return select, fields


def _check_column(model: Model, name: str, where: str) -> None:
    if not model.has_column(name):
        known = ", ".join(sorted(model.column_types)) or "(none)"
        raise UnknownReferenceError(
            f"model {model.name!r} has no column {name!r}",
            where=where,
            hint=f"map a destination field to one of: {known}",
        )
