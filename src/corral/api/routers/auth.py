"""Signing in and out, users, roles, permissions, API tokens and the audit log.

Mounted under /api/v1. Every change writes an audit entry (in the same transaction, by
`corral.governance`). No response ever holds a password, a password hash or a token's
value, except the value of a new API token, once, in the answer that creates it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, SecretStr

from corral.api.errors import ERROR_RESPONSES, ErrorBody, error_response
from corral.api.security import (
    PERMISSIONS,
    Principal,
    actor,
    clear_session_cookies,
    client_ip,
    current_principal,
    current_session,
    governance_of,
    require,
    set_session_cookies,
)
from corral.errors import AuthenticationError, PermissionDeniedError, UnknownReferenceError
from corral.governance import (
    SCOPE_KINDS,
    ApiToken,
    AuditEntry,
    Governance,
    LoginThrottledError,
    Role,
    User,
)

router = APIRouter(responses=ERROR_RESPONSES)

Caller = Annotated[Principal, Depends(current_principal)]
Manager = Annotated[Principal, Depends(require("users:manage"))]
Auditor = Annotated[Principal, Depends(require("audit:view"))]


def _governance(request: Request) -> Governance:
    return governance_of(request)


GovernanceDep = Annotated[Governance, Depends(_governance)]

# Models


class GrantModel(BaseModel):
    permission: str = Field(examples=["syncs:manage"])
    scope: str = Field(
        default="*",
        description='"*" for every source or destination, or "source:<name>" / '
        '"destination:<name>"',
        examples=["destination:CRM"],
    )


class PrincipalOut(BaseModel):
    user_id: str = Field(examples=["5f0c6a9e-7d8b-4f57-9a4e-2b1d3c4e5f60"])
    email: str = Field(examples=["ada@example.com"])
    name: str = Field(examples=["Ada"])
    roles: list[str] = Field(examples=[["editor"]])
    via_token: bool = Field(description="True when the caller came with an API token")
    grants: list[GrantModel]


class LoginRequest(BaseModel):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: SecretStr = Field(max_length=1024, examples=["correct horse battery staple"])


class LoginResponse(BaseModel):
    principal: PrincipalOut
    csrf_token: str = Field(
        description="Send it in the X-CSRF-Token header with every POST, PUT, PATCH and "
        "DELETE; it is also in the readable corral_csrf cookie"
    )
    expires_at: datetime = Field(description="When the session ends at the latest")


class UserOut(BaseModel):
    id: str = Field(examples=["5f0c6a9e-7d8b-4f57-9a4e-2b1d3c4e5f60"])
    email: str = Field(examples=["ada@example.com"])
    name: str = Field(examples=["Ada"])
    disabled: bool
    roles: list[str] = Field(examples=[["editor"]])
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class UserCreate(BaseModel):
    email: str = Field(max_length=320, examples=["grace@example.com"])
    name: str = Field(default="", max_length=200, examples=["Grace"])
    password: SecretStr = Field(
        min_length=10, max_length=1024, examples=["a long passphrase of words"]
    )
    roles: list[str] = Field(default_factory=list, examples=[["viewer"]])


class UserUpdate(BaseModel):
    """Only the fields given change. A user may change their own name and password (with
    `current_password`); everything else needs users:manage."""

    name: str | None = Field(default=None, max_length=200, examples=["Grace Hopper"])
    email: str | None = Field(default=None, max_length=320)
    password: SecretStr | None = Field(default=None, min_length=10, max_length=1024)
    current_password: SecretStr | None = Field(
        default=None, max_length=1024, description="Required to change your own password"
    )
    disabled: bool | None = None
    roles: list[str] | None = Field(default=None, examples=[["editor", "CRM syncs"]])


class RoleOut(BaseModel):
    name: str = Field(examples=["CRM syncs"])
    description: str = Field(examples=["Manage and run syncs to the CRM"])
    builtin: bool
    grants: list[GrantModel]
    created_at: datetime
    updated_at: datetime


class RoleCreate(BaseModel):
    name: str = Field(max_length=64, examples=["CRM syncs"])
    description: str = Field(default="", max_length=2000)
    grants: list[GrantModel] = Field(
        default_factory=list,
        examples=[
            [
                {"permission": "syncs:manage", "scope": "destination:CRM"},
                {"permission": "syncs:run", "scope": "destination:CRM"},
            ]
        ],
    )


class RoleUpdate(BaseModel):
    description: str | None = Field(default=None, max_length=2000)
    grants: list[GrantModel] | None = Field(
        default=None, description="The role's grants, all of them (they replace the old ones)"
    )


class PermissionOut(BaseModel):
    name: str = Field(examples=["syncs:manage"])
    description: str
    scope_kind: str | None = Field(
        description='What a grant of it may be scoped to: "source", "destination", or None '
        "for workspace-wide only",
        examples=["destination"],
    )


class TokenOut(BaseModel):
    id: str
    name: str = Field(examples=["nightly dbt job"])
    prefix: str = Field(description="The token's first characters", examples=["crl_Xy3k"])
    user_id: str
    user_email: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["nightly dbt job"])
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="None: never expires", examples=[90]
    )


class TokenCreated(BaseModel):
    token: TokenOut
    value: str = Field(
        description="The token; shown this once. Send it as 'Authorization: Bearer <value>'",
        examples=["crl_Xy3kq8T0c2vRk1n3pM6w7o5Jd9sHf4aLbE2uZyQx1Wg"],
    )


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_id: str | None
    actor_email: str | None = Field(examples=["ada@example.com"])
    action: str = Field(examples=["audience.update"])
    target_type: str = Field(examples=["audience"])
    target_name: str | None = Field(examples=["VIPs"])
    details: dict[str, Any]
    ip: str | None


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next, older page")


# Signing in and out


@router.post(
    "/auth/login",
    tags=["auth"],
    summary="Sign in with email and password; sets the session and CSRF cookies",
    response_model=LoginResponse,
    responses={429: {"model": ErrorBody, "description": "Too many failed sign-ins"}},
)
def login(
    body: LoginRequest, request: Request, response: Response, governance: GovernanceDep
) -> Any:
    try:
        signed_in = governance.login(
            body.email,
            body.password.get_secret_value(),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except LoginThrottledError as error:
        # Answered here rather than by the app's handler: only sign-in throttles.
        return error_response(
            429,
            "TooManyRequests",
            error.message,
            where=error.where,
            hint=error.hint,
            headers={"Retry-After": str(error.retry_after)},
        )
    set_session_cookies(response, request, signed_in.new_session, governance)
    return LoginResponse(
        principal=_principal(signed_in.principal),
        csrf_token=signed_in.new_session.csrf_token,
        expires_at=signed_in.new_session.session.expires_at,
    )


@router.post("/auth/logout", tags=["auth"], status_code=204, summary="End this session")
def logout(request: Request, principal: Caller, governance: GovernanceDep) -> Response:
    session = current_session(request)
    response = Response(status_code=204)
    if session is not None:
        governance.logout(session, actor=actor(request, principal))
        clear_session_cookies(response)
    return response


@router.get("/auth/me", tags=["auth"], summary="Who is signed in, with their grants")
def me(principal: Caller) -> PrincipalOut:
    return _principal(principal)


# Users


@router.get("/users", tags=["users"], summary="Every user")
def list_users(_: Manager, governance: GovernanceDep) -> list[UserOut]:
    return [_user(user) for user in governance.users.list()]


@router.post("/users", tags=["users"], status_code=201, summary="Create a user")
def create_user(
    body: UserCreate, request: Request, principal: Manager, governance: GovernanceDep
) -> UserOut:
    user = governance.users.create(
        body.email,
        body.name,
        body.password.get_secret_value(),
        body.roles,
        actor=actor(request, principal),
    )
    return _user(user)


@router.get(
    "/users/{user_id}", tags=["users"], summary="A user (yourself, or any with users:manage)"
)
def get_user(user_id: str, principal: Caller, governance: GovernanceDep) -> UserOut:
    if user_id != principal.user_id and not principal.can("users:manage"):
        raise _no_such_user(user_id)
    return _user(governance.users.require(user_id))


@router.patch("/users/{user_id}", tags=["users"], summary="Change a user")
def update_user(
    user_id: str,
    body: UserUpdate,
    request: Request,
    principal: Caller,
    governance: GovernanceDep,
) -> UserOut:
    own = user_id == principal.user_id
    manager = principal.can("users:manage")
    if not own and not manager:
        raise _no_such_user(user_id)
    if not manager and (body.email, body.disabled, body.roles) != (None, None, None):
        raise PermissionDeniedError(
            "you may change only your own name and password",
            hint="ask someone with users:manage to change email, roles or disabled",
        )
    if own and body.password is not None:
        _check_current_password(governance, principal, body.current_password)

    session = current_session(request) if own else None
    user = governance.users.update(
        user_id,
        name=body.name,
        email=body.email,
        password=body.password.get_secret_value() if body.password else None,
        disabled=body.disabled,
        roles=body.roles,
        actor=actor(request, principal),
        keep_session=session.id if session else None,
    )
    return _user(user)


@router.delete("/users/{user_id}", tags=["users"], status_code=204, summary="Delete a user")
def delete_user(
    user_id: str, request: Request, principal: Manager, governance: GovernanceDep
) -> Response:
    governance.users.delete(user_id, actor=actor(request, principal))
    return Response(status_code=204)


# Roles and permissions


@router.get("/roles", tags=["roles"], summary="Every role with its grants")
def list_roles(_: Caller, governance: GovernanceDep) -> list[RoleOut]:
    return [_role(role) for role in governance.roles.list()]


@router.post("/roles", tags=["roles"], status_code=201, summary="Create a custom role")
def create_role(
    body: RoleCreate, request: Request, principal: Manager, governance: GovernanceDep
) -> RoleOut:
    role = governance.roles.create(
        body.name,
        body.description,
        [(grant.permission, grant.scope) for grant in body.grants],
        actor=actor(request, principal),
    )
    return _role(role)


@router.get("/roles/{name}", tags=["roles"], summary="A role with its grants")
def get_role(name: str, _: Caller, governance: GovernanceDep) -> RoleOut:
    return _role(governance.roles.require(name))


@router.patch("/roles/{name}", tags=["roles"], summary="Change a custom role")
def update_role(
    name: str, body: RoleUpdate, request: Request, principal: Manager, governance: GovernanceDep
) -> RoleOut:
    grants = None if body.grants is None else [(g.permission, g.scope) for g in body.grants]
    role = governance.roles.update(
        name, description=body.description, grants=grants, actor=actor(request, principal)
    )
    return _role(role)


@router.delete("/roles/{name}", tags=["roles"], status_code=204, summary="Delete a custom role")
def delete_role(
    name: str, request: Request, principal: Manager, governance: GovernanceDep
) -> Response:
    governance.roles.delete(name, actor=actor(request, principal))
    return Response(status_code=204)


@router.get("/permissions", tags=["roles"], summary="Every permission a grant can give")
def list_permissions(_: Caller) -> list[PermissionOut]:
    return [
        PermissionOut(name=name, description=description, scope_kind=SCOPE_KINDS.get(name))
        for name, description in PERMISSIONS.items()
    ]


# API tokens


@router.get("/tokens", tags=["tokens"], summary="Your API tokens (everyone's, with users:manage)")
def list_tokens(principal: Caller, governance: GovernanceDep) -> list[TokenOut]:
    owner = None if principal.can("users:manage") else principal.user_id
    now = governance.now()
    return [_token(token, now) for token in governance.tokens.list(owner)]


@router.post(
    "/tokens",
    tags=["tokens"],
    status_code=201,
    summary="Create an API token for yourself; its value is shown only in this answer",
)
def create_token(
    body: TokenCreate, request: Request, principal: Caller, governance: GovernanceDep
) -> TokenCreated:
    if principal.via_token:
        raise PermissionDeniedError(
            "an API token cannot create API tokens",
            hint="create tokens from a signed-in session in the studio",
        )
    expires_at = None
    if body.expires_in_days is not None:
        expires_at = governance.now() + timedelta(days=body.expires_in_days)
    created = governance.tokens.create(
        principal.user_id, body.name, expires_at=expires_at, actor=actor(request, principal)
    )
    return TokenCreated(token=_token(created.token, governance.now()), value=created.value)


@router.delete("/tokens/{token_id}", tags=["tokens"], status_code=204, summary="Revoke a token")
def revoke_token(
    token_id: str, request: Request, principal: Caller, governance: GovernanceDep
) -> Response:
    token = governance.tokens.get(token_id)
    if token is None or (token.user_id != principal.user_id and not principal.can("users:manage")):
        raise UnknownReferenceError(
            f"there is no token {token_id!r} of yours",
            where="tokens",
            hint="GET /tokens lists them",
        )
    governance.tokens.revoke(token_id, actor=actor(request, principal))
    return Response(status_code=204)


# Audit log


@router.get("/audit", tags=["audit"], summary="Who changed what and when, newest first")
def list_audit(
    _: Auditor,
    governance: GovernanceDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Entries per page")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the last page")] = None,
    actor_: Annotated[
        str | None, Query(alias="actor", description="A user id or email address")
    ] = None,
    action: Annotated[
        str | None,
        Query(description='An action ("audience.update"), or all of a thing\'s ("audience.")'),
    ] = None,
    target_type: Annotated[str | None, Query(examples=["audience"])] = None,
    target: Annotated[str | None, Query(description="The target's name")] = None,
) -> AuditPageOut:
    page = governance.audit.entries(
        limit=limit,
        cursor=cursor,
        actor=actor_,
        action=action,
        target_type=target_type,
        target=target,
    )
    return AuditPageOut(
        entries=[_audit_entry(entry) for entry in page.entries], next_cursor=page.next_cursor
    )


# Helpers


def _check_current_password(
    governance: Governance, principal: Principal, current: SecretStr | None
) -> None:
    given = current.get_secret_value() if current else ""
    if not governance.verify_password(principal.user_id, given):
        raise AuthenticationError(
            "the current password is wrong or missing",
            where="current_password",
            hint="send your current password in `current_password` to set a new one",
        )


def _no_such_user(user_id: str) -> UnknownReferenceError:
    # Callers without users:manage learn nothing about other users, not even that they exist.
    return UnknownReferenceError(f"there is no user {user_id!r} you may see", where="users")


def _principal(principal: Principal) -> PrincipalOut:
    return PrincipalOut(
        user_id=principal.user_id,
        email=principal.email,
        name=principal.name,
        roles=list(principal.roles),
        via_token=principal.via_token,
        grants=[GrantModel(permission=p, scope=s) for p, s in sorted(principal.grants)],
    )


def _user(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        disabled=user.disabled,
        roles=list(user.roles),
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
    )


def _role(role: Role) -> RoleOut:
    return RoleOut(
        name=role.name,
        description=role.description,
        builtin=role.builtin,
        grants=[GrantModel(permission=p, scope=s) for p, s in role.grants],
        created_at=role.created_at,
        updated_at=role.updated_at,
    )


def _token(token: ApiToken, now: datetime) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        user_id=token.user_id,
        user_email=token.user_email,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        active=token.is_active(now),
    )


def _audit_entry(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        at=entry.at,
        actor_id=entry.actor_id,
        actor_email=entry.actor_email,
        action=entry.action,
        target_type=entry.target_type,
        target_name=entry.target_name,
        details=entry.details,
        ip=entry.ip,
    )
