"""Server-side sessions for browsers.

A session's token (32 random bytes, url-safe) lives only in the browser's HttpOnly
cookie; the store keeps its SHA-256. A session ends when unused for `session_idle`, or
`session_lifetime` after sign-in, whichever comes first. Each session has its own CSRF
token, which the browser's script sends back in a header on every change.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from corral.governance.models import SessionRow
from corral.governance.records import NewSession, Session
from corral.governance.settings import Context, digest, new_id


class Sessions:
    def __init__(self, context: Context) -> None:
        self._context = context

    def start(
        self, user_id: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> NewSession:
        token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._context.now()
        session = Session(
            id=new_id(),
            user_id=user_id,
            csrf_hash=digest(csrf_token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self._context.settings.session_lifetime,
        )
        with self._context.engine.begin() as connection:
            connection.execute(
                sa.insert(SessionRow).values(
                    id=session.id,
                    token_hash=digest(token),
                    csrf_hash=session.csrf_hash,
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=session.expires_at,
                    ip=ip,
                    user_agent=(user_agent or "")[:400] or None,
                )
            )
        return NewSession(session=session, token=token, csrf_token=csrf_token)

    def resolve(self, token: str) -> Session | None:
        """The live session for a cookie value, its last-seen time refreshed; None if the
        token is unknown or the session expired (an expired one is deleted)."""
        now = self._context.now()
        query = sa.select(SessionRow).where(SessionRow.token_hash == digest(token))
        with self._context.engine.begin() as connection:
            row = connection.execute(query).first()
            if row is None:
                return None
            if self._expired(row, now):
                connection.execute(sa.delete(SessionRow).where(SessionRow.id == row.id))
                return None
            if now - row.last_seen_at >= self._context.settings.touch_every:
                connection.execute(
                    sa.update(SessionRow).where(SessionRow.id == row.id).values(last_seen_at=now)
                )
        return _session(row, last_seen_at=max(row.last_seen_at, now))

    @staticmethod
    def csrf_matches(session: Session, csrf_token: str | None) -> bool:
        return csrf_token is not None and hmac.compare_digest(digest(csrf_token), session.csrf_hash)

    def end(self, session_id: str) -> bool:
        with self._context.engine.begin() as connection:
            deleted = connection.execute(sa.delete(SessionRow).where(SessionRow.id == session_id))
            return deleted.rowcount > 0

    def end_all(self, user_id: str) -> int:
        with self._context.engine.begin() as connection:
            deleted = connection.execute(sa.delete(SessionRow).where(SessionRow.user_id == user_id))
            return int(deleted.rowcount)

    def count(self, user_id: str) -> int:
        query = sa.select(sa.func.count()).where(SessionRow.user_id == user_id)
        with self._context.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def purge_expired(self) -> int:
        """Delete every expired session; sessions also go one by one as they are used."""
        now = self._context.now()
        idle_cutoff = now - self._context.settings.session_idle
        with self._context.engine.begin() as connection:
            deleted = connection.execute(
                sa.delete(SessionRow).where(
                    sa.or_(SessionRow.expires_at <= now, SessionRow.last_seen_at <= idle_cutoff)
                )
            )
            return int(deleted.rowcount)

    def _expired(self, row: Any, now: datetime) -> bool:
        return (
            bool(now >= row.expires_at)
            or now - row.last_seen_at >= self._context.settings.session_idle
        )


def _session(row: Any, *, last_seen_at: datetime) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        csrf_hash=row.csrf_hash,
        created_at=row.created_at,
        last_seen_at=last_seen_at,
        expires_at=row.expires_at,
    )
