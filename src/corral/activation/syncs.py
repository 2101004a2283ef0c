"""Sync and destination definitions, as written in a workspace's YAML files.

`destinations/<name>.yaml`:

    name: CRM
    type: hubspot
    config:
      access_token: {env: HUBSPOT_TOKEN}

`syncs/<name>.yaml`:

    name: VIPs to CRM
    audience: VIPs            # or `model: users` to sync every row of a model
    destination: CRM
    mode: upsert
    key: user_id              # defaults to the parent model's primary key
    mapping:
      email: email            # destination field: source column
      firstname: first_name
      lifecycle_stage: {constant: customer}
      full_name: {template: "{first_name} {last_name}"}
    schedule: {every: 1 hour} # manual (default), {every: ...}, {cron: ..., time_zone: ...},
                              # {after: other sync}
    guards:
      max_removal_share: 0.2  # hold removals when more than 20% of members would go
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corral.destinations.base import Mode

_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$")
_DURATION_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConstantValue(_Strict):
    constant: str | int | float | bool | None


class TemplateValue(_Strict):
    """A text template over source columns: `"{first_name} {last_name}"`."""

    template: str

    @field_validator("template")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as error:
            raise ValueError(f"the template {value!r} does not parse: {error}") from None
        for _, name, spec, conversion in parts:
            if name is not None and (not name.isidentifier() or spec or conversion):
                raise ValueError(
                    f"template fields must be plain column names like {{first_name}}; "
                    f"{{{name}}} is not"
                )
        return value

    def columns(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.template) if name]

    def pieces(self) -> list[tuple[str, str | None]]:
        """(literal text, column or None) in order."""
        return [(text, name) for text, name, _, _ in string.Formatter().parse(self.template)]


MappedValue = Annotated[str | ConstantValue | TemplateValue, Field(union_mode="left_to_right")]


class IntervalSchedule(_Strict):
    every: str

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(
                f"{value!r} is not a duration; write a number and a unit, like '30 minutes'"
            )
        return value

    @property
    def seconds(self) -> int:
        match = _DURATION.match(self.every)
        assert match is not None
        return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


class CronSchedule(_Strict):
    cron: str
    time_zone: str = "UTC"


class AfterSchedule(_Strict):
    after: str


Schedule = Literal["manual"] | IntervalSchedule | CronSchedule | AfterSchedule


class Guards(_Strict):
    # Hold removals when the run would remove more than this share of delivered members.
    max_removal_share: float = Field(0.5, ge=0.0, le=1.0)
    # Hold removals when the audience is empty but members were delivered before.
    hold_when_empty: bool = True


class SyncDefinition(_Strict):
    name: str
    audience: str | None = None
    model: str | None = None
    destination: str
    mode: Mode
    key: str | None = None
    mapping: dict[str, MappedValue]
    schedule: Schedule = "manual"
    guards: Guards = Field(default_factory=lambda: Guards(max_removal_share=0.5))
    description: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SyncDefinition:
        if (self.audience is None) == (self.model is None):
            raise ValueError("a sync takes either `audience:` or `model:`, exactly one")
        if not self.mapping:
            raise ValueError("`mapping:` must map at least one destination field")
        return self

    def source_columns(self) -> list[str]:
        """Every source column the mapping reads, in first-use order."""
        seen: dict[str, None] = {}
        for value in self.mapping.values():
            if isinstance(value, str):
                seen[value] = None
            elif isinstance(value, TemplateValue):
                for column in value.columns():
                    seen[column] = None
        return list(seen)


class DestinationDefinition(_Strict):
    name: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
