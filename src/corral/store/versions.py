"""Audience versions: every saved definition of an audience, kept in the metadata store.

The workspace's YAML file is the audience; this table is its history. Each save through
the studio appends the YAML it wrote, numbered 1, 2, 3... per audience name, with who
saved it and when; a restore writes an old version's YAML back and appends it again as
the newest. Versions outlive their audience: a deleted audience's history stays.

    versions = AudienceVersions(store)
    versions.append("VIPs", yaml_text, author="ana@example.com", action="update")
    versions.list("VIPs")          # newest first

Measured sizes (`Store.record_size`) name the definition they were measured on by
`definition_hash`, and `measured_size` turns a preview into one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from corral.audiences.conditions import AudienceCondition, AudienceDefinition, Group
from corral.audiences.preview import Preview
from corral.errors import ConflictError
from corral.store.models import Base, UTCDateTime
from corral.store.records import AudienceSize, SizeSource
from corral.store.store import Store


class AudienceVersionRow(Base):
    __tablename__ = "audience_versions"
    __table_args__ = (
        sa.UniqueConstraint("audience", "version", name="uq_audience_versions_number"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    audience: Mapped[str] = mapped_column(sa.String(400))
    version: Mapped[int] = mapped_column(sa.Integer)
    definition: Mapped[str] = mapped_column(sa.Text)  # the YAML as written to the file
    author: Mapped[str | None] = mapped_column(sa.String(320))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(sa.String(16))  # create, update, restore, delete


@dataclass(frozen=True)
class AudienceVersion:
    audience: str
    version: int
    definition: str
    author: str | None
    saved_at: datetime
    action: str


class AudienceVersions:
    """The `audience_versions` table of a metadata store (migrated by `Store.upgrade`)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def append(
        self,
        audience: str,
        definition: str,
        *,
        author: str | None,
        action: str,
        now: datetime | None = None,
    ) -> AudienceVersion:
        """Record `definition` as the audience's next version; retried if two race."""
        for _ in range(5):
            try:
                with self.engine.begin() as connection:
                    number = 1 + (
                        connection.execute(
                            sa.select(sa.func.max(AudienceVersionRow.version)).where(
                                AudienceVersionRow.audience == audience
                            )
                        ).scalar()
                        or 0
                    )
                    version = AudienceVersion(
                        audience, number, definition, author, now or datetime.now(UTC), action
                    )
                    connection.execute(
                        sa.insert(AudienceVersionRow).values(
                            audience=audience,
                            version=number,
                            definition=definition,
                            author=author,
                            saved_at=version.saved_at,
                            action=action,
                        )
                    )
                return version
            except IntegrityError:
                continue
        raise ConflictError(
            f"audience {audience!r} is being saved by several people at once",
            hint="try again in a moment",
        )

    def list(self, audience: str, *, limit: int = 50, offset: int = 0) -> list[AudienceVersion]:
        """Versions of an audience, newest first."""
        query = (
            sa.select(AudienceVersionRow)
            .where(AudienceVersionRow.audience == audience)
            .order_by(AudienceVersionRow.version.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            return [_version(row) for row in connection.execute(query)]

    def get(self, audience: str, version: int) -> AudienceVersion | None:
        query = sa.select(AudienceVersionRow).where(
            AudienceVersionRow.audience == audience, AudienceVersionRow.version == version
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _version(row)

    def rename(self, old: str, new: str) -> None:
        """Carry an audience's history over to its new name, unless that name has one."""
        taken = sa.select(AudienceVersionRow.id).where(AudienceVersionRow.audience == new)
        with self.engine.begin() as connection:
            if connection.execute(taken.limit(1)).first() is None:
                connection.execute(
                    sa.update(AudienceVersionRow)
                    .where(AudienceVersionRow.audience == old)
                    .values(audience=new)
                )


def _version(row: Any) -> AudienceVersion:
    return AudienceVersion(
        row.audience, row.version, row.definition, row.author, row.saved_at, row.action
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
