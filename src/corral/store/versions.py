"""Audience versions: every saved definition of an audience, kept in the metadata store.

The workspace's YAML file is the audience; this table is its history. Each save through
the studio appends the YAML it wrote, numbered 1, 2, 3... per audience name, with who
saved it and when; a restore writes an old version's YAML back and appends it again as
the newest. Versions outlive their audience: a deleted audience's history stays.

    versions = AudienceVersions(store)
    versions.append("VIPs", yaml_text, author="ana@example.com", action="update")
    versions.list("VIPs")          # newest first
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from corral.errors import ConflictError
from corral.store.models import Base, UTCDateTime
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
