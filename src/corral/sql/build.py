"""Small builders for the sqlglot trees Corral emits.

Every user value enters a tree through `literal`, so it is always an escaped literal,
never SQL text. Identifiers are always quoted.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlglot import exp

TRUE = exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(1))
FALSE = exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0))


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=True)


def literal(value: object) -> exp.Expr:
    """A typed SQL literal for a Python value (str, int, float, Decimal, bool, date, datetime)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, float):
        return exp.Literal.number(repr(value))
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")
        return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def add_time(expression: exp.Expr, amount: int, unit: str) -> exp.Expr:
    """`expression` plus `amount` units (MINUTE, HOUR, DAY, WEEK, MONTH, YEAR)."""
    return exp.TimestampAdd(
        this=expression, expression=exp.Literal.number(amount), unit=exp.Var(this=unit.upper())
    )


def conjunction(parts: list[exp.Expr]) -> exp.Expr:
    """AND of parts; TRUE for none."""
    return exp.and_(*parts) if parts else TRUE.copy()


def disjunction(parts: list[exp.Expr]) -> exp.Expr:
    """OR of parts; FALSE for none."""
    return exp.or_(*parts) if parts else FALSE.copy()


def negation(expression: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.paren(expression, copy=False))


def create_as(table: exp.Table, select: exp.Expr, *, replace: bool = False) -> exp.Create:
    """CREATE [OR REPLACE] TABLE `table` AS `select`."""
    return exp.Create(this=table, kind="TABLE", expression=select, replace=replace)
