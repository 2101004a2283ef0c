"""Every endpoint under /api/v1, called as each role and anonymously.

The table below says which permission (and scope) each endpoint needs. Routes are read
from the app itself, so a new endpoint fails this test until it is added to the table.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from corral.governance import builtin_grants
from corral.store import Trigger
from tests.api.conftest import ANALYST_GRANTS, ROLES, Api

SOURCE = "source:warehouse"
CSV = "destination:CSV exports"
PUBLIC = "public"  # no sign-in needed
SIGNED_IN = "signed in"  # any caller; the endpoint decides per item
SOME = "some"  # the permission in some scope (lists that filter)
ANY = "*"  # a workspace-wide grant

# "METHOD path": (permission, scope) for the concrete path below.
EXPECTED: dict[str, tuple[str, str]] = {
    "GET /api/v1/health": (PUBLIC, ""),
    "GET /api/v1/sources": ("schema:view", SOURCE),
    "GET /api/v1/sources/warehouse": ("schema:view", SOURCE),
    "PUT /api/v1/sources/warehouse": ("sources:manage", SOURCE),
    "POST /api/v1/sources/warehouse/test": ("sources:manage", SOURCE),
    "GET /api/v1/sources/warehouse/tables": ("schema:view", SOURCE),
    "GET /api/v1/sources/warehouse/tables/{table}/columns": ("schema:view", SOURCE),
    "GET /api/v1/schema": ("schema:view", SOURCE),
    "PUT /api/v1/schema": ("schema:edit", SOURCE),
    "GET /api/v1/schema/models": ("schema:view", SOURCE),
    "GET /api/v1/schema/models/{name}": ("schema:view", SOURCE),
    "PUT /api/v1/schema/models/{model}/columns/{column}": ("schema:edit", SOURCE),
    "GET /api/v1/schema/relationships": ("schema:view", SOURCE),
    "GET /api/v1/schema/traits": ("schema:view", SOURCE),
    "POST /api/v1/schema/check": ("schema:view", SOURCE),
    "GET /api/v1/schema/models/{model}/columns/{column}/values": ("schema:view", SOURCE),
    "GET /api/v1/audiences/schema": ("audiences:view", SOURCE),
    "GET /api/v1/audiences": ("audiences:view", SOURCE),
    "POST /api/v1/audiences": ("audiences:edit", SOURCE),
    "GET /api/v1/audiences/{name}": ("audiences:view", SOURCE),
    "PUT /api/v1/audiences/{name}": ("audiences:edit", SOURCE),
    "DELETE /api/v1/audiences/{name}": ("audiences:edit", SOURCE),
    "GET /api/v1/audiences/{name}/sizes": ("audiences:view", SOURCE),
    "GET /api/v1/audiences/{name}/versions": ("audiences:view", SOURCE),
    "POST /api/v1/audiences/{name}/versions/{version}/restore": ("audiences:edit", SOURCE),
    "POST /api/v1/audiences/preview": ("audiences:view", SOURCE),
    "POST /api/v1/audiences/{name}/preview": ("audiences:view", SOURCE),
    "GET /api/v1/audiences/{name}/members": ("data:view", SOURCE),
    "GET /api/v1/audiences/{name}/sql": ("audiences:view", SOURCE),
    "GET /api/v1/destination-types": ("destinations:view", SOME),
    "GET /api/v1/destinations": ("destinations:view", SOME),
    "POST /api/v1/destinations": ("destinations:manage", ANY),
    "GET /api/v1/destinations/{name}": ("destinations:view", CSV),
    "PUT /api/v1/destinations/{name}": ("destinations:manage", CSV),
    "DELETE /api/v1/destinations/{name}": ("destinations:manage", CSV),
    "POST /api/v1/destinations/{name}/test": ("destinations:manage", CSV),
    "GET /api/v1/syncs": ("syncs:view", SOME),
    "POST /api/v1/syncs": ("syncs:manage", ANY),
    "GET /api/v1/syncs/{name}": ("syncs:view", CSV),
    "PUT /api/v1/syncs/{name}": ("syncs:manage", CSV),
    "DELETE /api/v1/syncs/{name}": ("syncs:manage", CSV),
    "POST /api/v1/syncs/{name}/run": ("syncs:run", CSV),
    "POST /api/v1/syncs/{name}/dry-run": ("syncs:run", CSV),
    "GET /api/v1/syncs/{name}/runs": ("syncs:view", CSV),
    "GET /api/v1/runs/{run_id}": ("syncs:view", CSV),
    "GET /api/v1/runs/{run_id}/logs": ("syncs:view", CSV),
    "GET /api/v1/syncs/{name}/rejected": ("data:view", SOURCE),
    # corral.api.routers.auth
    "POST /api/v1/auth/login": (PUBLIC, ""),
    "POST /api/v1/auth/logout": (SIGNED_IN, ""),
    "GET /api/v1/auth/me": (SIGNED_IN, ""),
    "GET /api/v1/users": ("users:manage", ANY),
    "POST /api/v1/users": ("users:manage", ANY),
    "GET /api/v1/users/{user_id}": (SIGNED_IN, ""),
    "PATCH /api/v1/users/{user_id}": (SIGNED_IN, ""),
    "DELETE /api/v1/users/{user_id}": ("users:manage", ANY),
    "GET /api/v1/roles": (SIGNED_IN, ""),
    "POST /api/v1/roles": ("users:manage", ANY),
    "GET /api/v1/roles/{name}": (SIGNED_IN, ""),
    "PATCH /api/v1/roles/{name}": ("users:manage", ANY),
    "DELETE /api/v1/roles/{name}": ("users:manage", ANY),
    "GET /api/v1/permissions": (SIGNED_IN, ""),
    "GET /api/v1/tokens": (SIGNED_IN, ""),
    "POST /api/v1/tokens": (SIGNED_IN, ""),
    "DELETE /api/v1/tokens/{token_id}": (SIGNED_IN, ""),
    "GET /api/v1/audit": ("audit:view", ANY),
}


def concrete(path: str, run_id: str) -> str:
    """The path with its parameters filled in: things that exist, or harmless unknowns."""
    if path.startswith(("/api/v1/users/", "/api/v1/roles/", "/api/v1/tokens/")):
        values = {"user_id": "no-such-user", "name": "no-such-role", "token_id": "no-such-token"}
    elif path.startswith("/api/v1/destinations/"):
        values = {"name": "CSV exports"}
    elif path.startswith(("/api/v1/syncs/", "/api/v1/runs/")):
        values = {"name": "VIPs to CSV", "run_id": run_id}
    else:
        values = {"name": "VIPs", "version": "1", "table": "users", "model": "users"}
        values["column"] = "country"
        if path.startswith("/api/v1/schema/models/{name}"):
            values["name"] = "users"
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path


def grants_of(role: str) -> set[tuple[str, str]]:
    if role == "analyst":
        return set(ANALYST_GRANTS)
    return set(builtin_grants(role))


def allowed(role: str, permission: str, scope: str) -> bool:
    if permission in (PUBLIC, SIGNED_IN):
        return True
    grants = grants_of(role)
    if scope == SOME:
        return any(p == permission for p, _ in grants)
    return (permission, ANY) in grants or (permission, scope) in grants


def api_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the app under /api/v1, included routers and all."""
    found = []
    for context in iter_route_contexts(api.app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path.startswith("/api/v1/"):
            found += [(method, context.path) for method in sorted(context.methods or ())]
    return found


def test_the_table_covers_every_endpoint(api: Api) -> None:
    routes = {f"{m} {p}" for m, p in api_routes(api)}
    assert sorted(routes - set(EXPECTED)) == [], "add these endpoints to EXPECTED"
    assert sorted(set(EXPECTED) - routes) == [], "these endpoints no longer exist"


def test_every_endpoint_as_every_role(api: Api) -> None:
    # A queued run gives /runs/{run_id} something to find (and makes run now answer 409).
    run_id = api.app.state.studio.store.enqueue_run("VIPs to CSV", Trigger.MANUAL)
    routes = sorted(api_routes(api), key=lambda r: r[1] == "/api/v1/auth/logout")
    problems: list[str] = []
    for method, path in routes:
        permission, scope = EXPECTED[f"{method} {path}"]
        url = concrete(path, run_id)
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None

        anonymous = api.anonymous.request(method, url, json=body).status_code
        if permission != PUBLIC and anonymous != 401:
            problems.append(f"anonymous {method} {url}: {anonymous}, not 401")
        if permission == PUBLIC and anonymous == 401:
            problems.append(f"anonymous {method} {url}: 401 on a public endpoint")

        for role in ROLES:
            status = api.client(role).request(method, url, json=body).status_code
            expected = allowed(role, permission, scope)
            if expected and status in (401, 403):
                problems.append(f"{role} {method} {url}: {status}, but it holds {permission}")
            if not expected and status != 403:
                problems.append(f"{role} {method} {url}: {status}, not 403 without {permission}")
            if status >= 500:
                problems.append(f"{role} {method} {url}: {status}")
    assert problems == []
