"""Local users: an email (unique whatever its case), a name, an argon2id password hash,
a disabled flag and their roles.

The last enabled admin cannot be disabled, deleted or lose the admin role, so a workspace
always has someone who can manage it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from corral.errors import ConflictError, DefinitionError, UnknownReferenceError
from corral.governance.audit import write_audit
from corral.governance.models import ApiTokenRow, RoleRow, SessionRow, UserRoleRow, UserRow
from corral.governance.permissions import ADMIN
from corral.governance.principals import Actor
from corral.governance.records import User
from corral.governance.settings import Context, new_id

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def email_key(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise DefinitionError(
            f"{email!r} is not an email address", where="user", hint="write it as name@host"
        )
    return email


class Users:
    def __init__(self, context: Context) -> None:
        self._context = context

    # Reading

    def list(self) -> list[User]:
        with self._context.engine.connect() as connection:
            rows = connection.execute(sa.select(UserRow).order_by(UserRow.email_key)).all()
            return [self._user(connection, row) for row in rows]

    def get(self, user_id: str) -> User | None:
        return self._one(UserRow.id == user_id)

    def by_email(self, email: str) -> User | None:
        return self._one(UserRow.email_key == email_key(email))

    def require(self, user_id: str) -> User:
        user = self.get(user_id)
        if user is None:
            raise UnknownReferenceError(
                f"there is no user {user_id!r}", where="users", hint="GET /users lists them"
            )
        return user

    def count(self) -> int:
        with self._context.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(UserRow)).scalar_one()
            )

    def password_hash(self, email: str) -> tuple[User | None, str | None]:
        """The user with `email` and their stored hash, for signing in."""
        query = sa.select(UserRow).where(UserRow.email_key == email_key(email))
        with self._context.engine.connect() as connection:
            row = connection.execute(query).first()
            if row is None:
                return None, None
            return self._user(connection, row), row.password_hash

    # Changing

    def create(
        self,
        email: str,
        name: str,
        password: str,
        roles: Sequence[str] = (),
        *,
        actor: Actor | None = None,
    ) -> User:
        email = check_email(email)
        password_hash = self._context.passwords.hash(password)
        user_id, now = new_id(), self._context.now()
        try:
            with self._context.engine.begin() as connection:
                connection.execute(
                    sa.insert(UserRow).values(
                        id=user_id,
                        email=email,
                        email_key=email_key(email),
                        name=name.strip() or email,
                        password_hash=password_hash,
                        disabled=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
                self._set_roles(connection, user_id, roles)
                details = {"name": name, "roles": sorted(roles)}
                write_audit(connection, now, actor, "user.create", "user", email, details)
        except IntegrityError:
            raise ConflictError(
                f"a user with the email {email!r} exists already", where="users"
            ) from None
        return self.require(user_id)

    def update(
        self,
        user_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        password: str | None = None,
        disabled: bool | None = None,
        roles: Sequence[str] | None = None,
        actor: Actor | None = None,
        keep_session: str | None = None,
    ) -> User:
        """Change a user. A new password or disabling ends the user's sessions (except
        `keep_session`, the one changing its own password)."""
        before = self.require(user_id)
        now = self._context.now()
        values: dict[str, Any] = {}
        changes: dict[str, Any] = {}
        if name is not None and name.strip() != before.name:
            values["name"] = changes["name"] = name.strip()
        if email is not None and check_email(email) != before.email:
            values["email"], values["email_key"] = email.strip(), email_key(email)
            changes["email"] = email.strip()
        if password is not None:
            values["password_hash"] = self._context.passwords.hash(password)
            changes["password"] = "changed"
        if disabled is not None and disabled != before.disabled:
            values["disabled"] = changes["disabled"] = disabled
        if roles is not None and sorted(set(roles)) != sorted(before.roles):
            changes["roles"] = sorted(set(roles))

        try:
            with self._context.engine.begin() as connection:
                connection.execute(
                    sa.update(UserRow).where(UserRow.id == user_id).values(updated_at=now, **values)
                )
                if "roles" in changes:
                    connection.execute(sa.delete(UserRoleRow).where(UserRoleRow.user_id == user_id))
                    self._set_roles(connection, user_id, changes["roles"])
                if "password" in changes or changes.get("disabled"):
                    ends = sa.delete(SessionRow).where(SessionRow.user_id == user_id)
                    if keep_session is not None and not changes.get("disabled"):
                        ends = ends.where(SessionRow.id != keep_session)
                    connection.execute(ends)
                self._keep_an_admin(connection, before)
                write_audit(connection, now, actor, "user.update", "user", before.email, changes)
        except IntegrityError:
            raise ConflictError(
                f"a user with the email {email!r} exists already", where="users"
            ) from None
        return self.require(user_id)

    def delete(self, user_id: str, *, actor: Actor | None = None) -> None:
        user = self.require(user_id)
        with self._context.engine.begin() as connection:
            # Explicit, so nothing depends on the database enforcing ON DELETE CASCADE.
            for table in (SessionRow, ApiTokenRow, UserRoleRow):
                connection.execute(sa.delete(table).where(table.user_id == user_id))
            connection.execute(sa.delete(UserRow).where(UserRow.id == user_id))
            self._keep_an_admin(connection, user)
            write_audit(connection, self._context.now(), actor, "user.delete", "user", user.email)

    def record_login(self, user_id: str, password_hash: str | None) -> None:
        values: dict[str, Any] = {"last_login_at": self._context.now()}
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self._context.engine.begin() as connection:
            connection.execute(sa.update(UserRow).where(UserRow.id == user_id).values(**values))

    # Helpers

    def _set_roles(self, connection: sa.Connection, user_id: str, roles: Iterable[str]) -> None:
        names = sorted(set(roles))
        if not names:
            return
        known = {
            row.name: row.name
            for row in connection.execute(sa.select(RoleRow.name).where(RoleRow.name.in_(names)))
        }
        missing = [name for name in names if name not in known]
        if missing:
            raise UnknownReferenceError(
                f"there is no role {', '.join(map(repr, missing))}",
                where="user roles",
                hint="GET /roles lists them; built-in roles are admin, editor and viewer",
            )
        connection.execute(
            sa.insert(UserRoleRow), [{"user_id": user_id, "role_name": name} for name in names]
        )

    def _keep_an_admin(self, connection: sa.Connection, before: User) -> None:
        if before.disabled or ADMIN not in before.roles:
            return
        admins = connection.execute(
            sa.select(sa.func.count())
            .select_from(UserRoleRow)
            .join(UserRow, UserRow.id == UserRoleRow.user_id)
            .where(UserRoleRow.role_name == ADMIN, UserRow.disabled.is_(False))
        ).scalar_one()
        if admins == 0:
            raise ConflictError(
                f"{before.email} is the last enabled admin",
                where="users",
                hint="give another user the admin role first",
            )

    def _one(self, condition: sa.ColumnElement[bool]) -> User | None:
        with self._context.engine.connect() as connection:
            row = connection.execute(sa.select(UserRow).where(condition)).first()
            return None if row is None else self._user(connection, row)

    @staticmethod
    def _user(connection: sa.Connection, row: Any) -> User:
        query = (
            sa.select(UserRoleRow.role_name)
            .where(UserRoleRow.user_id == row.id)
            .order_by(UserRoleRow.role_name)
        )
        return User(
            id=row.id,
            email=row.email,
            name=row.name,
            disabled=bool(row.disabled),
            roles=tuple(connection.execute(query).scalars()),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_login_at=row.last_login_at,
        )
