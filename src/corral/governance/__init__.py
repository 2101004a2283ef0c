"""Governance: who may do what, and who did.

Users with argon2id passwords, roles with grants scoped to sources and destinations,
browser sessions with CSRF tokens, API tokens, secrets encrypted at rest and an
append-only audit log, all in the metadata store (`corral.store`). This package knows
nothing of HTTP; `corral.api.security` puts it in front of every endpoint.

    from corral.governance import Governance, bootstrap_admin

    bootstrap_admin(store, "ada@example.com", "correct horse battery")
    governance = Governance(store)
    governance.users.list()

See docs/security.md.
"""

from corral.governance.audit import AuditLog, scrub
from corral.governance.passwords import PasswordCheck, Passwords
from corral.governance.permissions import (
    ADMIN,
    ANY_SCOPE,
    BUILTIN_ROLES,
    EDITOR,
    PERMISSIONS,
    SCOPE_KINDS,
    VIEWER,
    builtin_grants,
    check_grant,
)
from corral.governance.principals import Actor, Principal
from corral.governance.records import (
    ApiToken,
    AuditEntry,
    AuditPage,
    Login,
    NewSession,
    NewToken,
    Role,
    Session,
    User,
)
from corral.governance.secretbox import KEY_ENV, SecretBox, SecretStore
from corral.governance.service import Governance, LoginThrottledError, bootstrap_admin
from corral.governance.settings import GovernanceSettings
from corral.governance.tokens import TOKEN_PREFIX

__all__ = [
    "ADMIN",
    "ANY_SCOPE",
    "BUILTIN_ROLES",
    "EDITOR",
    "KEY_ENV",
    "PERMISSIONS",
    "SCOPE_KINDS",
    "TOKEN_PREFIX",
    "VIEWER",
    "Actor",
    "ApiToken",
    "AuditEntry",
    "AuditLog",
    "AuditPage",
    "Governance",
    "GovernanceSettings",
    "Login",
    "LoginThrottledError",
    "NewSession",
    "NewToken",
    "PasswordCheck",
    "Passwords",
    "Principal",
    "Role",
    "SecretBox",
    "SecretStore",
    "Session",
    "User",
    "bootstrap_admin",
    "builtin_grants",
    "check_grant",
    "scrub",
]
