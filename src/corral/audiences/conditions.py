"""The audience condition tree: what a marketer builds, as pydantic models.

The canonical form names each node's `kind`; YAML may use a shorter form, which is
normalized on load (see `docs/audiences.md`):

    - property: country          ->  {kind: property, column: country,
      in: [US, CA]                    operator: in, value: [US, CA]}

The JSON Schema of the canonical form is `AudienceDefinition.model_json_schema()`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Unit = Literal["minutes", "hours", "days", "weeks", "months", "years"]
Period = Literal[
    "this_week", "last_week", "this_month", "last_month",
    "this_quarter", "last_quarter", "this_year", "last_year",
]  # fmt: skip
Scalar = str | int | float | bool | date | datetime

# Operators and the shape of value each takes.
OPERATOR_VALUES: dict[str, str] = {
    "equals": "scalar",
    "not_equals": "scalar",
    "in": "list",
    "not_in": "list",
    "contains": "string",
    "not_contains": "string",
    "starts_with": "string",
    "ends_with": "string",
    "greater_than": "scalar",
    "at_least": "scalar",
    "less_than": "scalar",
    "at_most": "scalar",
    "between": "pair",
    "is_true": "none",
    "is_false": "none",
    "before": "scalar",
    "after": "scalar",
    "on": "scalar",
    "within_last": "duration",
    "more_than_ago": "duration",
    "within_next": "duration",
    "in_period": "period",
    "anniversary_within_next": "days",
    "is_null": "none",
    "is_not_null": "none",
}
Operator = Literal[
    "equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with",
    "ends_with", "greater_than", "at_least", "less_than", "at_most", "between", "is_true",
    "is_false", "before", "after", "on", "within_last", "more_than_ago", "within_next",
    "in_period", "anniversary_within_next", "is_null", "is_not_null",
]  # fmt: skip
AggregateFunction = Literal["count", "count_distinct", "sum", "average", "min", "max"]

_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+?)s?\s*$")
_UNIT_NAMES = {"minute": "minutes", "min": "minutes", "hour": "hours", "day": "days",
               "week": "weeks", "month": "months", "year": "years"}  # fmt: skip


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Duration(_Node):
    """An amount of calendar time: `7 days`, `1 hour`, `3 months`."""

    amount: int = Field(ge=0, le=100_000)
    unit: Unit

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return parse_duration(data)
        return data

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


def parse_duration(text: str) -> dict[str, Any]:
    match = _DURATION.match(text.lower())
    unit = _UNIT_NAMES.get(match.group(2)) if match else None
    if not match or unit is None:
        raise ValueError(
            f"cannot read {text!r} as a duration; write a whole number and a unit, "
            "like '7 days', '1 hour' or '3 months'"
        )
    return {"amount": int(match.group(1)), "unit": unit}


class Window(_Node):
    """A time window for rows of a model with a time column.

    kinds: `last` (the duration up to the as-of time), `next` (from the as-of time on),
    `between` (two dates or timestamps, both included), `since`, `before`, `period`
    (a calendar period such as this_month, in the workspace time zone).
    """

    kind: Literal["last", "next", "between", "since", "before", "period"]
    duration: Duration | None = None
    start: date | datetime | None = None
    end: date | datetime | None = None
    period: Period | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "kind" in data or len(data) != 1:
            return data
        ((key, value),) = data.items()
        if key in ("last", "next"):
            return {"kind": key, "duration": value}
        if key == "between" and isinstance(value, list | tuple) and len(value) == 2:
            return {"kind": "between", "start": value[0], "end": value[1]}
        if key == "since":
            return {"kind": "since", "start": value}
        if key == "before":
            return {"kind": "before", "end": value}
        if key == "period":
            return {"kind": "period", "period": value}
        return data

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Window:
        need = {"last": "duration", "next": "duration", "between": "start", "since": "start",
                "before": "end", "period": "period"}[self.kind]  # fmt: skip
        if getattr(self, need) is None:
            raise ValueError(f"a '{self.kind}' window needs '{need}'")
        if self.kind == "between" and self.end is None:
            raise ValueError("a 'between' window needs 'start' and 'end'")
        return self


def _pop_operator(data: dict[str, Any]) -> None:
    """Move a shorthand `<operator>: value` key into `operator` and `value`."""
    found = [k for k in data if k in OPERATOR_VALUES]
    if len(found) > 1:
        raise ValueError(f"a condition takes one operator, found {', '.join(found)}")
    if found and "operator" not in data:
        key = found[0]
        value = data.pop(key)
        data["operator"] = key
        if OPERATOR_VALUES[key] != "none":
            data["value"] = value
        elif value is not True:
            raise ValueError(f"write '{key}: true' (it takes no value)")


class Comparison(_Node):
    """An operator and its value, checked for shape here and for type against the column."""

    operator: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> Comparison:
        check_value_shape(self.operator, self.value)
        return self


def check_value_shape(operator: str, value: Any) -> None:
    shape = OPERATOR_VALUES[operator]
    if shape == "none" and value is not None:
        raise ValueError(f"'{operator}' takes no value")
    if shape in ("scalar", "string") and (value is None or isinstance(value, list | dict)):
        raise ValueError(f"'{operator}' takes one value")
    if shape == "string" and not isinstance(value, str):
        raise ValueError(f"'{operator}' takes text")
    if shape == "list" and (not isinstance(value, list | tuple) or not value):
        raise ValueError(f"'{operator}' takes a non-empty list of values")
    if shape == "pair" and (not isinstance(value, list | tuple) or len(value) != 2):
        raise ValueError(f"'{operator}' takes a list of two values: [low, high]")
    if shape == "duration":
        Duration.model_validate(value)
    if shape == "days" and (not isinstance(value, int) or isinstance(value, bool)
                            or not 0 <= value <= 366):  # fmt: skip
        raise ValueError(f"'{operator}' takes a whole number of days from 0 to 366")


class PropertyCondition(_Node):
    """A comparison on a column of the parent model (or of the model a `where` is on)."""

    kind: Literal["property"] = "property"
    column: str
    operator: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> PropertyCondition:
        check_value_shape(self.operator, self.value)
        return self


class Aggregate(_Node):
    """An aggregation of the matching rows: `count`, or a function of one column."""

    function: AggregateFunction
    column: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data == "count":
            return {"function": "count"}
        if isinstance(data, dict) and len(data) == 1 and "function" not in data:
            ((function, column),) = data.items()
            return {"function": function, "column": column}
        return data

    @model_validator(mode="after")
    def _column_needed(self) -> Aggregate:
        if self.function != "count" and self.column is None:
            raise ValueError(f"'{self.function}' needs a column")
        return self


class _RowsCondition(_Node):
    """Shared fields of conditions over related rows (relations and events)."""

    where: Group | None = None
    within: Window | None = None
    aggregate: Aggregate | None = None
    operator: Operator | None = None
    value: Any = None

    @model_validator(mode="after")
    def _measure(self) -> _RowsCondition:
        absent = getattr(self, "has", True) is False or getattr(self, "performed", True) is False
        if absent and self.operator is not None:
            raise ValueError(
                "'has: false' / 'performed: false' cannot take a count or aggregate; "
                "compare the count instead, like 'count: {equals: 0}'"
            )
        if self.aggregate is not None and self.operator is None:
            raise ValueError("an aggregate needs a comparison, like 'at_least: 500'")
        if self.operator is not None:
            check_value_shape(self.operator, self.value)
        return self


class RelationCondition(_RowsCondition):
    """Has (or has no) related rows where ..., or a count or aggregate of them compared."""

    kind: Literal["relation"] = "relation"
    relation: str
    has: bool = True


class EventCondition(_RowsCondition):
    """Performed (or did not perform) an event, with counts, windows and filters.

    `event` is a value of the event model's type column; `model` names the event model
    (optional when the schema has one event model with a type column).
    """

    kind: Literal["event"] = "event"
    event: str | None = None
    model: str | None = None
    performed: bool = True


class SequenceStep(_Node):
    """One step of a sequence: an event, optionally within a time after the previous step."""

    event: str | None = None
    where: Group | None = None
    within: Duration | None = None
    performed: bool = True


class SequenceCondition(_Node):
    """Events in order: each step after the previous one; only the last may be 'not performed'.

    `within` bounds when the first step happened.
    """

    kind: Literal["sequence"] = "sequence"
    model: str | None = None
    steps: tuple[SequenceStep, ...] = Field(min_length=2, max_length=8)
    within: Window | None = None

    @model_validator(mode="after")
    def _negative_last(self) -> SequenceCondition:
        if not self.steps[0].performed:
            raise ValueError("the first step of a sequence must be performed")
        if any(not s.performed for s in self.steps[:-1]):
            raise ValueError("only the last step of a sequence may be 'performed: false'")
        if any(s.within is None for s in self.steps[1:] if not s.performed):
            raise ValueError("a 'performed: false' step needs 'within', like '1 day'")
        return self


class TraitCondition(_Node):
    """A comparison on a trait of the parent model."""

    kind: Literal["trait"] = "trait"
    trait: str
    operator: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> TraitCondition:
        check_value_shape(self.operator, self.value)
        return self


class AudienceCondition(_Node):
    """Membership (or not) of another audience, by name."""

    kind: Literal["audience"] = "audience"
    audience: str
    member: bool = True


class Group(_Node):
    """All or any of a list of conditions, optionally negated; groups nest to any depth."""

    kind: Literal["group"] = "group"
    match: Literal["all", "any"] = "all"
    negate: bool = False
    conditions: tuple[Condition, ...] = ()


_KIND_KEYS = (
    ("property", "property"), ("relation", "relation"), ("event", "event"),
    ("sequence", "sequence"), ("trait", "trait"), ("audience", "audience"),
    ("conditions", "group"), ("not", "group"), ("match", "group"),
)  # fmt: skip


def _normalize(data: Any) -> Any:
    """Turn the YAML shorthand of one condition into its canonical form."""
    if not isinstance(data, dict) or "kind" in data:
        return data
    if "not" in data:
        if len(data) != 1:
            raise ValueError(
                "'not' stands alone: put the other keys inside the condition it negates"
            )
        return {"kind": "group", "negate": True, "conditions": [data["not"]]}
    data = dict(data)
    kind = next((kind for key, kind in _KIND_KEYS if key in data), None)
    if kind is None:
        raise ValueError(
            "cannot tell what kind of condition this is; start it with one of: property, "
            "relation, event, sequence, trait, audience, or a group (match + conditions)"
        )
    if kind == "property":
        data["column"] = data.pop("property")
    if kind == "event" and data.get("event") is None and "model" not in data:
        raise ValueError("an event condition names an 'event' type or a 'model'")
    if kind == "sequence":
        data["steps"] = data.pop("sequence")
    if kind in ("relation", "event") and "count" in data:
        count = data.pop("count")
        data["aggregate"] = {"function": "count"}
        if isinstance(count, dict):
            data.update(count)
    if kind != "group":
        _pop_operator(data)
    data["kind"] = kind
    return data


Condition = Annotated[
    PropertyCondition | RelationCondition | EventCondition | SequenceCondition | TraitCondition
    | AudienceCondition | Group,
    Field(discriminator="kind"),
]  # fmt: skip


def _normalize_tree(data: Any) -> Any:
    """Normalize a whole tree of shorthand conditions, depth first."""
    data = _normalize(data)
    if not isinstance(data, dict):
        return data
    if "conditions" in data:
        data["conditions"] = [_normalize_tree(c) for c in data["conditions"]]
    if isinstance(data.get("where"), dict):
        data["where"] = _normalize_tree({"conditions": [], **data["where"]})
    if data.get("kind") == "sequence":
        data["steps"] = [
            {**s, "where": _normalize_tree({"conditions": [], **s["where"]})}
            if isinstance(s, dict) and isinstance(s.get("where"), dict) else s
            for s in data["steps"]
        ]  # fmt: skip
    return data


class AudienceDefinition(_Node):
    """A named audience: its top-level group of conditions over the parent model."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    match: Literal["all", "any"] = "all"
    negate: bool = False
    conditions: tuple[Condition, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, dict) and "conditions" in data:
            data = dict(data)
            data["conditions"] = [_normalize_tree(c) for c in data["conditions"] or []]
        return data

    @property
    def root(self) -> Group:
        return Group(match=self.match, negate=self.negate, conditions=self.conditions)


def parse_group(data: Any) -> Group:
    """A group from its YAML or JSON form (used for `where` filters in traits)."""
    return Group.model_validate(_normalize_tree({"conditions": [], **data}))
