"""Values for the reference evaluator: operators on strings, numbers, booleans and times.

`comparison` turns an operator and a user's value into a two-valued test of one value from
the data (a null included); `aggregate` computes a measure over the values of some rows.
Strings ignore case; integers and decimals are compared exactly, floats as floats; time
operators read a date as midnight of its day (see `_reference_calendar`).

Part of `corral.audiences.evaluator`, and like it independent of the SQL compiler.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from corral.audiences._reference_calendar import (
    ONE_DAY,
    anniversary_days,
    moment,
    period_bounds,
    shift,
    up_to,
)
from corral.audiences.conditions import Duration
from corral.errors import DefinitionError
from corral.schema.model import ColumnType

Test = Callable[[Any], bool]

# The operators each type of value takes; `is_null` and `is_not_null` apply to all.
_OPERATORS: dict[str, frozenset[str]] = {
    "string": frozenset({"equals", "not_equals", "in", "not_in", "contains", "not_contains",
                         "starts_with", "ends_with"}),
    "number": frozenset({"equals", "not_equals", "in", "not_in", "greater_than", "at_least",
                         "less_than", "at_most", "between"}),
    "boolean": frozenset({"is_true", "is_false", "equals", "not_equals"}),
    "time": frozenset({"equals", "not_equals", "on", "before", "after", "between",
                       "greater_than", "at_least", "less_than", "at_most", "within_last",
                       "more_than_ago", "within_next", "in_period", "anniversary_within_next"}),
}  # fmt: skip
_FAMILY = {"string": "string", "integer": "number", "decimal": "number", "float": "number",
           "boolean": "boolean", "date": "time", "timestamp": "time"}  # fmt: skip
# A negative operator holds for a null, and otherwise when its positive one does not.
_NEGATIVE = {"not_equals": "equals", "not_in": "in", "not_contains": "contains"}


# -- values and operators -------------------------------------------------------------------


def check_operator(operator: str, value_type: ColumnType, where: str) -> None:
    """Refuse an operator that does not apply to a value of `value_type`."""
    allowed = _OPERATORS[_FAMILY[value_type]] | {"is_null", "is_not_null"}
    if operator not in allowed:
        raise DefinitionError(
            f"operator {operator!r} does not apply to a {value_type} value",
            where=where,
            hint="use one of: " + ", ".join(sorted(allowed)),
        )


def comparison(
    value_type: ColumnType, operator: str, value: Any, as_of: datetime, where: str
) -> Test:
    """A two-valued test of one value (possibly null) against `operator` and `value`."""
    check_operator(operator, value_type, where)
    if operator == "is_null":
        return lambda v: v is None
    if operator == "is_not_null":
        return lambda v: v is not None
    if operator in _NEGATIVE:
        positive = _positive(value_type, _NEGATIVE[operator], value, as_of, where)
        return lambda v: v is None or not positive(v)
    positive = _positive(value_type, operator, value, as_of, where)
    return lambda v: v is not None and positive(v)


def _positive(
    value_type: ColumnType, operator: str, value: Any, as_of: datetime, where: str
) -> Test:
    """The test of a non-null value, for operators other than the null and negative ones."""
    family = _FAMILY[value_type]
    if family == "string":
        return _string_test(operator, value, where)
    if family == "number":
        return _number_test(value_type, operator, value, where)
    if family == "boolean":
        wanted = {"is_true": True, "is_false": False}.get(operator)
        if wanted is None:
            wanted = _boolean(value, where)
        return lambda v: bool(v) is wanted
    return _time_test(value_type, operator, value, as_of, where)


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _string_test(operator: str, value: Any, where: str) -> Test:
    """Strings ignore case; contains / starts_with / ends_with match literal text."""
    texts = [_text(v, where).lower() for v in _values(value)]
    text = texts[0]
    tests: dict[str, Test] = {
        "equals": lambda v: v.lower() == text,
        "in": lambda v: v.lower() in texts,
        "contains": lambda v: text in v.lower(),
        "starts_with": lambda v: v.lower().startswith(text),
        "ends_with": lambda v: v.lower().endswith(text),
    }
    return tests[operator]


def _number_test(value_type: ColumnType, operator: str, value: Any, where: str) -> Test:
    numbers = [_number(v, value_type, where) for v in _values(value)]
    if operator == "between":
        low, high = numbers
        return lambda v: _cmp(v, low) >= 0 and _cmp(v, high) <= 0
    if operator == "in":
        return lambda v: any(_cmp(v, n) == 0 for n in numbers)
    signs: dict[str, Callable[[int], bool]] = {
        "equals": lambda c: c == 0,
        "greater_than": lambda c: c > 0,
        "at_least": lambda c: c >= 0,
        "less_than": lambda c: c < 0,
        "at_most": lambda c: c <= 0,
    }
    wanted = signs[operator]
    return lambda v: wanted(_cmp(v, numbers[0]))


def _cmp(data: Any, number: Decimal) -> int:
    """Compare a number from the data with a user's number: -1, 0 or 1.

    A float is compared as a float (the engines compare a double column with the value
    cast to double); integers, decimals and exact averages are compared exactly.
    """
    if isinstance(data, float):
        left: float | Fraction = data
        right: float | Fraction = float(number)
    else:
        left, right = Fraction(data), Fraction(number)
    return (left > right) - (left < right)


def _time_test(
    value_type: ColumnType, operator: str, value: Any, as_of: datetime, where: str
) -> Test:
    """Time operators, on the value as a moment (a date is midnight of its day)."""
    within = _relative_test(operator, value, as_of)
    if within is not None:
        return lambda v: within(moment(v))
    if operator == "anniversary_within_next":
        days = anniversary_days(as_of, int(value))
        return lambda v: (v.month, v.day) in days
    if operator == "between":
        low, high = (_when(v, value_type, where) for v in _values(value))
        since, until = moment(low), up_to(high)
        return lambda v: since <= moment(v) and until(moment(v))

    given = _when(value, value_type, where)
    start = moment(given)
    whole_day = not isinstance(given, datetime)
    tests: dict[str, Callable[[datetime], bool]] = {
        "equals": (lambda t: start <= t < start + ONE_DAY) if whole_day else (lambda t: t == start),
        "before": lambda t: t < start,
        "after": (lambda t: t >= start + ONE_DAY) if whole_day else (lambda t: t > start),
        "at_least": lambda t: t >= start,
        "less_than": lambda t: t < start,
        "at_most": (lambda t: t < start + ONE_DAY) if whole_day else (lambda t: t <= start),
    }
    tests["greater_than"] = tests["after"]
    tests["on"] = tests["equals"]
    chosen = tests[operator]
    return lambda v: chosen(moment(v))


def _relative_test(operator: str, value: Any, as_of: datetime) -> Callable[[datetime], bool] | None:
    """Times relative to the as-of time, or None for the other operators."""
    if operator == "in_period":
        start, end = period_bounds(str(value), as_of)
        return lambda t: start <= t < end
    if operator not in ("within_last", "more_than_ago", "within_next"):
        return None
    duration = Duration.model_validate(value)
    if operator == "within_last":
        low = shift(as_of, duration, -1)
        return lambda t: low < t <= as_of
    if operator == "within_next":
        high = shift(as_of, duration)
        return lambda t: as_of < t <= high
    limit = shift(as_of, duration, -1)
    return lambda t: t < limit


def _invalid(value: Any, value_type: str, where: str, hint: str) -> DefinitionError:
    return DefinitionError(f"{value!r} is not a valid {value_type} value", where=where, hint=hint)


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool | date | list | tuple | dict) or value is None:
        raise _invalid(value, "string", where, "write text")
    return str(value)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(value, "boolean", where, "write true or false")
    return value


def _number(value: Any, value_type: ColumnType, where: str) -> Decimal:
    """A user's number, exactly as written; integers must be whole."""
    if isinstance(value, bool | date | list | tuple | dict) or value is None:
        raise _invalid(value, value_type, where, "write a number, like 3 or 49.90")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _invalid(value, value_type, where, "write a number, like 3 or 49.90") from None
    if not number.is_finite() or (value_type == "integer" and number != int(number)):
        raise _invalid(value, value_type, where, "write a whole number, like 3")
    return number


