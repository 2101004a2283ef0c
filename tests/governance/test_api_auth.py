"""Signing in and out, cookies, CSRF, API tokens and throttling, through HTTP."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from fastapi import APIRouter, Depends, FastAPI

from corral.api.security import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    current_principal,
    unguarded_routes,
)
from corral.governance import ADMIN, EDITOR, VIEWER, Governance
from tests.governance.api import client, make_app, signed_in, with_token
from tests.governance.conftest import PASSWORD, Clock


@pytest.fixture
def app(governance: Governance) -> FastAPI:
    governance.users.create("ada@example.com", "Ada", PASSWORD, [ADMIN])
    governance.users.create("vic@example.com", "Vic", PASSWORD, [VIEWER])
    return make_app(governance)


def cookies_of(set_cookie_headers: list[str]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookie_headers:
        jar.load(header)
    return jar


def test_login_sets_a_secure_http_only_session_and_a_readable_csrf_cookie(app: FastAPI) -> None:
    browser = client(app)
    response = browser.post(
        "/api/v1/auth/login", json={"email": "ADA@example.com", "password": PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["principal"]["email"] == "ada@example.com"
    assert body["principal"]["roles"] == [ADMIN]
    jar = cookies_of(response.headers.get_list("set-cookie"))
    session, csrf = jar[SESSION_COOKIE], jar[CSRF_COOKIE]
    assert session["httponly"] and session["secure"] and session["samesite"] == "lax"
    assert not csrf["httponly"] and csrf["secure"] and csrf.value == body["csrf_token"]
    assert session.value not in response.text  # the session token is only in the cookie
    assert PASSWORD not in response.text


def test_cookies_are_not_secure_over_plain_http_unless_a_setting_says(
    app: FastAPI, governance: Governance
) -> None:
    response = client(app, https=False).post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert not cookies_of(response.headers.get_list("set-cookie"))[SESSION_COOKIE]["secure"]

    object.__setattr__(governance.settings, "secure_cookies", True)
    response = client(app, https=False).post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert cookies_of(response.headers.get_list("set-cookie"))[SESSION_COOKIE]["secure"]


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(app: FastAPI) -> None:
    answers = [
        client(app).post("/api/v1/auth/login", json={"email": email, "password": "wrong pass!"})
        for email in ("ada@example.com", "nobody@example.com")
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json()["error"]["message"] == answers[1].json()["error"]["message"]
    assert SESSION_COOKIE not in answers[0].headers.get("set-cookie", "")


def test_me_and_logout(app: FastAPI) -> None:
    browser = signed_in(app, "ada@example.com")
    assert browser.get("/api/v1/auth/me").json()["email"] == "ada@example.com"

    response = browser.post("/api/v1/auth/logout")

    assert response.status_code == 204
    assert 'corral_session=""' in response.headers["set-cookie"]
    assert browser.get("/api/v1/auth/me").status_code == 401


def test_a_stolen_cookie_is_useless_after_logout(app: FastAPI) -> None:
    browser = signed_in(app, "ada@example.com")
    stolen = browser.cookies.get(SESSION_COOKIE)
    browser.post("/api/v1/auth/logout")

    thief = client(app)
    thief.cookies.set(SESSION_COOKIE, stolen or "")
    assert thief.get("/api/v1/auth/me").status_code == 401


def test_anonymous_callers_get_401(app: FastAPI) -> None:
    response = client(app).get("/api/v1/auth/me")
    assert response.status_code == 401
    assert "sign in" in response.json()["error"]["message"]


def test_changes_with_a_cookie_need_the_csrf_token(app: FastAPI) -> None:
    browser = signed_in(app, "ada@example.com")
    csrf = browser.headers.pop(CSRF_HEADER)
    role = {"name": "analysts", "grants": [{"permission": "data:view"}]}

    missing = browser.post("/api/v1/roles", json=role)
    wrong = browser.post("/api/v1/roles", json=role, headers={CSRF_HEADER: "forged"})
    reading = browser.get("/api/v1/roles")
    right = browser.post("/api/v1/roles", json=role, headers={CSRF_HEADER: csrf})

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "CSRF" in missing.json()["error"]["message"]
    assert reading.status_code == 200  # safe methods need no token
    assert right.status_code == 201


def test_the_csrf_token_of_another_session_does_not_work(app: FastAPI) -> None:
    ada = signed_in(app, "ada@example.com")
    vic = signed_in(app, "vic@example.com")

    response = ada.post(
        "/api/v1/tokens", json={"name": "x"}, headers={CSRF_HEADER: vic.headers[CSRF_HEADER]}
    )
    assert response.status_code == 403


def test_api_tokens_authenticate_without_csrf_and_act_as_their_owner(
    app: FastAPI, governance: Governance
) -> None:
    browser = signed_in(app, "ada@example.com")
    created = browser.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 30})
    assert created.status_code == 201
    value = created.json()["value"]
    assert value.startswith("crl_")

    automation = with_token(app, value)
    me = automation.get("/api/v1/auth/me").json()
    assert (me["email"], me["via_token"]) == ("ada@example.com", True)
    made = automation.post("/api/v1/roles", json={"name": "bots"})
    assert made.status_code == 201

    listed = browser.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["ci"] and value not in str(listed)
    assert listed[0]["last_used_at"] is not None and listed[0]["active"]

    assert automation.post("/api/v1/tokens", json={"name": "more"}).status_code == 403
    assert browser.delete(f"/api/v1/tokens/{listed[0]['id']}").status_code == 204
    assert automation.get("/api/v1/auth/me").status_code == 401


@pytest.mark.parametrize("header", ["Bearer crl_madeup", "Basic YWRhOnB3", "Bearer "])
def test_bad_authorization_headers_get_401(app: FastAPI, header: str) -> None:
    response = client(app).get("/api/v1/auth/me", headers={"Authorization": header})
    assert response.status_code == 401


def test_failed_sign_ins_are_throttled_per_address_and_client(app: FastAPI, clock: Clock) -> None:
    attempt = {"email": "ada@example.com", "password": "not the password"}
    for _ in range(10):
        assert client(app).post("/api/v1/auth/login", json=attempt).status_code == 401

    right = {"email": "ada@example.com", "password": PASSWORD}
    throttled = client(app).post("/api/v1/auth/login", json=right)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    assert throttled.json()["error"]["type"] == "TooManyRequests"
    other_user = client(app).post(
        "/api/v1/auth/login", json={"email": "vic@example.com", "password": PASSWORD}
    )
    assert other_user.status_code == 200

    clock.advance(minutes=15, seconds=1)
    assert client(app).post("/api/v1/auth/login", json=right).status_code == 200


def test_a_successful_sign_in_clears_the_failures(app: FastAPI) -> None:
    attempt = {"email": "ada@example.com", "password": "not the password"}
    for _ in range(9):
        client(app).post("/api/v1/auth/login", json=attempt)
    signed_in(app, "ada@example.com")
    for _ in range(9):
        assert client(app).post("/api/v1/auth/login", json=attempt).status_code == 401


def test_users_change_their_own_name_and_password_only(
    app: FastAPI, governance: Governance
) -> None:
    vic = signed_in(app, "vic@example.com")
    me = vic.get("/api/v1/auth/me").json()["user_id"]
    other = vic.post("/api/v1/auth/login", json={"email": "vic@example.com", "password": PASSWORD})
    assert other.status_code == 200  # a second session of vic's, in the same jar now
    vic.headers[CSRF_HEADER] = other.json()["csrf_token"]
    url = f"/api/v1/users/{me}"

    assert vic.patch(url, json={"name": "Victoria"}).json()["name"] == "Victoria"
    assert vic.patch(url, json={"roles": [ADMIN]}).status_code == 403
    assert vic.patch(url, json={"disabled": True}).status_code == 403
    assert vic.patch(url, json={"password": "a new passphrase"}).status_code == 401
    changed = vic.patch(url, json={"password": "a new passphrase", "current_password": PASSWORD})
    assert changed.status_code == 200 and "password" not in changed.text
    assert vic.get("/api/v1/auth/me").status_code == 200  # this session stays
    assert governance.sessions.count(me) == 1  # the other one ended
    signed_in(app, "vic@example.com", "a new passphrase")


def test_an_editor_can_not_make_themselves_admin(app: FastAPI, governance: Governance) -> None:
    eddie = governance.users.create("eddie@example.com", "Eddie", PASSWORD, [EDITOR])
    browser = signed_in(app, "eddie@example.com")
    assert browser.patch(f"/api/v1/users/{eddie.id}", json={"roles": [ADMIN]}).status_code == 403
    assert browser.post("/api/v1/roles", json={"name": "mine"}).status_code == 403


def test_no_response_holds_a_password_hash_or_a_secret(
    app: FastAPI, governance: Governance
) -> None:
    admin = signed_in(app, "ada@example.com")
    created = admin.post(
        "/api/v1/users",
        json={"email": "new@example.com", "name": "New", "password": "fresh passphrase"},
    )
    assert created.status_code == 201
    value = admin.post("/api/v1/tokens", json={"name": "ci"}).json()["value"]
    texts = [
        admin.get(path).text
        for path in ("/api/v1/users", "/api/v1/tokens", "/api/v1/audit", "/api/v1/auth/me")
    ] + [admin.get(f"/api/v1/users/{created.json()['id']}").text, created.text]
    for text in texts:
        for secret in ("$argon2", PASSWORD, "fresh passphrase", value):
            assert secret not in text


def test_every_route_checks_the_caller(app: FastAPI) -> None:
    assert unguarded_routes(app.routes) == []
    assert unguarded_routes(app.routes, public=()) == ["POST /api/v1/auth/login"]

    @app.get("/api/v1/open")
    def open_door() -> str:
        return "anyone"

    guarded = APIRouter(dependencies=[Depends(current_principal)])

    @guarded.get("/closed")
    def closed_door() -> str:
        return "someone"

    app.include_router(guarded, prefix="/api/v1")
    assert unguarded_routes(app.routes) == ["GET /api/v1/open"]


def test_the_openapi_document_describes_every_endpoint(app: FastAPI) -> None:
    document = client(app).get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    assert {"LoginRequest", "UserOut", "RoleCreate", "TokenCreated", "AuditPageOut"} <= set(schemas)
    assert schemas["LoginRequest"]["properties"]["password"]["writeOnly"] is True
    assert schemas["GrantModel"]["properties"]["scope"]["examples"] == ["destination:CRM"]
    assert "429" in document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation.get("summary"), path
