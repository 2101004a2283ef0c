"""Who is acting: a `Principal` (the caller of an endpoint) and an `Actor` (whom the
audit log names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.governance.permissions import ANY_SCOPE


@dataclass(frozen=True)
class Principal:
    """The caller: a user, through a session or one of their API tokens.

    `grants` are the union of the grants of the user's roles, as (permission, scope).
    """

    user_id: str
    email: str
    name: str
    roles: tuple[str, ...]
    via_token: bool = False
    token_id: str | None = None
    grants: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (permission, scope)

    def can(self, permission: str, scope: str | None = None) -> bool:
        """True if a grant covers `permission` in `scope`.

        Without a scope only a workspace-wide grant (scope "*") counts; with one, "*" or
        that exact scope does.
        """
        return (permission, ANY_SCOPE) in self.grants or (
            scope is not None and (permission, scope) in self.grants
        )

    def scopes(self, permission: str) -> frozenset[str]:
        """Every scope in which the caller holds `permission` ("*" among them if unscoped).

        List endpoints use it to show only the sources or destinations a caller may see.
        """
        return frozenset(scope for name, scope in self.grants if name == permission)


@dataclass(frozen=True)
class Actor:
    """Whom an audit entry names: a user (with the address they called from) or Corral."""

    user_id: str | None
    email: str | None
    ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, email=None, ip=None)

    @classmethod
    def of(cls, principal: Principal, ip: str | None = None) -> Actor:
        return cls(user_id=principal.user_id, email=principal.email, ip=ip)
