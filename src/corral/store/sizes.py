"""Audience sizes: every measured size of an audience, kept in the metadata store.

Previews in the studio, `corral audience preview` and `corral demo` each record what they
counted, with a hash of the definition it was counted on (`definition_hash`), so the
audiences list can show the latest size, mark it stale once the audience changes, and
draw its size over time.

    sizes = AudienceSizes(store)
    sizes.record(measured_size("VIPs", preview, definition_hash(vips, audiences), source))
    sizes.latest({"VIPs": definition_hash(vips, audiences)})["VIPs"].size
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from corral.audiences.conditions import AudienceCondition, AudienceDefinition, Group
from corral.audiences.preview import Preview
from corral.store.models import AudienceSizeRow
from corral.store.records import AudienceSize, SizeSource
from corral.store.store import Store


class AudienceSizes:
    """The `audience_sizes` table of a metadata store (migrated by `Store.upgrade`)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def record(self, size: AudienceSize) -> None:
        """Keep one measured size in the audience's size history.

        A measure that repeats the audience's newest one (same definition, size, parent rows
        and as-of time) within `REPEAT_WINDOW` of it only moves that entry's time, so
        opening an audience again and again does not grow the history.
        """
        with self.engine.begin() as connection:
            newest = connection.execute(
                sa.select(AudienceSizeRow)
                .where(AudienceSizeRow.audience == size.audience)
                .order_by(AudienceSizeRow.measured_at.desc(), AudienceSizeRow.id.desc())
                .limit(1)
            ).first()
            if newest is not None and _repeats(_audience_size(newest), size):
                connection.execute(
                    sa.update(AudienceSizeRow)
                    .where(AudienceSizeRow.id == newest.id)
                    .values(measured_at=size.measured_at, source=size.source.value)
                )
                return
            connection.execute(
                sa.insert(AudienceSizeRow).values(
                    audience=size.audience,
                    definition_hash=size.definition_hash,
                    size=size.size,
                    parent_rows=size.parent_rows,
                    as_of=size.as_of,
                    measured_at=size.measured_at,
                    source=size.source.value,
                )
            )

    def latest(self, current: Mapping[str, str] | None = None) -> dict[str, AudienceSize]:
        """The newest size of every audience measured, by audience name.

        With `current` (audience name to its definition hash now), an audience's newest size
        measured on that definition wins over newer ones measured on another (an old
        version, say), and audiences missing from `current` are left out.
        """
        newest = sa.select(
            AudienceSizeRow.id,
            sa.func.row_number()
            .over(
                partition_by=(AudienceSizeRow.audience, AudienceSizeRow.definition_hash),
                order_by=(AudienceSizeRow.measured_at.desc(), AudienceSizeRow.id.desc()),
            )
            .label("position"),
        ).subquery()
        query = (
            sa.select(AudienceSizeRow)
            .join(newest, newest.c.id == AudienceSizeRow.id)
            .where(newest.c.position == 1)
            .order_by(AudienceSizeRow.measured_at, AudienceSizeRow.id)
        )
        if current is not None:
            query = query.where(AudienceSizeRow.audience.in_(list(current)))

        def measured_now(size: AudienceSize) -> bool:
            return current is not None and current[size.audience] == size.definition_hash

        found: dict[str, AudienceSize] = {}
        with self.engine.connect() as connection:
            for row in connection.execute(query):  # oldest first, so the newest stays
                size = _audience_size(row)
                kept = found.get(size.audience)
                if kept is None or measured_now(size) or not measured_now(kept):
                    found[size.audience] = size
        return found

    def history(self, audience: str, *, limit: int = 100) -> list[AudienceSize]:
        """An audience's measured sizes, newest first."""
        query = (
            sa.select(AudienceSizeRow)
            .where(AudienceSizeRow.audience == audience)
            .order_by(AudienceSizeRow.measured_at.desc(), AudienceSizeRow.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_audience_size(row) for row in connection.execute(query)]

    def rename(self, old: str, new: str) -> None:
        """Carry an audience's sizes over to its new name."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(AudienceSizeRow)
                .where(AudienceSizeRow.audience == old)
                .values(audience=new)
            )


# Within this time of an audience's newest size, the same measure again is not new history.
REPEAT_WINDOW = timedelta(hours=1)


def _repeats(newest: AudienceSize, size: AudienceSize) -> bool:
    same = (newest.definition_hash, newest.size, newest.parent_rows, newest.as_of) == (
        size.definition_hash,
        size.size,
        size.parent_rows,
        size.as_of,
    )
    return same and timedelta(0) <= size.measured_at - newest.measured_at <= REPEAT_WINDOW


def _audience_size(row: Any) -> AudienceSize:
    return AudienceSize(
        audience=row.audience,
        definition_hash=row.definition_hash,
        size=row.size,
        parent_rows=row.parent_rows,
        as_of=row.as_of,
        measured_at=row.measured_at,
        source=SizeSource(row.source),
    )


def definition_hash(
    definition: AudienceDefinition, audiences: Mapping[str, AudienceDefinition]
) -> str:
    """A hash of what decides an audience's members: its condition tree and those of the
    audiences it refers to (by name, in `audiences`). The name and description are left
    out, so renaming or re-describing an audience keeps its size current."""
    return _tree_hash(definition, audiences, frozenset())


def _tree_hash(
    definition: AudienceDefinition,
    audiences: Mapping[str, AudienceDefinition],
    seen: frozenset[str],
) -> str:
    tree = definition.model_dump(mode="json", exclude={"name", "description"})
    referred = {}
    for name in sorted(_referenced(definition.conditions) - seen - {definition.name}):
        if name in audiences:
            referred[name] = _tree_hash(audiences[name], audiences, seen | {definition.name})
    text = json.dumps([tree, referred], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _referenced(conditions: Any) -> set[str]:
    found: set[str] = set()
    for condition in conditions:
        if isinstance(condition, AudienceCondition):
            found.add(condition.audience)
        elif isinstance(condition, Group):
            found |= _referenced(condition.conditions)
    return found


def measured_size(
    audience: str,
    result: Preview,
    definition: str,
    source: SizeSource,
    *,
    now: datetime | None = None,
) -> AudienceSize:
    """What the store keeps of a preview of `audience`, measured on `definition` (a hash)."""
    as_of = result.as_of
    if as_of.tzinfo is None:  # a wall-clock time in the workspace's time zone
        as_of = as_of.replace(tzinfo=ZoneInfo(result.time_zone))
    return AudienceSize(
        audience=audience,
        definition_hash=definition,
        size=result.size,
        parent_rows=result.parent_rows,
        as_of=as_of,
        measured_at=now or datetime.now(UTC),
        source=source,
    )
