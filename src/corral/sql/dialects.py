"""The dialects Corral renders to, and the few places where sqlglot's output is overridden.

Every target name maps to a sqlglot dialect class. Where sqlglot renders a construct
wrongly for an engine without raising, a subclass here fixes that one construct; each
override is covered by a golden file or a test on a real engine.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.spark import Spark
from sqlglot.dialects.tsql import TSQL

from corral.errors import ConfigurationError

# Targets whose SQL the test-suite executes on a real engine.
EXECUTED_DIALECTS = ("duckdb", "postgres", "spark")
# Targets rendered to golden files and re-parsed, but not executed here.
RENDERED_DIALECTS = ("snowflake", "bigquery", "redshift", "trino", "athena", "tsql", "greenplum")
ALL_DIALECTS = EXECUTED_DIALECTS + RENDERED_DIALECTS

# Names users may type for a dialect, mapped to the canonical target.
_ALIASES = {
    "databricks": "spark",
    "postgresql": "postgres",
    "sqlserver": "tsql",
    "synapse": "tsql",
    "fabric": "tsql",
    "mssql": "tsql",
}


def _tsql_ilike(self: Any, expression: exp.ILike) -> str:
    # T-SQL has no ILIKE; comparing lowered operands is correct under any collation.
    lowered = exp.Like(
        this=exp.Lower(this=expression.this.copy()),
        expression=exp.Lower(this=expression.expression.copy()),
    )
    return str(self.sql(lowered))


def _spark_timestamp_add(self: Any, expression: exp.TimestampAdd) -> str:
    # sqlglot renders DATE_ADD(unit, n, ts), which Spark reads as adding days to a date.
    unit = expression.unit.name if expression.unit else "DAY"
    interval = exp.Interval(
        this=exp.Literal.string(expression.expression.name), unit=exp.Var(this=unit)
    )
    return str(self.sql(exp.Add(this=expression.this.copy(), expression=interval)))


class CorralSpark(Spark):
    class Generator(Spark.Generator):  # type: ignore[misc, valid-type]
        TRANSFORMS: ClassVar[dict[Any, Any]] = {
            **Spark.Generator.TRANSFORMS,
            exp.TimestampAdd: _spark_timestamp_add,
        }


class CorralTSQL(TSQL):
    class Generator(TSQL.Generator):  # type: ignore[misc, valid-type]
        TRANSFORMS: ClassVar[dict[Any, Any]] = {**TSQL.Generator.TRANSFORMS, exp.ILike: _tsql_ilike}


def canonical_dialect(name: str) -> str:
    """The canonical target for a user-typed dialect name, or a clear error."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ALL_DIALECTS:
        raise ConfigurationError(
            f"unknown SQL dialect {name!r}",
            hint="use one of: " + ", ".join(ALL_DIALECTS) + ", databricks, sqlserver, fabric",
        )
    return key


def sqlglot_dialect(name: str) -> Dialect:
    """The sqlglot dialect object that renders SQL for a canonical target."""
    target = canonical_dialect(name)
    if target == "tsql":
        return CorralTSQL()
    if target == "spark":
        return CorralSpark()
    if target == "greenplum":
        # Greenplum speaks PostgreSQL 9.4-12 SQL; Corral uses nothing newer.
        return Dialect.get_or_raise("postgres")
    return Dialect.get_or_raise(target)


def render(expression: exp.Expr, dialect: str, *, pretty: bool = False) -> str:
    """Render an expression tree as SQL text for one target dialect."""
    return sqlglot_dialect(dialect).generate(expression, pretty=pretty)


def parse_one(sql: str, dialect: str) -> exp.Expr:
    """Parse SQL text in a target dialect (used to re-parse golden files)."""
    return sqlglot.parse_one(sql, dialect=sqlglot_dialect(dialect))
