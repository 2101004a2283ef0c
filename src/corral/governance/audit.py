"""The audit log: who changed what, when, and from where. Append-only.

Every change that governance makes writes its entry in the same transaction as the change.
Other parts record theirs with `AuditLog.record`:

    governance.audit.record(actor, "audience.update", "audience", "VIPs", {"fields": ["name"]})

Details never keep a secret: any key that looks like one (password, secret, token, api
or private key, credential) has its value replaced by "***", at any depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from corral.errors import DefinitionError
from corral.governance.models import AuditRow
from corral.governance.principals import Actor
from corral.governance.records import AuditEntry, AuditPage

REDACTED = "***"
_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "private_key",
    "access_key",
    "credential",
)
MAX_PAGE = 500


def scrub(details: Any) -> Any:
    """`details` with every secret-looking value replaced by "***"."""
    if isinstance(details, Mapping):
        return {
            str(key): REDACTED if _looks_secret(str(key)) else scrub(value)
            for key, value in details.items()
        }
    if isinstance(details, list | tuple):
        return [scrub(item) for item in details]
    return details


def _looks_secret(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(word in lowered for word in _SECRET_WORDS)


def write_audit(
    connection: sa.Connection,
    at: datetime,
    actor: Actor | None,
    action: str,
    target_type: str,
    target_name: str | None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one entry inside the caller's transaction."""
    actor = actor or Actor.system()
    connection.execute(
        sa.insert(AuditRow).values(
            at=at,
            actor_id=actor.user_id,
            actor_email=actor.email,
            action=action,
            target_type=target_type,
            target_name=target_name,
            details=scrub(dict(details or {})),
            ip=actor.ip,
        )
    )


class AuditLog:
    def __init__(self, engine: sa.Engine, now: Callable[[], datetime]) -> None:
        self._engine = engine
        self._now = now

    def record(
        self,
        actor: Actor | None,
        action: str,
        target_type: str,
        target_name: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an entry; `action` reads "<thing>.<verb>", like "audience.update"."""
        with self._engine.begin() as connection:
            write_audit(connection, self._now(), actor, action, target_type, target_name, details)

    def entries(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        target_type: str | None = None,
        target: str | None = None,
    ) -> AuditPage:
        """Entries newest first. `actor` matches a user id or email; `action` matches
        exactly, or every action of a thing when it ends in "." ("audience.")."""
        limit = max(1, min(limit, MAX_PAGE))
        query = sa.select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(AuditRow.id < _parse_cursor(cursor))
        if actor is not None:
            query = query.where(
                sa.or_(
                    AuditRow.actor_id == actor, sa.func.lower(AuditRow.actor_email) == actor.lower()
                )
            )
        if action is not None:
            query = query.where(
                AuditRow.action.startswith(action, autoescape=True)
                if action.endswith(".")
                else AuditRow.action == action
            )
        if target_type is not None:
            query = query.where(AuditRow.target_type == target_type)
        if target is not None:
            query = query.where(AuditRow.target_name == target)

        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        entries = [_entry(row) for row in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(entries=entries, next_cursor=str(entries[-1].id) if more else None)


def _parse_cursor(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError:
        raise DefinitionError(
            f"the cursor {cursor!r} is not one this endpoint gave out",
            where="cursor",
            hint="pass the `next_cursor` of the previous page, or no cursor for the newest",
        ) from None


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor_id=row.actor_id,
        actor_email=row.actor_email,
        action=row.action,
        target_type=row.target_type,
        target_name=row.target_name,
        details=dict(row.details or {}),
        ip=row.ip,
    )
