"""What governance hands back: immutable records. None of them holds a password hash or a
token digest; `NewSession` and `NewToken` hold secret values once, at creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from corral.governance.principals import Principal


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    disabled: bool
    roles: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    builtin: bool
    grants: tuple[tuple[str, str], ...]  # (permission, scope), sorted
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Session:
    """A signed-in browser session, as resolved from its cookie."""

    id: str
    user_id: str
    csrf_hash: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class NewSession:
    """A session just started: `token` goes in the HttpOnly cookie, `csrf_token` to the
    browser's script. Neither is stored; only their SHA-256 digests are."""

    session: Session
    token: str
    csrf_token: str


@dataclass(frozen=True)
class Login:
    principal: Principal
    new_session: NewSession


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    prefix: str  # "crl_" and the next four characters, to recognize a token by
    user_id: str
    user_email: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class NewToken:
    """A token just created; `value` is shown once and never stored."""

    token: ApiToken
    value: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: str | None
    actor_email: str | None
    action: str
    target_type: str
    target_name: str | None
    details: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None  # pass back as `cursor` for the next, older page
