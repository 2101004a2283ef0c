"""A minimal app around the auth router, and clients signed in as someone."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from corral.api.routers.auth import router
from corral.api.security import CSRF_HEADER
from corral.errors import (
    AuthenticationError,
    ConflictError,
    CorralError,
    DefinitionError,
    PermissionDeniedError,
    UnknownReferenceError,
)
from corral.governance import Governance
from tests.governance.conftest import PASSWORD

STATUSES: tuple[tuple[type[CorralError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (UnknownReferenceError, 404),
    (DefinitionError, 422),
)


def make_app(governance: Governance) -> FastAPI:
    app = FastAPI()
    app.state.governance = governance
    app.include_router(router, prefix="/api/v1")

    def handle(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, CorralError)
        status = next((code for cls, code in STATUSES if isinstance(error, cls)), 500)
        return JSONResponse({"error": error.to_dict()}, status_code=status)

    app.add_exception_handler(CorralError, handle)
    return app


def client(app: FastAPI, *, https: bool = True) -> TestClient:
    return TestClient(app, base_url="https://testserver" if https else "http://testserver")


def signed_in(app: FastAPI, email: str, password: str = PASSWORD) -> TestClient:
    """A browser-like client: session cookie kept, CSRF header sent with every request."""
    browser = client(app)
    response = browser.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    browser.headers[CSRF_HEADER] = response.json()["csrf_token"]
    return browser


def with_token(app: FastAPI, value: str) -> TestClient:
    automation = client(app)
    automation.headers["Authorization"] = f"Bearer {value}"
    return automation
