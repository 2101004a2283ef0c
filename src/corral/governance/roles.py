"""Roles and their grants.

The built-in roles (admin, editor, viewer) are rows seeded by the migration so users can
be given them, but their grants are computed from `PERMISSIONS`, so a new permission
reaches admin without a migration; they cannot be changed or deleted. Custom roles store
their grants in `role_grants`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from corral.errors import ConflictError, DefinitionError, UnknownReferenceError
from corral.governance.audit import write_audit
from corral.governance.models import RoleGrantRow, RoleRow, UserRoleRow
from corral.governance.permissions import Grant, builtin_grants, check_grant, is_builtin
from corral.governance.principals import Actor
from corral.governance.records import Role
from corral.governance.settings import Context

_ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")


def check_role_name(name: str) -> str:
    if not _ROLE_NAME.fullmatch(name):
        raise DefinitionError(
            f"{name!r} is not a role name",
            where="role",
            hint="use 1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return name


def grants_of(connection: sa.Connection, roles: Iterable[str]) -> frozenset[Grant]:
    """The union of the grants of `roles`."""
    names = list(roles)
    grants: set[Grant] = set()
    for name in names:
        if is_builtin(name):
            grants |= builtin_grants(name.lower())
    query = sa.select(RoleGrantRow.permission, RoleGrantRow.scope).where(
        RoleGrantRow.role_name.in_(names)
    )
    grants |= {(row.permission, row.scope) for row in connection.execute(query)}
    return frozenset(grants)


class Roles:
    def __init__(self, context: Context) -> None:
        self._context = context

    def list(self) -> list[Role]:
        with self._context.engine.connect() as connection:
            rows = connection.execute(sa.select(RoleRow).order_by(RoleRow.name)).all()
            return [self._role(connection, row) for row in rows]

    def get(self, name: str) -> Role | None:
        with self._context.engine.connect() as connection:
            row = connection.execute(sa.select(RoleRow).where(RoleRow.name == name)).first()
            return None if row is None else self._role(connection, row)

    def require(self, name: str) -> Role:
        role = self.get(name)
        if role is None:
            raise UnknownReferenceError(
                f"there is no role {name!r}", where="roles", hint="GET /roles lists them"
            )
        return role

    def create(
        self,
        name: str,
        description: str = "",
        grants: Iterable[Grant] = (),
        *,
        actor: Actor | None = None,
    ) -> Role:
        check_role_name(name)
        if is_builtin(name) or self._exists_ignoring_case(name):
            raise ConflictError(f"a role named {name!r} exists already", where="roles")
        checked = sorted({check_grant(permission, scope) for permission, scope in grants})
        now = self._context.now()
        with self._context.engine.begin() as connection:
            connection.execute(
                sa.insert(RoleRow).values(
                    name=name,
                    description=description,
                    builtin=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._write_grants(connection, name, checked)
            details = {"description": description, "grants": [list(g) for g in checked]}
            write_audit(connection, now, actor, "role.create", "role", name, details)
        return self.require(name)

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        grants: Iterable[Grant] | None = None,
        actor: Actor | None = None,
    ) -> Role:
        role = self._custom(name, "changed")
        now = self._context.now()
        changes: dict[str, Any] = {}
        with self._context.engine.begin() as connection:
            if description is not None and description != role.description:
                changes["description"] = description
            if grants is not None:
                checked = sorted({check_grant(permission, scope) for permission, scope in grants})
                if tuple(checked) != role.grants:
                    changes["grants"] = [list(grant) for grant in checked]
                    connection.execute(
                        sa.delete(RoleGrantRow).where(RoleGrantRow.role_name == name)
                    )
                    self._write_grants(connection, name, checked)
            connection.execute(
                sa.update(RoleRow)
                .where(RoleRow.name == name)
                .values(
                    updated_at=now,
                    **({"description": description} if description is not None else {}),
                )
            )
            write_audit(connection, now, actor, "role.update", "role", name, changes)
        return self.require(name)

    def delete(self, name: str, *, actor: Actor | None = None) -> None:
        self._custom(name, "deleted")
        with self._context.engine.begin() as connection:
            holders = connection.execute(
                sa.select(sa.func.count()).where(UserRoleRow.role_name == name)
            ).scalar_one()
            if holders:
                raise ConflictError(
                    f"the role {name!r} is given to {holders} user(s)",
                    where="roles",
                    hint="take the role from them first (PATCH /users/{id} with their roles)",
                )
            connection.execute(sa.delete(RoleGrantRow).where(RoleGrantRow.role_name == name))
            connection.execute(sa.delete(RoleRow).where(RoleRow.name == name))
            write_audit(connection, self._context.now(), actor, "role.delete", "role", name)

    def _custom(self, name: str, verb: str) -> Role:
        role = self.require(name)
        if role.builtin:
            raise DefinitionError(
                f"the built-in role {name!r} cannot be {verb}",
                where="roles",
                hint="create a custom role with the grants you need",
            )
        return role

    def _exists_ignoring_case(self, name: str) -> bool:
        query = sa.select(RoleRow.name).where(sa.func.lower(RoleRow.name) == name.lower())
        with self._context.engine.connect() as connection:
            return connection.execute(query).first() is not None

    @staticmethod
    def _write_grants(connection: sa.Connection, name: str, grants: Sequence[Grant]) -> None:
        if grants:
            connection.execute(
                sa.insert(RoleGrantRow),
                [{"role_name": name, "permission": p, "scope": s} for p, s in grants],
            )

    @staticmethod
    def _role(connection: sa.Connection, row: Any) -> Role:
        return Role(
            name=row.name,
            description=row.description,
            builtin=bool(row.builtin),
            grants=tuple(sorted(grants_of(connection, [row.name]))),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
