from __future__ import annotations

import pytest

from corral.errors import ConflictError, DefinitionError, UnknownReferenceError
from corral.governance import (
    ADMIN,
    EDITOR,
    PERMISSIONS,
    VIEWER,
    Governance,
    Principal,
    builtin_grants,
)
from tests.governance.conftest import PASSWORD

CRM = "destination:CRM"


def permissions_of(grants: frozenset[tuple[str, str]] | tuple[tuple[str, str], ...]) -> set[str]:
    assert all(scope == "*" for _, scope in grants)
    return {permission for permission, _ in grants}


def test_built_in_roles_grant_what_the_issue_says(governance: Governance) -> None:
    roles = {role.name: role for role in governance.roles.list()}

    assert {ADMIN, EDITOR, VIEWER} <= set(roles) and all(r.builtin for r in roles.values())
    assert permissions_of(roles[ADMIN].grants) == set(PERMISSIONS)
    assert permissions_of(roles[EDITOR].grants) == set(PERMISSIONS) - {
        "users:manage",
        "audit:view",
        "sources:manage",
    }
    assert permissions_of(roles[VIEWER].grants) == {
        "schema:view",
        "audiences:view",
        "destinations:view",
        "syncs:view",
    }
    assert set(governance.roles.require(VIEWER).grants) < builtin_grants(EDITOR)


@pytest.mark.parametrize("name", [ADMIN, EDITOR, VIEWER])
def test_built_in_roles_cannot_be_changed_or_deleted(governance: Governance, name: str) -> None:
    with pytest.raises(DefinitionError, match="built-in"):
        governance.roles.update(name, grants=[("users:manage", "*")])
    with pytest.raises(DefinitionError, match="built-in"):
        governance.roles.delete(name)
    with pytest.raises(ConflictError):
        governance.roles.create(name.upper(), "mine")


def test_a_custom_role_grants_in_its_scopes_only(governance: Governance) -> None:
    governance.roles.create(
        "CRM syncs",
        "Manage and run syncs to the CRM",
        [("syncs:manage", CRM), ("syncs:run", CRM), ("syncs:view", "*")],
    )
    user = governance.users.create("ada@example.com", "Ada", PASSWORD, ["CRM syncs"])

    principal = governance.principal_for_user(user)

    assert principal.can("syncs:manage", CRM)
    assert not principal.can("syncs:manage", "destination:Ads")
    assert not principal.can("syncs:manage")  # unscoped needs "*"
    assert principal.can("syncs:view") and principal.can("syncs:view", "destination:Ads")
    assert not principal.can("audiences:view")
    assert principal.scopes("syncs:run") == {CRM}


def test_grants_of_several_roles_add_up(governance: Governance) -> None:
    governance.roles.create("CRM data", grants=[("data:view", "source:warehouse")])
    user = governance.users.create("ada@example.com", "Ada", PASSWORD, [VIEWER, "CRM data"])

    principal = governance.principal_for_user(user)

    assert principal.roles == ("CRM data", VIEWER)
    assert principal.can("schema:view") and principal.can("data:view", "source:warehouse")
    assert not principal.can("audiences:edit")


@pytest.mark.parametrize(
    ("permission", "scope", "message"),
    [
        ("audiences:delete", "*", "no permission"),
        ("users:manage", "destination:CRM", "workspace-wide"),
        ("audit:view", "source:warehouse", "workspace-wide"),
        ("syncs:run", "source:warehouse", "does not fit"),
        ("data:view", "destination:CRM", "does not fit"),
        ("data:view", "source:", "does not fit"),
        ("data:view", "warehouse", "does not fit"),
    ],
)
def test_bad_grants_are_refused_with_the_fix(
    governance: Governance, permission: str, scope: str, message: str
) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:
        governance.roles.create("bad", grants=[(permission, scope)])
    assert caught.value.hint
    assert governance.roles.get("bad") is None


def test_custom_roles_change_and_the_change_reaches_principals(governance: Governance) -> None:
    governance.roles.create("analysts", "see data", [("data:view", "*")])
    user = governance.users.create("ada@example.com", "Ada", PASSWORD, ["analysts"])

    role = governance.roles.update(
        "analysts", description="audiences too", grants=[("audiences:view", "*")]
    )

    assert role.description == "audiences too"
    assert role.grants == (("audiences:view", "*"),)
    principal = governance.principal_for_user(user)
    assert principal.can("audiences:view") and not principal.can("data:view")


def test_role_names_are_unique_ignoring_case_and_checked(governance: Governance) -> None:
    governance.roles.create("Analysts")
    with pytest.raises(ConflictError):
        governance.roles.create("analysts")
    with pytest.raises(DefinitionError, match="not a role name"):
        governance.roles.create("-no")
    with pytest.raises(UnknownReferenceError):
        governance.roles.update("nobody", description="x")


def test_a_role_in_use_cannot_be_deleted(governance: Governance) -> None:
    governance.roles.create("analysts", grants=[("data:view", "*")])
    user = governance.users.create("ada@example.com", "Ada", PASSWORD, ["analysts"])

    with pytest.raises(ConflictError, match="given to 1 user"):
        governance.roles.delete("analysts")

    governance.users.update(user.id, roles=[VIEWER])
    governance.roles.delete("analysts")
    assert governance.roles.get("analysts") is None


def test_users_have_unique_emails_whatever_their_case(governance: Governance) -> None:
    user = governance.users.create("Ada@Example.com", "Ada", PASSWORD)
    assert governance.users.by_email("ada@example.COM") == user
    with pytest.raises(ConflictError, match="exists already"):
        governance.users.create("ADA@example.com", "Other Ada", PASSWORD)
    with pytest.raises(DefinitionError, match="not an email"):
        governance.users.create("ada", "Ada", PASSWORD)
    with pytest.raises(UnknownReferenceError, match="no role 'owner'"):
        governance.users.create("bob@example.com", "Bob", PASSWORD, ["owner"])
    assert governance.users.by_email("bob@example.com") is None


def test_the_last_enabled_admin_stays(governance: Governance) -> None:
    ada = governance.users.create("ada@example.com", "Ada", PASSWORD, [ADMIN])
    for change in ({"disabled": True}, {"roles": [EDITOR]}):
        with pytest.raises(ConflictError, match="last enabled admin"):
            governance.users.update(ada.id, **change)
    with pytest.raises(ConflictError, match="last enabled admin"):
        governance.users.delete(ada.id)
    assert governance.users.require(ada.id).roles == (ADMIN,)

    grace = governance.users.create("grace@example.com", "Grace", PASSWORD, [ADMIN])
    governance.users.delete(ada.id)
    assert [user.id for user in governance.users.list()] == [grace.id]


def test_principal_grants_without_scope_need_the_wildcard() -> None:
    principal = Principal(
        user_id="u", email="e", name="n", roles=(), grants=frozenset({("syncs:run", CRM)})
    )
    assert principal.can("syncs:run", CRM)
    assert not principal.can("syncs:run", None)
    assert not principal.can("syncs:run", "destination:crm")  # scopes match exactly
