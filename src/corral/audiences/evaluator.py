"""A reference evaluator: audiences computed in plain Python over the rows of each model.

This is `docs/semantics.md` made executable. It shares nothing with the SQL compiler but
the condition tree and the schema, and the differential test checks that both select
the same members on random audiences over random data. It favours being obviously right
over being fast: every condition is evaluated row by row, for data of a few thousand rows.

    >>> members = evaluate(audience, schema, {"users": users, "purchases": purchases},
    ...                    as_of=datetime(2024, 6, 1))  # doctest: +SKIP

What it does not do:

- run the query of a model defined by `sql:`: pass the query's rows in `tables`, or get
  NotImplementedError;
- formula and `sql` traits are run through DuckDB on the model's rows, so their SQL must
  be written in DuckDB's dialect (the compiler's default `source_dialect`).

Where the semantics leave a choice to the warehouse, this evaluator makes one:

- strings are ordered by code point (a "C" collation) for min, max and most_frequent ties;
- averages of integers and decimals are exact fractions (engines may round them to doubles
  first); a float column is compared with the user's value as a float, like the engines do;
- an event's type matches its `event:` name exactly, case included.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pyarrow as pa
import sqlglot
from sqlglot import exp

from corral.audiences.conditions import (
    Aggregate,
    AudienceCondition,
    AudienceDefinition,
    Duration,
    EventCondition,
    Group,
    PropertyCondition,
    RelationCondition,
    SequenceCondition,
    TraitCondition,
    Window,
    parse_group,
)
from corral.errors import AudienceCycleError, DefinitionError, UnknownReferenceError
from corral.schema.model import ColumnType, TraitDefinition
from corral.schema.resolved import Model, Relation, Schema

Row = Mapping[str, Any]
Test = Callable[[Any], bool]

_NO_AUDIENCES: Mapping[str, AudienceDefinition] = MappingProxyType({})
ONE_DAY = timedelta(days=1)

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


def evaluate(
    audience: AudienceDefinition,
    schema: Schema,
    tables: Mapping[str, pl.DataFrame | pa.Table],
    *,
    as_of: datetime,
    audiences: Mapping[str, AudienceDefinition] = _NO_AUDIENCES,
    time_zone: str = "UTC",
) -> set[Any]:
    """The primary keys of the parent rows that are members of `audience`.

    `tables` holds the rows of each model (by model name) that the audience reads (for a
    model defined by `sql:`, the rows its query returns);
    `audiences` every audience it may refer to by name. A tz-aware `as_of` is converted
    to `time_zone`; a naive one is read as a wall-clock time there already.
    """
    evaluator = _Evaluator(schema, tables, local_time(as_of, time_zone), audiences)
    return evaluator.members(audience)


def evaluate_trait(
    trait: str,
    schema: Schema,
    tables: Mapping[str, pl.DataFrame | pa.Table],
    *,
    as_of: datetime,
    time_zone: str = "UTC",
) -> dict[Any, Any]:
    """Every parent row's value of a trait, by primary key; a list trait's is a frozenset."""
    evaluator = _Evaluator(schema, tables, local_time(as_of, time_zone), _NO_AUDIENCES)
    definition = schema.trait(trait, where=f"trait {trait}")
    values = evaluator.trait_values(definition, f"trait {trait}")
    parent = schema.parent
    rows = evaluator.rows(parent)
    return {row[parent.primary_key]: v for row, v in zip(rows, values, strict=True)}


def local_time(moment: datetime, time_zone: str) -> datetime:
    """A moment as a naive wall-clock time in `time_zone`."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


# -- calendar arithmetic ------------------------------------------------------------------


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def moment(value: date | datetime) -> datetime:
    """A date is compared as midnight at the start of its day."""
    return value if isinstance(value, datetime) else midnight(value)


def add_months(value: datetime, months: int) -> datetime:
    """Move the calendar: 31 March minus one month is the last day of February."""
    index = value.year * 12 + (value.month - 1) + months
    year, month = index // 12, index % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def shift(value: datetime, duration: Duration, sign: int = 1) -> datetime:
    amount = sign * duration.amount
    if duration.unit == "years":
        return add_months(value, 12 * amount)
    if duration.unit == "months":
        return add_months(value, amount)
    return value + timedelta(**{duration.unit: amount})


