"""API tokens for automation: `crl_` and 43 url-safe characters (32 random bytes).

The value is shown once, when the token is created; the store keeps its SHA-256, a
four-character prefix to recognize it by, its name, owner, optional expiry, last use and
revocation. A token acts as its owner, with the owner's grants at the time of each call.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from corral.errors import DefinitionError, UnknownReferenceError
from corral.governance.audit import write_audit
from corral.governance.models import ApiTokenRow, UserRow
from corral.governance.principals import Actor
from corral.governance.records import ApiToken, NewToken
from corral.governance.settings import Context, digest, new_id

TOKEN_PREFIX = "crl_"


class Tokens:
    def __init__(self, context: Context) -> None:
        self._context = context

    def create(
        self,
        user_id: str,
        name: str,
        *,
        expires_at: datetime | None = None,
        actor: Actor | None = None,
    ) -> NewToken:
        name = name.strip()
        if not name or len(name) > 200:
            raise DefinitionError(
                "a token needs a name of 1 to 200 characters",
                where="token",
                hint="name it after what uses it, like 'nightly dbt job'",
            )
        now = self._context.now()
        if expires_at is not None and expires_at <= now:
            raise DefinitionError(
                f"the expiry {expires_at.isoformat()} is in the past", where="token"
            )
        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = new_id()
        with self._context.engine.begin() as connection:
            connection.execute(
                sa.insert(ApiTokenRow).values(
                    id=token_id,
                    token_hash=digest(value),
                    prefix=value[: len(TOKEN_PREFIX) + 4],
                    name=name,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            details = {
                "owner": user_id,
                "expires_at": expires_at.isoformat() if expires_at else None,
            }
            write_audit(connection, now, actor, "token.create", "token", name, details)
        return NewToken(token=self.require(token_id), value=value)

    def list(self, user_id: str | None = None) -> list[ApiToken]:
        """Tokens, newest first; only `user_id`'s when given."""
        query = _tokens().order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
        if user_id is not None:
            query = query.where(ApiTokenRow.user_id == user_id)
        with self._context.engine.connect() as connection:
            return [_token(row) for row in connection.execute(query)]

    def get(self, token_id: str) -> ApiToken | None:
        with self._context.engine.connect() as connection:
            row = connection.execute(_tokens().where(ApiTokenRow.id == token_id)).first()
        return None if row is None else _token(row)

    def require(self, token_id: str) -> ApiToken:
        token = self.get(token_id)
        if token is None:
            raise UnknownReferenceError(
                f"there is no token {token_id!r}", where="tokens", hint="GET /tokens lists them"
            )
        return token

    def revoke(self, token_id: str, *, actor: Actor | None = None) -> ApiToken:
        token = self.require(token_id)
        now = self._context.now()
        with self._context.engine.begin() as connection:
            connection.execute(
                sa.update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            details = {"owner": token.user_id}
            write_audit(connection, now, actor, "token.revoke", "token", token.name, details)
        return self.require(token_id)

    def resolve(self, value: str) -> ApiToken | None:
        """The active token with this value, its last use recorded; None otherwise."""
        if not value.startswith(TOKEN_PREFIX):
            return None
        now = self._context.now()
        with self._context.engine.begin() as connection:
            row = connection.execute(
                _tokens().where(ApiTokenRow.token_hash == digest(value))
            ).first()
            if row is None or not _token(row).is_active(now):
                return None
            last = row.last_used_at
            if last is None or now - last >= self._context.settings.touch_every:
                connection.execute(
                    sa.update(ApiTokenRow).where(ApiTokenRow.id == row.id).values(last_used_at=now)
                )
        return _token(row)


def _tokens() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(
        ApiTokenRow.id,
        ApiTokenRow.name,
        ApiTokenRow.prefix,
        ApiTokenRow.user_id,
        UserRow.email.label("user_email"),
        ApiTokenRow.created_at,
        ApiTokenRow.expires_at,
        ApiTokenRow.last_used_at,
        ApiTokenRow.revoked_at,
    ).join(UserRow, UserRow.id == ApiTokenRow.user_id)


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        user_id=row.user_id,
        user_email=row.user_email,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