def _when(value: Any, value_type: ColumnType, where: str) -> date | datetime:
    """A user's date or timestamp: 'YYYY-MM-DD' is a date, anything longer a timestamp."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    hint = "write a date as YYYY-MM-DD (or a timestamp as YYYY-MM-DD HH:MM:SS)"
    if not isinstance(value, str):
        raise _invalid(value, value_type, where, hint)
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        if value_type == "date":
            raise ValueError("a date column takes a date")
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise _invalid(value, value_type, where, hint) from None


# -- aggregation ----------------------------------------------------------------------------


def aggregate(function: str, values: Sequence[Any]) -> Any:
    """An aggregate over the values of the matching rows (one value per row, nulls kept)."""
    present = [v for v in values if v is not None]
    if function == "count":
        return len(values)
    if function == "count_distinct":
        return len(set(present))
    if function == "sum":
        return sum(present) if present else 0
    if not present:
        return None
    if function == "min":
        return min(present)
    if function == "max":
        return max(present)
    if any(isinstance(v, float) for v in present):
        return sum(present) / len(present)
    return Fraction(sum(Fraction(v) for v in present), len(present))


def measure_type(function: str, column_type: ColumnType | None, where: str) -> ColumnType:
    """The type of an aggregate's value, checking that the column suits the function."""
    if function in ("count", "count_distinct"):
        return "integer"
    assert column_type is not None
    if function in ("sum", "average") and _FAMILY[column_type] != "number":
        raise DefinitionError(
            f"'{function}' needs a number column, not a {column_type} one",
            where=where,
            hint="use count, count_distinct, min or max for other columns",
        )
    return "float" if function == "average" else column_type


def most_frequent(values: Iterable[Any]) -> Any:
    """The non-null value on the most rows; ties go to the smallest value."""
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)
