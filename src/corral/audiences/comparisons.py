"""Operators, made into two-valued SQL predicates.

Every predicate built here is TRUE or FALSE, never NULL, so that negating a condition
gives exactly the complement of its members. A null value satisfies only the negative
operators (not_equals, not_in, not_contains) and is_null.
"""

from __future__ import annotations

import operator as operator_module
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from corral.audiences import timewindows as tw
from corral.audiences.conditions import Duration
from corral.errors import DefinitionError
from corral.schema.model import ColumnType
from corral.sql.build import FALSE, TRUE, conjunction, disjunction, literal

ONE_DAY = timedelta(days=1)
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "equals": operator_module.eq,
    "not_equals": operator_module.ne,
    "greater_than": operator_module.gt,
    "at_least": operator_module.ge,
    "less_than": operator_module.lt,
    "at_most": operator_module.le,
}
NEGATIVE = {"not_equals": "equals", "not_in": "in", "not_contains": "contains"}
NULL_OPERATORS = ("is_null", "is_not_null")
STRING_OPERATORS = (
    "equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with",
    "ends_with",
)  # fmt: skip
NUMBER_OPERATORS = (
    "equals", "not_equals", "in", "not_in", "greater_than", "at_least", "less_than", "at_most",
    "between",
)  # fmt: skip
BOOLEAN_OPERATORS = ("is_true", "is_false", "equals", "not_equals")
TIME_OPERATORS = (
    "equals", "not_equals", "before", "after", "on", "between", "greater_than", "at_least",
    "less_than", "at_most", "within_last", "more_than_ago", "within_next", "in_period",
    "anniversary_within_next",
)  # fmt: skip
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": STRING_OPERATORS,
    "integer": NUMBER_OPERATORS,
    "decimal": NUMBER_OPERATORS,
    "float": NUMBER_OPERATORS,
    "boolean": BOOLEAN_OPERATORS,
    "date": TIME_OPERATORS,
    "timestamp": TIME_OPERATORS,
}


def operators_for(column_type: ColumnType) -> tuple[str, ...]:
    return (*OPERATORS_BY_TYPE[column_type], *NULL_OPERATORS)


def check_operator(operator: str, column_type: ColumnType, where: str) -> None:
    allowed = operators_for(column_type)
    if operator not in allowed:
        raise DefinitionError(
            f"operator {operator!r} does not apply to a {column_type} value",
            where=where,
            hint=f"for {column_type} values use one of: {', '.join(allowed)}",
        )


def coerce(value: Any, column_type: ColumnType, where: str) -> Any:
    """A user value as the Python type of the column, or an error naming both."""
    try:
        return _coerce(value, column_type)
    except (ValueError, TypeError, InvalidOperation):
        raise DefinitionError(
            f"{value!r} is not a valid {column_type} value",
            where=where,
            hint=_TYPE_HINTS[column_type],
        ) from None


_TYPE_HINTS = {
    "string": "write text",
    "integer": "write a whole number, like 3",
    "decimal": "write a number, like 49.90",
    "float": "write a number, like 0.5",
    "boolean": "write true or false",
    "date": "write a date as YYYY-MM-DD",
    "timestamp": "write a date (YYYY-MM-DD) or a timestamp (YYYY-MM-DD HH:MM:SS)",
}


def _coerce(value: Any, column_type: ColumnType) -> Any:
    if isinstance(value, list | tuple | dict) or value is None:
        raise TypeError("not a single value")
    if column_type == "string":
        if isinstance(value, bool | date):
            raise TypeError("not text")
        return str(value)
    if column_type == "boolean":
        if not isinstance(value, bool):
            raise TypeError("not a boolean")
        return value
    if column_type in ("integer", "decimal", "float"):
        return _number(value, column_type)
    return _moment(value, column_type)


def _number(value: Any, column_type: ColumnType) -> int | Decimal | float:
    if isinstance(value, bool | date):
        raise TypeError("not a number")
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError("not finite")
    if column_type == "integer":
        if number != number.to_integral_value():
            raise ValueError("not whole")
        return int(number)
    return float(number) if column_type == "float" else number


def _moment(value: Any, column_type: ColumnType) -> date | datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError("not a date")
    text = value.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    if column_type == "date":
        raise ValueError("a date column takes a date")
    return datetime.fromisoformat(text).replace(tzinfo=None)


