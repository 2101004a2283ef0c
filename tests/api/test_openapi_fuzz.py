"""Schemathesis against the app's own OpenAPI document: no input makes it fail with a 5xx.

Signed in as the admin with an API token, a few generated examples per operation (a
bounded run, about a minute). Changing the warehouse URL is left out: any URL the
schema allows is accepted and saved, after which every warehouse endpoint reports the
(configured) problem, as it should.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from corral.api import create_app
from tests.api.conftest import Template


def test_no_server_errors(template: Template, tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    shutil.copytree(template.root, root)
    app = create_app(root)
    headers = {"Authorization": f"Bearer {template.tokens['admin']}"}
    failures: list[str] = []
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            failures += _fuzz(operation, headers)
    assert len(operations) > 60
    assert failures == []


# Changing the warehouse URL would point every later example at a warehouse that is not
# there; signing out is not a thing to fuzz.
SKIPPED = {("PUT", "/api/v1/sources/warehouse"), ("POST", "/api/v1/auth/logout")}


def _fuzz(operation: Any, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.text[:300]}")
        elif response.status_code >= 400 and set(response.json()) != {"error"}:
            failures.append(f"{case.method} {case.formatted_path}: not the error shape")

    check()
    return failures
