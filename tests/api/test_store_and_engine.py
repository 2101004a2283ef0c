"""The pieces under the API: the audience_versions migration, and `{secret: NAME}` in the
sync engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from corral.activation.engine import open_destination, resolve_secrets
from corral.errors import DefinitionError
from corral.store import Store
from corral.store.versions import AudienceVersions
from tests.api.conftest import Api


def test_the_migration_adds_and_removes_audience_versions(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'metadata.db'}")
    store.upgrade("0003")
    assert store.revision() == "0003"
    assert "audience_versions" in sa.inspect(store.engine).get_table_names()
    versions = AudienceVersions(store)
    assert versions.append("VIPs", "name: VIPs\n", author="a", action="create").version == 1
    assert versions.append("VIPs", "name: VIPs\n", author="b", action="update").version == 2
    assert [v.version for v in versions.list("VIPs")] == [2, 1]
    assert versions.get("VIPs", 1) is not None and versions.get("VIPs", 3) is None

    store.downgrade("0002")
    assert "audience_versions" not in sa.inspect(store.engine).get_table_names()
    store.upgrade()
    assert versions.list("VIPs") == []
    store.close()


def test_resolve_secrets_reads_stored_secrets_only_when_given_a_store() -> None:
    config = {"url": "https://x", "token": {"secret": "crm-token"}, "key": {"env": "K"}}
    found = resolve_secrets(config, {"K": "from-env"}, "destination 'CRM'", {"crm-token": "t"}.get)
    assert found == {"url": "https://x", "token": "t", "key": "from-env"}
    with pytest.raises(DefinitionError, match="secrets store"):
        resolve_secrets(config, {"K": "from-env"}, "destination 'CRM'")


def test_a_destination_saved_through_the_api_opens_with_its_secret(api: Api) -> None:
    body = {
        "name": "Hooks",
        "type": "webhook",
        "config": {"url": "https://hooks.example.com/in", "secret": "signing-key"},
    }
    assert api.admin.post("/api/v1/destinations", json=body).status_code == 201
    workspace = api.app.state.studio.workspace()
    destination = open_destination(
        workspace.destinations["Hooks"], dict(os.environ), secrets=api.governance.secrets.get
    )
    assert destination.config.secret.get_secret_value() == "signing-key"  # type: ignore[attr-defined]
    with pytest.raises(DefinitionError):
        open_destination(workspace.destinations["Hooks"], dict(os.environ))