def period_bounds(period: str, as_of: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a calendar period; weeks start on Monday."""
    which, unit = period.split("_", 1)
    today = as_of.date()
    if unit == "week":
        monday = midnight(today - timedelta(days=today.weekday()))
        start = monday - timedelta(weeks=1) if which == "last" else monday
        return start, start + timedelta(weeks=1)

    length = {"month": 1, "quarter": 3, "year": 12}[unit]
    first_month = (today.month - 1) // length * length + 1
    start = datetime(today.year, first_month, 1)
    if which == "last":
        start = add_months(start, -length)
    return start, add_months(start, length)


def anniversary_days(as_of: datetime, days: int) -> set[tuple[int, int]]:
    """(month, day) of the as-of day and the `days` after it; 29 Feb falls on 28 Feb."""
    found: set[tuple[int, int]] = set()
    for offset in range(days + 1):
        day = as_of.date() + timedelta(days=offset)
        found.add((day.month, day.day))
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            found.add((2, 29))
    return found


def window_test(window: Window, as_of: datetime) -> Callable[[datetime], bool]:
    """Whether a time lies in a `within` window."""
    if window.kind in ("last", "next"):
        assert window.duration is not None
        if window.kind == "last":
            low = shift(as_of, window.duration, -1)
            return lambda t: low < t <= as_of
        high = shift(as_of, window.duration)
        return lambda t: as_of < t <= high
    if window.kind == "period":
        assert window.period is not None
        start, end = period_bounds(window.period, as_of)
        return lambda t: start <= t < end
    if window.kind == "before":
        assert window.end is not None
        bound = moment(window.end)
        return lambda t: t < bound

    assert window.start is not None
    since = moment(window.start)
    if window.kind == "since":
        return lambda t: since <= t
    assert window.end is not None
    until = _until(window.end)
    return lambda t: since <= t and until(t)


def _until(end: date | datetime) -> Callable[[datetime], bool]:
    """The upper end of a between: a date covers its whole day, a timestamp is itself."""
    if isinstance(end, datetime):
        return lambda t: t <= end
    next_day = midnight(end) + ONE_DAY
    return lambda t: t < next_day


# -- values and operators -------------------------------------------------------------------


def check_operator(operator: str, value_type: ColumnType, where: str) -> None:
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
        since, until = moment(low), _until(high)
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


# -- the evaluator --------------------------------------------------------------------------


class _Evaluator:
    """Evaluates conditions over every row of a model at once, as lists of booleans."""

    def __init__(
        self,
        schema: Schema,
        tables: Mapping[str, pl.DataFrame | pa.Table],
        as_of: datetime,
        audiences: Mapping[str, AudienceDefinition],
    ):
        self.schema = schema
        self.tables = tables
        self.as_of = as_of
        self.audiences = audiences
        self._frames: dict[str, pl.DataFrame] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], list[int]]] = {}
        self._members: dict[str, list[bool]] = {}

    def members(self, audience: AudienceDefinition) -> set[Any]:
        self._check_cycles(audience)
        parent = self.schema.parent
        mask = self.mask(audience.root, parent, audience.name)
        rows = self.rows(parent)
        return {row[parent.primary_key] for row, hit in zip(rows, mask, strict=True) if hit}

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
        events = self.event_model(node.model, node.event, here)
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

    # -- events and sequences ---------------------------------------------------------------

    def event_model(self, name: str | None, event: str | None, where: str) -> Model:
        """The named event model, or the only event model with a type column."""
        if name is not None:
            model = self.schema.model(name, where=where)
            if not model.definition.is_event_model:
                raise DefinitionError(
                    f"model {name!r} is not an event model",
                    where=where,
                    hint="name an event model, or use a relation condition",
                )
            return model
        typed = [m for m in self.schema.event_models() if m.definition.event.type]  # type: ignore[union-attr]
        if len(typed) != 1:
            raise DefinitionError(
                f"cannot tell which event model has events of type {event!r}",
                where=where,
                hint="name the event model with 'model:'",
            )
        return typed[0]

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
        events = self.event_model(node.model, node.steps[0].event, where)
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

    # -- traits -------------------------------------------------------------------------------

    def trait_condition(self, node: TraitCondition, where: str) -> list[bool]:
        trait = self.schema.trait(node.trait, where=where)
        if trait.aggregate == "list":
            return self.list_condition(trait, node, where)
        value_type = self.trait_type(trait, where)
        test = comparison(value_type, node.operator, node.value, self.as_of, where)
        return [test(v) for v in self.trait_values(trait, where)]

    def trait_type(self, trait: TraitDefinition, where: str) -> ColumnType:
        if trait.kind != "aggregate":
            if trait.type is None:
                raise DefinitionError(
                    f"trait {trait.name!r} is SQL, so its type must be declared",
                    where=where,
                    hint="add 'type:' to the trait",
                )
            return trait.type
        assert trait.aggregate is not None
        column_type = None
        if trait.column is not None:
            column_type = self.trait_target(trait, where).column_type(trait.column, where=where)
        if trait.aggregate in ("first", "last", "most_frequent", "list"):
            assert column_type is not None
            return column_type
        return measure_type(trait.aggregate, column_type, where)

    def trait_target(self, trait: TraitDefinition, where: str) -> Model:
        assert trait.relation is not None
        relation = self.schema.relation(self.schema.parent.name, trait.relation, where=where)
        return self.schema.model(relation.target)

    def trait_rows(self, trait: TraitDefinition, where: str) -> tuple[Model, list[list[int]]]:
        """The related model and, per parent row, its related rows passing `where` (by index)."""
        assert trait.relation is not None
        parent = self.schema.parent
        relation = self.schema.relation(parent.name, trait.relation, where=where)
        target = self.schema.model(relation.target)
        group = parse_group(trait.where) if trait.where else None
        passes = self.row_filter(target, group, None, where)
        per_parent = [
            [i for i in self.reach(relation, row) if passes[i]] for row in self.rows(parent)
        ]
        return target, per_parent

    def trait_values(self, trait: TraitDefinition, where: str) -> list[Any]:
        """The trait's value for every parent row."""
        if trait.formula is not None:
            return self.formula_values(trait.formula, where)
        target, per_parent = self.trait_rows(trait, where)
        if trait.sql is not None:
            return self.sql_values(trait.sql, target, per_parent, where)

        assert trait.aggregate is not None
        self.trait_type(trait, where)  # checks that the column suits the aggregate
        rows = self.rows(target)
        column = trait.column or ""
        if trait.aggregate in ("first", "last"):
            order = trait.order_by or self.time_column(target, where)
            target.column_type(order, where=where)
            return [self.ranked(trait.aggregate, target, [rows[i] for i in hits], column, order)
                    for hits in per_parent]  # fmt: skip
        if trait.aggregate == "most_frequent":
            return [most_frequent(rows[i][column] for i in hits) for hits in per_parent]
        if trait.aggregate == "list":
            return [frozenset(rows[i][column] for i in hits) - {None} for hits in per_parent]
        return [
            aggregate(trait.aggregate, [rows[i].get(column) for i in hits]) for hits in per_parent
        ]

    @staticmethod
    def ranked(which: str, model: Model, rows: list[Row], column: str, order: str) -> Any:
        """first / last: the value on the row with the smallest / largest order, then key."""
        ordered = [r for r in rows if r[order] is not None]
        if not ordered:
            return None
        key = model.primary_key
        pick = min if which == "first" else max
        return pick(ordered, key=lambda r: (r[order], r[key]))[column]

    def list_condition(
        self, trait: TraitDefinition, node: TraitCondition, where: str
    ) -> list[bool]:
        """A list trait holds any of (`in`) or none of (`not_in`) the values; null is empty."""
        if node.operator not in ("in", "not_in", "is_null", "is_not_null"):
            raise DefinitionError(
                f"a list trait takes in, not_in, is_null or is_not_null, not {node.operator!r}",
                where=where,
                hint="'in: [a, b]' keeps parents whose list holds any of the values",
            )
        value_type = self.trait_type(trait, where)
        lists = self.trait_values(trait, where)
        if node.operator in ("is_null", "is_not_null"):
            return [bool(values) is (node.operator == "is_not_null") for values in lists]
        holds = comparison(value_type, "in", node.value, self.as_of, where)
        return [any(holds(v) for v in values) is (node.operator == "in") for values in lists]

    def formula_values(self, formula: str, where: str) -> list[Any]:
        """A formula on the parent's columns, run by DuckDB on the parent rows."""
        parent = self.schema.parent
        frame = self.frame(parent).with_row_index("__corral_row")
        expression = _parse_sql(formula, where)
        if expression.find(exp.AggFunc) is not None:
            raise DefinitionError(
                "a formula trait works on one parent row and cannot aggregate",
                where=where,
                hint="use 'relation' with 'sql' for an aggregation over related rows",
            )
        query = exp.select("__corral_row", exp.alias_(expression, "__corral_value")).from_("f")
        found = dict(_run_duckdb(query.order_by("__corral_row"), frame))
        return [found.get(i) for i in range(frame.height)]

    def sql_values(
        self, sql: str, target: Model, per_parent: list[list[int]], where: str
    ) -> list[Any]:
        """A SQL aggregate over each parent's related rows, run by DuckDB; null without rows."""
        expression = _parse_sql(sql, where)
        if expression.find(exp.AggFunc) is None:
            raise DefinitionError(
                "a 'sql' trait must aggregate, like SUM(amount * quantity)",
                where=where,
                hint="for a per-row expression on the parent, use 'formula'",
            )
        indexes = [i for hits in per_parent for i in hits]
        owners = [p for p, hits in enumerate(per_parent) for _ in hits]
        frame = self.frame(target)[indexes].with_columns(
            pl.Series("__corral_parent", owners, dtype=pl.Int64)
        )
        query = (
            exp.select("__corral_parent", exp.alias_(expression, "__corral_value"))
            .from_("f")
            .group_by("__corral_parent")
        )
        found = dict(_run_duckdb(query, frame))
        return [found.get(p) for p in range(len(per_parent))]

    # -- audiences --------------------------------------------------------------------------------

    def audience_mask(self, name: str, where: str) -> list[bool]:
        if name not in self._members:
            audience = self._audience(name, where)
            self._members[name] = self.mask(audience.root, self.schema.parent, name)
        return self._members[name]

    def _audience(self, name: str, where: str) -> AudienceDefinition:
        if name not in self.audiences:
            raise UnknownReferenceError(
                f"there is no audience {name!r}",
                where=where,
                hint="audiences are: " + (", ".join(sorted(self.audiences)) or "(none)"),
            )
        return self.audiences[name]

    def _check_cycles(self, audience: AudienceDefinition) -> None:
        """Audiences that include each other in a loop are an error, before any evaluation."""

        def visit(name: str, root: Group, path: list[str]) -> None:
            for used in _audience_references(root):
                if used in path:
                    loop = " -> ".join([*path[path.index(used) :], used])
                    raise AudienceCycleError(
                        f"audiences include each other in a loop: {loop}",
                        where=f"{name} > audience {used}",
                        hint="remove one of the audience conditions in the loop",
                    )
                visit(used, self._audience(used, name).root, [*path, used])

        visit(audience.name, audience.root, [audience.name])

    def _parent_only(self, model: Model, what: str, where: str) -> None:
        if model.name != self.schema.parent.name:
            raise DefinitionError(
                f"{what} conditions apply to the parent model, not to {model.name!r}",
                where=where,
                hint=f"move the {what} condition out of the 'where' of a relation",
            )


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


def _audience_references(group: Group) -> list[str]:
    """Names of the audiences a condition tree refers to, wherever they appear."""
    found: list[str] = []
    for node in group.conditions:
        if isinstance(node, AudienceCondition):
            found.append(node.audience)
        elif isinstance(node, Group):
            found += _audience_references(node)
        elif isinstance(node, RelationCondition | EventCondition) and node.where is not None:
            found += _audience_references(node.where)
    return found


def _parse_sql(text: str, where: str) -> exp.Expr:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise DefinitionError(
            f"cannot parse SQL {text!r}: {error}", where=where, hint="write one SQL expression"
        ) from None


def _run_duckdb(query: exp.Select, frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Rows of `query` run by DuckDB over `frame`, which the query reads as table `f`."""
    connection = duckdb.connect()
    try:
        connection.register("f", frame.to_arrow())
        return connection.execute(query.sql(dialect="duckdb")).fetchall()
    finally:
        connection.close()
