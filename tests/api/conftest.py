"""The API on a copy of a small demo workspace, with real users behind real tokens.

`template` builds the 3,000-user demo once per session, with a user and an API token per
role in its metadata store: an admin, an editor, a viewer and `analyst`, a custom role
scoped to one destination. Every test that uses `api` gets its own copy of the folder
(YAML files, warehouse, metadata store), so tests may write freely.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from corral.api import create_app
from corral.governance import Governance
from tests.helpers.demo import build_demo_workspace

PASSWORD = "correct horse battery staple"
ROLES = ("admin", "editor", "viewer", "analyst")
# The custom role: read audiences and row data, and the CSV destination and its syncs.
ANALYST_GRANTS = [
    ("schema:view", "source:warehouse"),
    ("audiences:view", "source:warehouse"),
    ("data:view", "source:warehouse"),
    ("destinations:view", "destination:CSV exports"),
    ("syncs:view", "destination:CSV exports"),
    ("syncs:run", "destination:CSV exports"),
]


@dataclass(frozen=True)
class Template:
    """A demo workspace whose metadata store already holds a user (and token) per role."""

    root: Path
    tokens: dict[str, str]
    users: dict[str, str]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Built once per session: password hashing and migrations are the slow part."""
    root = build_demo_workspace(tmp_path_factory.mktemp("api-demo"))
    app = create_app(root)
    governance: Governance = app.state.governance
    governance.roles.create("analyst", "API tests", ANALYST_GRANTS)
    tokens, users = {}, {}
    for role in ROLES:
        user = governance.users.create(f"{role}@example.com", role, PASSWORD, [role])
        users[role] = user.id
        tokens[role] = governance.tokens.create(user.id, "tests").value
    app.state.studio.close()
    return Template(root, tokens, users)


class Api:
    """The app on a fresh copy of the template, and a client signed in as each role."""

    def __init__(self, app: FastAPI, root: Path, template: Template) -> None:
        self.app = app
        self.root = root
        self.governance: Governance = app.state.governance
        self.users = template.users
        self.anonymous = TestClient(app)
        self._tokens = template.tokens
        self._clients: dict[str, TestClient] = {}

    def client(self, role: str = "admin") -> TestClient:
        if role not in self._clients:
            headers = {"Authorization": f"Bearer {self._tokens[role]}"}
            self._clients[role] = TestClient(self.app, headers=headers)
        return self._clients[role]

    def custom(self, role: str, grants: list[tuple[str, str]]) -> TestClient:
        """A client for a new user whose only role is a new custom role with `grants`."""
        self.governance.roles.create(role, "API tests", grants)
        user = self.governance.users.create(f"{role}@example.com", role, PASSWORD, [role])
        token = self.governance.tokens.create(user.id, "tests").value
        return TestClient(self.app, headers={"Authorization": f"Bearer {token}"})

    @property
    def admin(self) -> TestClient:
        return self.client("admin")


@pytest.fixture
def api(template: Template, tmp_path: Path) -> Iterator[Api]:
    root = tmp_path / "workspace"
    shutil.copytree(template.root, root, ignore=shutil.ignore_patterns("exports"))
    app = create_app(root)
    with TestClient(app):  # runs the lifespan: the studio closes at the end
        yield Api(app, root, template)


def error_of(response: object) -> dict[str, object]:
    """The error of a failed response, checked to have the one error shape."""
    data = response.json()  # type: ignore[attr-defined]
    assert set(data) == {"error"}, data
    error = data["error"]
    assert set(error) == {"type", "message", "where", "hint", "status"}, error
    assert error["status"] == response.status_code  # type: ignore[attr-defined]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)
