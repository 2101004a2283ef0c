"""Who is calling, and may they: the FastAPI dependencies every endpoint declares.

Every endpoint names the permission it needs:

    @router.get("/audiences")
    def list_audiences(principal: Principal = Depends(require("audiences:view"))): ...

    def destination_scope(request: Request) -> str:
        return f"destination:{request.path_params['name']}"

    @router.post("/destinations/{name}/test")
    def test(
        name: str,
        principal: Principal = Depends(require("destinations:manage", destination_scope)),
    ): ...

A caller is known by a session cookie (browsers; unsafe methods must also send the CSRF
token in `X-CSRF-Token`) or an API token (`Authorization: Bearer crl_...`; no CSRF).
Unknown callers get 401 (AuthenticationError); known callers without the grant get 403
(PermissionDeniedError), and so does a cookie-authenticated change without the right CSRF
token.

`require(permission)` without a scope needs a workspace-wide grant (scope "*"). With a
scope function, a grant for "*" or for exactly the scope it returns will do (a function
that returns None asks for "*"). `require_some(permission)` lets in anyone who holds the
permission in some scope: it is for list endpoints, which must then keep only the items
for which `principal.can(permission, scope)` holds.

The dependencies find governance at `request.app.state.governance`, a
`corral.governance.Governance(store)` that the app factory sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute, iter_route_contexts

from corral.errors import AuthenticationError, InternalError, PermissionDeniedError
from corral.governance import Governance, NewSession, Session
from corral.governance.permissions import PERMISSIONS
from corral.governance.principals import Actor, Principal

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "PERMISSIONS",
    "SESSION_COOKIE",
    "Principal",
    "ScopeOf",
    "actor",
    "clear_session_cookies",
    "client_ip",
    "current_principal",
    "current_session",
    "governance_of",
    "require",
    "require_some",
    "set_session_cookies",
    "unguarded_routes",
]

SESSION_COOKIE = "corral_session"
CSRF_COOKIE = "corral_csrf"  # readable by the page's script, which echoes it in the header
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ScopeOf = Callable[[Request], str | None]

# The dependencies that establish a caller; `unguarded_routes` looks for them.
_GUARDS: set[Callable[..., Any]] = set()


def governance_of(request: Request) -> Governance:
    governance = getattr(request.app.state, "governance", None)
    if not isinstance(governance, Governance):
        raise InternalError(
            "the API app has no governance: app.state.governance is not set",
            hint="create_app must set app.state.governance = Governance(store)",
        )
    return governance


def current_principal(request: Request) -> Principal:
    """The caller, from a bearer token or else the session cookie; AuthenticationError if
    neither is valid. Resolved once per request."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    governance = governance_of(request)

    token = _bearer_token(request)
    if token is not None:
        principal = governance.principal_for_token(token)
        session = None
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthenticationError(
                "sign in first",
                hint="POST /api/v1/auth/login, or send 'Authorization: Bearer crl_...'",
            )
        principal, session = governance.principal_for_session(cookie)
        if request.method in UNSAFE_METHODS:
            _check_csrf(request, session)

    request.state.principal = principal
    request.state.session = session
    return principal


_GUARDS.add(current_principal)


def current_session(request: Request) -> Session | None:
    """The caller's browser session; None when they came with an API token."""
    current_principal(request)
    session = getattr(request.state, "session", None)
    return session if isinstance(session, Session) else None


def require(permission: str, scope: ScopeOf | None = None) -> Callable[..., Principal]:
    """A dependency that returns the caller if they hold `permission` (in `scope`)."""
    _check_permission_name(permission)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        target = scope(request) if scope is not None else None
        if not principal.can(permission, target):
            where = f" for {target}" if target else ""
            raise PermissionDeniedError(
                f"{principal.email} lacks the permission {permission!r}{where} "
                f"({PERMISSIONS[permission]})",
                hint="ask an admin for a role that grants it",
            )
        return principal

    _GUARDS.add(dependency)
    return dependency


def require_some(permission: str) -> Callable[..., Principal]:
    """A dependency that returns the caller if they hold `permission` in any scope; the
    endpoint filters what it returns with `principal.can(permission, scope)`."""
    _check_permission_name(permission)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if not principal.scopes(permission):
            raise PermissionDeniedError(
                f"{principal.email} has no grant of {permission!r}",
                hint="ask an admin for a role that grants it",
            )
        return principal

    _GUARDS.add(dependency)
    return dependency


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def actor(request: Request, principal: Principal) -> Actor:
    """Whom the audit log names for a change made in this request."""
    return Actor.of(principal, client_ip(request))


def set_session_cookies(
    response: Response, request: Request, new_session: NewSession, governance: Governance
) -> None:
    """Give the browser its session cookie (HttpOnly) and CSRF cookie (readable)."""
    secure = governance.settings.secure_cookies
    if secure is None:
        secure = request.url.scheme == "https"
    lifetime = int(governance.settings.session_lifetime.total_seconds())
    for name, value, http_only in (
        (SESSION_COOKIE, new_session.token, True),
        (CSRF_COOKIE, new_session.csrf_token, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=lifetime,
            path="/",
            secure=secure,
            httponly=http_only,
            samesite="lax",
        )


def clear_session_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="lax")


def unguarded_routes(
    routes: Iterable[Any], *, public: Iterable[str] = ("POST /api/v1/auth/login",)
) -> list[str]:
    """Every "METHOD path" among `routes` (an app's `app.routes`) whose endpoint depends
    on no caller check (`current_principal`, `require`, `require_some`), except `public`.
    A test asserts that this is empty for the whole app."""
    allowed = set(public)
    found = []
    # Included routers are resolved lazily; their route contexts carry the full path and
    # the dependencies that `include_router(dependencies=...)` added.
    for context in iter_route_contexts(list(routes)):
        if not isinstance(context.original_route, APIRoute):
            continue
        if _guarded(getattr(context, "dependant", context.original_route.dependant)):
            continue
        path = context.path_format or context.path
        for method in sorted(context.methods or ()):
            if f"{method} {path}" not in allowed:
                found.append(f"{method} {path}")
    return found


def _guarded(dependant: Any) -> bool:
    return dependant.call in _GUARDS or any(_guarded(sub) for sub in dependant.dependencies)


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError(
            "the Authorization header is not 'Bearer <token>'",
            hint="send 'Authorization: Bearer crl_...' with a token from POST /api/v1/tokens",
        )
    return value.strip()


def _check_csrf(request: Request, session: Session) -> None:
    governance = governance_of(request)
    if not governance.sessions.csrf_matches(session, request.headers.get(CSRF_HEADER)):
        raise PermissionDeniedError(
            "the CSRF token is missing or wrong",
            hint=f"send the value of the {CSRF_COOKIE} cookie in the {CSRF_HEADER} header",
        )


def _check_permission_name(permission: str) -> None:
    if permission not in PERMISSIONS:
        raise InternalError(
            f"an endpoint requires the unknown permission {permission!r}",
            hint=f"use one of: {', '.join(PERMISSIONS)}",
        )