def compare(
    value_sql: exp.Expr,
    column_type: ColumnType,
    operator: str,
    value: Any,
    *,
    as_of: datetime,
    where: str,
) -> exp.Expr:
    """A two-valued predicate: `value_sql <operator> value`."""
    check_operator(operator, column_type, where)
    if operator == "is_null":
        return exp.Is(this=value_sql, expression=exp.null())
    if operator == "is_not_null":
        return exp.not_(exp.Is(this=value_sql, expression=exp.null()))
    if operator in NEGATIVE:
        positive = _positive(value_sql, column_type, NEGATIVE[operator], value, as_of, where)
        is_null = exp.Is(this=value_sql.copy(), expression=exp.null())
        return exp.or_(is_null, exp.not_(exp.paren(positive)))
    positive = _positive(value_sql, column_type, operator, value, as_of, where)
    not_null = exp.not_(exp.Is(this=value_sql.copy(), expression=exp.null()))
    return exp.and_(not_null, exp.paren(positive))


def _positive(
    value_sql: exp.Expr,
    column_type: ColumnType,
    operator: str,
    value: Any,
    as_of: datetime,
    where: str,
) -> exp.Expr:
    if column_type == "string":
        return _string(value_sql, operator, value, where)
    if column_type in ("date", "timestamp"):
        return _time(value_sql, column_type, operator, value, as_of, where)
    if column_type == "boolean":
        wanted = {"is_true": True, "is_false": False}.get(operator)
        wanted = coerce(value, "boolean", where) if wanted is None else wanted
        return exp.EQ(this=value_sql, expression=literal(wanted))
    return _ordered(value_sql, operator, [coerce(v, column_type, where) for v in _values(value)])


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _ordered(value_sql: exp.Expr, operator: str, values: list[Any]) -> exp.Expr:
    """Comparisons of numbers (and of exact times)."""
    first = literal(values[0])
    if operator == "in":
        return exp.In(this=value_sql, expressions=[literal(v) for v in values])
    if operator == "between":
        low, high = values
        return exp.Between(this=value_sql, low=literal(low), high=literal(high))
    node = {
        "equals": exp.EQ,
        "greater_than": exp.GT,
        "at_least": exp.GTE,
        "less_than": exp.LT,
        "at_most": exp.LTE,
    }[operator]
    return node(this=value_sql, expression=first)


def _string(value_sql: exp.Expr, operator: str, value: Any, where: str) -> exp.Expr:
    """Case-insensitive string operators: the column is lowered in SQL, the value here."""
    values = [coerce(v, "string", where).lower() for v in _values(value)]
    lowered = exp.Lower(this=value_sql)
    text = values[0]
    if operator == "equals":
        return exp.EQ(this=lowered, expression=literal(text))
    if operator == "in":
        return exp.In(this=lowered, expressions=[literal(v) for v in values])
    if operator == "contains":
        position = exp.StrPosition(this=lowered, substr=literal(text))
        return exp.GT(this=position, expression=exp.Literal.number(0))
    length = exp.Literal.number(len(text))
    side = exp.Left if operator == "starts_with" else exp.Right
    return exp.EQ(this=side(this=lowered, expression=length), expression=literal(text))


def _time(
    value_sql: exp.Expr,
    column_type: ColumnType,
    operator: str,
    value: Any,
    as_of: datetime,
    where: str,
) -> exp.Expr:
    if operator == "anniversary_within_next":
        return anniversary(value_sql, tw.anniversary_days(as_of, int(value)))
    if operator == "in":
        moments = [coerce(v, column_type, where) for v in _values(value)]
        return exp.In(this=value_sql, expressions=[literal(m) for m in moments])
    interval = time_interval(operator, value, column_type, as_of, where)
    return interval_predicate(value_sql, column_type, interval)


