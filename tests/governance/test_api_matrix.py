"""Every endpoint of the auth router against every kind of caller.

Each row names an endpoint, how to build its request (after making what it acts on), and
the status each caller gets: admin, editor, viewer, a custom role (syncs to the CRM only),
and someone not signed in. Signed-in callers come with a session cookie and CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from corral.governance import ADMIN, EDITOR, VIEWER, Governance
from tests.governance.api import client, make_app, signed_in
from tests.governance.conftest import PASSWORD

CALLERS = ("admin", "editor", "viewer", "custom", "anonymous")
EMAILS = {
    "admin": "ada@example.com",
    "editor": "eddie@example.com",
    "viewer": "vic@example.com",
    "custom": "cass@example.com",
}


@dataclass(frozen=True)
class Target:
    user_id: str
    token_id: str
    role: str


Build = Callable[[Target], tuple[str, str, dict[str, Any] | None]]


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    statuses: tuple[int, int, int, int, int]  # admin, editor, viewer, custom, anonymous


CASES = [
    Case("me", lambda t: ("GET", "/auth/me", None), (200, 200, 200, 200, 401)),
    Case("logout", lambda t: ("POST", "/auth/logout", None), (204, 204, 204, 204, 401)),
    Case("list users", lambda t: ("GET", "/users", None), (200, 403, 403, 403, 401)),
    Case(
        "create user",
        lambda t: ("POST", "/users", {"email": "n@example.com", "password": PASSWORD}),
        (201, 403, 403, 403, 401),
    ),
    Case("get user", lambda t: ("GET", f"/users/{t.user_id}", None), (200, 404, 404, 404, 401)),
    Case(
        "update user",
        lambda t: ("PATCH", f"/users/{t.user_id}", {"name": "Renamed"}),
        (200, 404, 404, 404, 401),
    ),
    Case(
        "delete user",
        lambda t: ("DELETE", f"/users/{t.user_id}", None),
        (204, 403, 403, 403, 401),
    ),
    Case("list roles", lambda t: ("GET", "/roles", None), (200, 200, 200, 200, 401)),
    Case(
        "create role",
        lambda t: ("POST", "/roles", {"name": "new", "grants": [{"permission": "data:view"}]}),
        (201, 403, 403, 403, 401),
    ),
    Case("get role", lambda t: ("GET", f"/roles/{t.role}", None), (200, 200, 200, 200, 401)),
    Case(
        "update role",
        lambda t: ("PATCH", f"/roles/{t.role}", {"description": "changed"}),
        (200, 403, 403, 403, 401),
    ),
    Case("delete role", lambda t: ("DELETE", f"/roles/{t.role}", None), (204, 403, 403, 403, 401)),
    Case("permissions", lambda t: ("GET", "/permissions", None), (200, 200, 200, 200, 401)),
    Case("list tokens", lambda t: ("GET", "/tokens", None), (200, 200, 200, 200, 401)),
    Case("create token", lambda t: ("POST", "/tokens", {"name": "ci"}), (201, 201, 201, 201, 401)),
    Case(
        "revoke another's token",
        lambda t: ("DELETE", f"/tokens/{t.token_id}", None),
        (204, 404, 404, 404, 401),
    ),
    Case("audit", lambda t: ("GET", "/audit", None), (200, 403, 403, 403, 401)),
]


def prepare(governance: Governance) -> Target:
    governance.roles.create(
        "CRM syncs",
        "Manage and run syncs to the CRM",
        [("syncs:manage", "destination:CRM"), ("syncs:run", "destination:CRM")],
    )
    roles = {"admin": [ADMIN], "editor": [EDITOR], "viewer": [VIEWER], "custom": ["CRM syncs"]}
    for caller, email in EMAILS.items():
        governance.users.create(email, caller, PASSWORD, roles[caller])
    target = governance.users.create("target@example.com", "Target", PASSWORD, [VIEWER])
    token = governance.tokens.create(target.id, "target's token")
    governance.roles.create("temp", "a role to change", [("data:view", "*")])
    return Target(user_id=target.id, token_id=token.token.id, role="temp")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_endpoint_for_caller(governance: Governance, case: Case, caller: str) -> None:
    target = prepare(governance)
    app = make_app(governance)
    browser = client(app) if caller == "anonymous" else signed_in(app, EMAILS[caller])
    method, path, body = case.build(target)

    response = browser.request(method, f"/api/v1{path}", json=body)

    expected = case.statuses[CALLERS.index(caller)]
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert set(response.json()["error"]) >= {"message", "hint"}


def test_the_matrix_covers_every_route(governance: Governance) -> None:
    app = make_app(governance)
    target = Target(user_id="{user_id}", token_id="{token_id}", role="{name}")
    covered = {f"{m} /api/v1{p}" for m, p, _ in (case.build(target) for case in CASES)}
    routes = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert routes - {"POST /api/v1/auth/login"} == covered


def test_a_scoped_grant_is_checked_in_its_scope(governance: Governance) -> None:
    """`require` with a scope function, on a route built the way other routers build them."""
    from fastapi import Depends, Request

    from corral.api.security import Principal, require

    def destination(request: Request) -> str:
        return f"destination:{request.path_params['name']}"

    prepare(governance)
    app = make_app(governance)

    may_manage = Depends(require("syncs:manage", destination))

    @app.post("/api/v1/destinations/{name}/syncs")
    def manage(name: str, p: Principal = may_manage) -> str:
        return p.email

    custom, viewer, admin = (signed_in(app, EMAILS[c]) for c in ("custom", "viewer", "admin"))
    assert custom.post("/api/v1/destinations/CRM/syncs").status_code == 200
    denied = custom.post("/api/v1/destinations/Ads/syncs")
    assert denied.status_code == 403
    assert "syncs:manage" in denied.json()["error"]["message"]
    assert "destination:Ads" in denied.json()["error"]["message"]
    assert viewer.post("/api/v1/destinations/CRM/syncs").status_code == 403
    assert admin.post("/api/v1/destinations/Ads/syncs").status_code == 200
