"""The `Governance` facade: one object per metadata store that the API (and the CLI) use.

governance = Governance(store)            # store: an upgraded corral.store.Store
login = governance.login("ada@example.com", "correct horse battery", ip="10.0.0.7")
principal = governance.principal_for_session(login.new_session.token)[0]
principal.can("audiences:edit")
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from corral.errors import AuthenticationError
from corral.governance.audit import AuditLog, write_audit
from corral.governance.models import LoginFailureRow
from corral.governance.passwords import Passwords
from corral.governance.permissions import ADMIN
from corral.governance.principals import Actor, Principal
from corral.governance.records import Login, Session, User
from corral.governance.roles import Roles, grants_of
from corral.governance.secretbox import KEY_FILE, SecretBox, SecretStore
from corral.governance.sessions import Sessions
from corral.governance.settings import Context, GovernanceSettings
from corral.governance.tokens import Tokens
from corral.governance.users import Users, email_key
from corral.store.store import Store


class LoginThrottledError(AuthenticationError):
    """Too many failed sign-ins for one address from one client; `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, where="sign-in", hint=hint)


class Governance:
    """Users, roles, sessions, API tokens, secrets and the audit log of one metadata store.

    `workspace` locates the secret key file (`<workspace>/.corral/secret.key`); without
    it, a SQLite store's own `.corral` folder is used. `secret_key` overrides both and the
    `CORRAL_SECRET_KEY` variable. `clock` is for tests.
    """

    def __init__(
        self,
        store: Store,
        *,
        settings: GovernanceSettings | None = None,
        passwords: Passwords | None = None,
        workspace: Path | None = None,
        secret_key: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or GovernanceSettings()
        self._context = Context(
            engine=store.engine,
            now=clock or (lambda: datetime.now(UTC)),
            settings=self.settings,
            passwords=passwords or Passwords(),
        )
        self._workspace = workspace
        self._secret_key = secret_key
        self.users = Users(self._context)
        self.roles = Roles(self._context)
        self.sessions = Sessions(self._context)
        self.tokens = Tokens(self._context)
        self.audit = AuditLog(store.engine, self._context.now)
        self.secrets = SecretStore(store.engine, lambda: self.secret_box, self._context.now)

    def now(self) -> datetime:
        return self._context.now()

    @cached_property
    def secret_box(self) -> SecretBox:
        if self._secret_key is not None:
            return SecretBox.from_key(self._secret_key)
        return SecretBox.from_environment(self.key_file)

    @property
    def key_file(self) -> Path | None:
        if self._workspace is not None:
            return self._workspace / KEY_FILE
        url = self.store.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).resolve().parent / KEY_FILE.name
        return None

    # Signing in and out

    def login(
        self, email: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> Login:
        """Check a password and start a session; AuthenticationError if it is wrong (the
        same message whether or not the address exists), LoginThrottledError after too many
        failures for this address from this client."""
        client = ip or "unknown"
        self._refuse_if_throttled(email_key(email), client)

        user, stored = self.users.password_hash(email)
        check = self._context.passwords.verify(stored, password)
        if user is None or not check.ok or user.disabled:
            self._record_failure(email, client)
            raise AuthenticationError(
                "the email or password is wrong, or the user is disabled",
                where="sign-in",
                hint="ask an admin to reset your password",
            )

        self._forget_failures(email_key(email), client)
        self.users.record_login(user.id, check.rehash)
        new_session = self.sessions.start(user.id, ip=ip, user_agent=user_agent)
        self.audit.record(Actor(user.id, user.email, ip), "auth.login", "user", user.email)
        return Login(principal=self.principal_for_user(user), new_session=new_session)

    def verify_password(self, user_id: str, password: str) -> bool:
        """Whether `password` is the user's; for confirming a change of one's own password."""
        user = self.users.get(user_id)
        stored = None if user is None else self.users.password_hash(user.email)[1]
        return self._context.passwords.verify(stored, password).ok

    def logout(self, session: Session, *, actor: Actor | None = None) -> None:
        if self.sessions.end(session.id):
            self.audit.record(actor, "auth.logout", "user", actor.email if actor else None)

    # Who is calling

    def principal_for_session(self, token: str) -> tuple[Principal, Session]:
        session = self.sessions.resolve(token)
        if session is None:
            raise AuthenticationError("the session has expired or was ended", hint="sign in again")
        user = self.users.get(session.user_id)
        if user is None or user.disabled:
            self.sessions.end(session.id)
            raise AuthenticationError("the session's user is disabled or deleted")
        return self.principal_for_user(user), session

    def principal_for_token(self, value: str) -> Principal:
        token = self.tokens.resolve(value)
        user = None if token is None else self.users.get(token.user_id)
        if token is None or user is None or user.disabled:
            raise AuthenticationError(
                "the API token is unknown, expired or revoked, or its user is disabled",
                hint="create a new token (POST /api/v1/tokens) and send it as "
                "'Authorization: Bearer crl_...'",
            )
        return self.principal_for_user(user, token_id=token.id)

    def principal_for_user(self, user: User, *, token_id: str | None = None) -> Principal:
        with self.store.engine.connect() as connection:
            grants = grants_of(connection, user.roles)
        return Principal(
            user_id=user.id,
            email=user.email,
            name=user.name,
            roles=user.roles,
            via_token=token_id is not None,
            token_id=token_id,
            grants=grants,
        )

    # Throttling failed sign-ins

    def _refuse_if_throttled(self, key: str, ip: str) -> None:
        now = self.now()
        window = self.settings.login_window
        query = sa.select(sa.func.count(), sa.func.min(LoginFailureRow.at)).where(
            LoginFailureRow.email_key == key,
            LoginFailureRow.ip == ip,
            LoginFailureRow.at > now - window,
        )
        with self.store.engine.connect() as connection:
            failures, oldest = connection.execute(query).one()
        if failures >= self.settings.login_max_failures:
            wait = max(1, math.ceil((oldest + window - now).total_seconds()))
            raise LoginThrottledError(
                f"too many failed sign-ins for this address; try again in {wait} seconds",
                retry_after=wait,
                hint="ask an admin to reset your password if you have forgotten it",
            )

    def _record_failure(self, email: str, ip: str) -> None:
        now = self.now()
        forget_before = now - max(self.settings.login_window, timedelta(minutes=1))
        with self.store.engine.begin() as connection:
            connection.execute(
                sa.insert(LoginFailureRow).values(email_key=email_key(email), ip=ip, at=now)
            )
            connection.execute(sa.delete(LoginFailureRow).where(LoginFailureRow.at < forget_before))
            actor = Actor(user_id=None, email=None, ip=ip)
            write_audit(connection, now, actor, "auth.login_failed", "user", email.strip()[:320])

    def _forget_failures(self, key: str, ip: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                sa.delete(LoginFailureRow).where(
                    LoginFailureRow.email_key == key, LoginFailureRow.ip == ip
                )
            )


def bootstrap_admin(store: Store, email: str, password: str, *, name: str | None = None) -> bool:
    """Create the admin user `email` unless a user with that address exists; True if it
    was created. For `corral serve` on first start, and for scripts."""
    governance = Governance(store)
    if governance.users.by_email(email) is not None:
        return False
    governance.users.create(email, name or email.split("@")[0], password, [ADMIN])
    return True
