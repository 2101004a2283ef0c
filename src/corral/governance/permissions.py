"""Permissions, scopes and the built-in roles.

A grant is a pair (permission, scope). The scope is `"*"` (every source or destination)
or one named thing: `"source:<name>"` for permissions about warehouse data and the
schema, `"destination:<name>"` for destinations and the syncs that feed them.
`users:manage` and `audit:view` are workspace-wide and take no other scope.
"""

from __future__ import annotations

from corral.errors import DefinitionError

ANY_SCOPE = "*"

# Every permission a grant can give, with what it allows.
PERMISSIONS: dict[str, str] = {
    "data:view": "See rows of model data: preview samples, audience members, rejected rows",
    "schema:view": "See models, relationships, traits and column settings",
    "schema:edit": "Change models, relationships, traits and column settings",
    "sources:manage": "Connect warehouses and change their settings",
    "audiences:view": "See audiences, their sizes, breakdowns and SQL",
    "audiences:edit": "Create, change and delete audiences",
    "destinations:view": "See destinations (never their secrets)",
    "destinations:manage": "Create, change, test and delete destinations",
    "syncs:view": "See syncs and their runs",
    "syncs:manage": "Create, change and delete syncs",
    "syncs:run": "Run syncs now, and dry runs",
    "users:manage": "Manage users, roles and other people's API tokens",
    "audit:view": "Read the audit log",
}

# The kind of thing a permission may be scoped to; absent: workspace-wide only.
SCOPE_KINDS: dict[str, str] = {
    "data:view": "source",
    "schema:view": "source",
    "schema:edit": "source",
    "sources:manage": "source",
    "audiences:view": "source",
    "audiences:edit": "source",
    "destinations:view": "destination",
    "destinations:manage": "destination",
    "syncs:view": "destination",
    "syncs:manage": "destination",
    "syncs:run": "destination",
}

ADMIN = "admin"
EDITOR = "editor"
VIEWER = "viewer"

_EDITOR_EXCLUDES = {"users:manage", "audit:view", "sources:manage"}
_VIEWER_PERMISSIONS = ("schema:view", "audiences:view", "destinations:view", "syncs:view")

BUILTIN_ROLES: dict[str, str] = {
    ADMIN: "Everything, including users, roles, sources and the audit log",
    EDITOR: "Build and activate: schema, audiences, destinations and syncs",
    VIEWER: "Read-only: schema, audiences, destinations and syncs (no row data)",
}

Grant = tuple[str, str]  # (permission, scope)


def builtin_grants(role: str) -> frozenset[Grant]:
    """The grants of a built-in role, always computed from `PERMISSIONS`, never stored."""
    if role == ADMIN:
        names: list[str] = list(PERMISSIONS)
    elif role == EDITOR:
        names = [name for name in PERMISSIONS if name not in _EDITOR_EXCLUDES]
    elif role == VIEWER:
        names = list(_VIEWER_PERMISSIONS)
    else:
        raise KeyError(role)
    return frozenset((name, ANY_SCOPE) for name in names)


def is_builtin(role: str) -> bool:
    return role.lower() in BUILTIN_ROLES


def check_grant(permission: str, scope: str) -> Grant:
    """The grant, or a DefinitionError saying what is wrong with it and what would fix it."""
    if permission not in PERMISSIONS:
        raise DefinitionError(
            f"there is no permission {permission!r}",
            where="grant",
            hint=f"use one of: {', '.join(PERMISSIONS)}",
        )
    if scope == ANY_SCOPE:
        return (permission, scope)

    kind, _, name = scope.partition(":")
    allowed = SCOPE_KINDS.get(permission)
    if allowed is None:
        raise DefinitionError(
            f"{permission!r} is workspace-wide and cannot be scoped to {scope!r}",
            where="grant",
            hint='give it the scope "*"',
        )
    if kind != allowed or not name.strip():
        raise DefinitionError(
            f"the scope {scope!r} does not fit {permission!r}",
            where="grant",
            hint=f'write "*" or "{allowed}:<name>", for example "{allowed}:{_EXAMPLES[allowed]}"',
        )
    return (permission, f"{kind}:{name.strip()}")


_EXAMPLES = {"source": "warehouse", "destination": "CRM"}