def time_interval(
    operator: str, value: Any, column_type: ColumnType, as_of: datetime, where: str
) -> tw.Interval:
    """The interval of times an operator on a date or timestamp accepts."""
    if operator in ("within_last", "more_than_ago", "within_next"):
        duration = Duration.model_validate(value)
        if operator == "within_last":
            return tw.Interval(tw.shift(as_of, duration, -1), as_of, False, True)
        if operator == "within_next":
            return tw.Interval(as_of, tw.shift(as_of, duration), False, True)
        return tw.Interval(None, tw.shift(as_of, duration, -1))
    if operator == "in_period":
        return tw.period_interval(str(value), as_of)
    if operator == "between":
        low, high = (coerce(v, column_type, where) for v in _values(value))
        end = high if isinstance(high, datetime) else tw.midnight(high) + ONE_DAY
        return tw.Interval(tw.as_datetime(low), end, True, isinstance(high, datetime))
    moment = coerce(value, column_type, where)
    start = tw.as_datetime(moment)
    whole_day = not isinstance(moment, datetime)
    if operator in ("equals", "on"):
        if whole_day:
            return tw.Interval(start, start + ONE_DAY)
        return tw.Interval(start, start, True, True)
    # A date value means its whole day: at_most is "on or before the day", greater_than
    # "after the day"; each operator is the complement of its opposite.
    if operator in ("before", "less_than"):
        return tw.Interval(None, start)
    if operator == "at_most":
        return (
            tw.Interval(None, start + ONE_DAY)
            if whole_day
            else tw.Interval(None, start, True, True)
        )
    if operator in ("after", "greater_than"):
        return tw.Interval(start + ONE_DAY, None) if whole_day else tw.Interval(start, None, False)
    return tw.Interval(start, None, True)  # at_least


def interval_predicate(
    value_sql: exp.Expr, column_type: ColumnType, interval: tw.Interval
) -> exp.Expr:
    """`value_sql` lies in the interval; a date column counts as midnight of its day."""
    parts: list[exp.Expr] = []
    if interval.low is not None:
        bound, inclusive = interval.low, interval.low_inclusive
        if column_type == "date":
            bound_value: date | datetime = _ceil_date(bound) if inclusive else bound.date()
        else:
            bound_value = bound
        node = exp.GTE if inclusive else exp.GT
        parts.append(node(this=value_sql.copy(), expression=literal(bound_value)))
    if interval.high is not None:
        bound, inclusive = interval.high, interval.high_inclusive
        if column_type == "date":
            bound_value = bound.date() if inclusive else _ceil_date(bound)
        else:
            bound_value = bound
        high_node = exp.LTE if inclusive else exp.LT
        parts.append(high_node(this=value_sql.copy(), expression=literal(bound_value)))
    return conjunction(parts)


def _ceil_date(moment: datetime) -> date:
    """The first day whose midnight is at or after `moment`."""
    day = moment.date()
    return day if moment == tw.midnight(day) else day + ONE_DAY


def anniversary(value_sql: exp.Expr, days: list[tuple[int, int]]) -> exp.Expr:
    """The month and day of `value_sql` fall on one of `days`, as ranges of MMDD codes."""
    month = exp.Extract(this=exp.Var(this="MONTH"), expression=value_sql.copy())
    day = exp.Extract(this=exp.Var(this="DAY"), expression=value_sql.copy())
    code = exp.Add(this=exp.Mul(this=month, expression=exp.Literal.number(100)), expression=day)
    ranges = _code_ranges([m * 100 + d for m, d in days])
    parts: list[exp.Expr] = [
        exp.Between(this=exp.paren(code.copy()), low=literal(lo), high=literal(hi))
        for lo, hi in ranges
    ]
    return exp.paren(disjunction(parts)) if parts else FALSE.copy()


def _code_ranges(ordered: list[int]) -> list[tuple[int, int]]:
    """Consecutive calendar days as (first, last) MMDD ranges; the year wrap splits one."""
    ranges: list[tuple[int, int]] = []
    for code in ordered:
        if ranges and code >= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def holds_for_missing(
    operator: str, value: Any, empty: int | None, column_type: ColumnType
) -> bool:
    """Whether the comparison holds for a parent with no related rows.

    `empty` is the value of the measure then: 0 for counts and sums, None otherwise.
    """
    if empty is None:
        return operator in NEGATIVE or operator == "is_null"
    if operator in NULL_OPERATORS:
        return operator == "is_not_null"
    values = [_coerce(v, column_type) for v in _values(value)]
    if operator == "in":
        return empty in values
    if operator == "not_in":
        return empty not in values
    if operator == "between":
        return bool(values[0] <= empty <= values[1])
    return bool(_ORDER[operator](empty, values[0]))


__all__ = ["FALSE", "TRUE", "compare", "holds_for_missing", "operators_for"]
