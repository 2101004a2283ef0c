"""Destinations through the API: the type catalog, and secrets that never come back."""

from __future__ import annotations

import sqlalchemy as sa
import yaml

from tests.api.conftest import Api, error_of

HOOK = {
    "name": "Hooks",
    "type": "webhook",
    "config": {
        "url": "https://hooks.example.com/corral",
        "secret": "s3cr3t-signing-key",
        "headers": {"X-Api-Key": "key-123"},
    },
}


def test_the_catalog_marks_secrets_write_only(api: Api) -> None:
    types = api.admin.get("/api/v1/destination-types", params={"limit": 500}).json()["items"]
    webhook = next(t for t in types if t["name"] == "webhook")
    assert webhook["secrets"] == ["headers", "secret"]
    secret = webhook["config_schema"]["properties"]["secret"]
    assert '"writeOnly": true' in str(secret).replace("'", '"').replace("True", "true")
    assert {"upsert", "membership"} <= set(webhook["modes"])
    assert webhook["batch_size"] > 0


def test_secrets_are_stored_encrypted_referenced_in_yaml_and_never_returned(api: Api) -> None:
    created = api.admin.post("/api/v1/destinations", json=HOOK)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["config"]["secret"] == {"set": True}
    assert body["config"]["headers"] == {"X-Api-Key": {"set": True}}
    assert "s3cr3t" not in created.text and "key-123" not in created.text

    saved = yaml.safe_load((api.root / body["file"]).read_text())
    reference = saved["config"]["secret"]["secret"]
    assert set(saved["config"]["secret"]) == {"secret"}
    assert "s3cr3t" not in (api.root / body["file"]).read_text()

    # Encrypted in the metadata store, and readable through the secrets store only.
    with api.app.state.studio.store.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT name, ciphertext FROM secrets")).all()
    assert reference in {row[0] for row in stored}
    assert all("s3cr3t" not in row[1] and "key-123" not in row[1] for row in stored)
    assert api.governance.secrets.get(reference) == "s3cr3t-signing-key"

    listed = api.admin.get("/api/v1/destinations").text
    single = api.admin.get("/api/v1/destinations/Hooks").text
    assert "s3cr3t" not in listed + single and reference not in listed + single


def test_keeping_changing_and_removing_a_secret(api: Api) -> None:
    etag = api.admin.post("/api/v1/destinations", json=HOOK).headers["ETag"]
    path = api.root / "destinations" / "hooks.yaml"
    first = yaml.safe_load(path.read_text())["config"]["secret"]["secret"]

    kept = {**HOOK, "config": {**HOOK["config"], "secret": {"set": True}, "headers": None}}
    response = api.admin.put("/api/v1/destinations/Hooks", json=kept, headers={"If-Match": etag})
    assert response.status_code == 200, response.text
    config = yaml.safe_load(path.read_text())["config"]
    assert config["secret"] == {"secret": first} and "headers" not in config
    assert api.governance.secrets.get(first) == "s3cr3t-signing-key"

    changed = {**HOOK, "config": {**HOOK["config"], "secret": "new-key", "headers": None}}
    response = api.admin.put(
        "/api/v1/destinations/Hooks", json=changed, headers={"If-Match": response.headers["ETag"]}
    )
    second = yaml.safe_load(path.read_text())["config"]["secret"]["secret"]
    assert second != first and api.governance.secrets.get(second) == "new-key"
    assert first not in api.governance.secrets.names()  # the replaced value is gone

    etag = response.headers["ETag"]
    assert (
        api.admin.delete("/api/v1/destinations/Hooks", headers={"If-Match": etag}).status_code
        == 204
    )
    assert second not in api.governance.secrets.names()


def test_a_secret_cannot_point_at_another_stored_secret(api: Api) -> None:
    sneaky = {**HOOK, "config": {**HOOK["config"], "secret": {"secret": "destination:x"}}}
    response = api.admin.post("/api/v1/destinations", json=sneaky)
    assert response.status_code == 422
    assert not (api.root / "destinations" / "hooks.yaml").exists()
    assert api.governance.secrets.names() == []  # the header stored first was rolled back


def test_invalid_settings_are_refused_before_writing(api: Api) -> None:
    bad = {**HOOK, "config": {"url": "ftp://nope"}}
    response = api.admin.post("/api/v1/destinations", json=bad)
    assert response.status_code == 422 and "url" in str(error_of(response)["message"])
    unknown = api.admin.post("/api/v1/destinations", json={**HOOK, "type": "carrier_pigeon"})
    assert unknown.status_code == 404


def test_a_destination_in_use_is_not_deleted(api: Api) -> None:
    etag = api.admin.get("/api/v1/destinations/CSV exports").headers["ETag"]
    response = api.admin.delete("/api/v1/destinations/CSV exports", headers={"If-Match": etag})
    assert response.status_code == 409 and "VIPs to CSV" in str(error_of(response)["message"])


def test_connection_test_runs_the_destination_check(api: Api) -> None:
    response = api.admin.post("/api/v1/destinations/CSV exports/test")
    assert response.status_code == 200
    assert response.json()["ok"] is True and "can write" in response.json()["message"]


def test_lists_keep_only_what_a_scoped_role_may_see(api: Api) -> None:
    analyst = api.client("analyst")
    names = [d["name"] for d in analyst.get("/api/v1/destinations").json()["items"]]
    assert names == ["CSV exports"]
    assert analyst.get("/api/v1/destinations/Parquet exports").status_code == 403
    syncs = [s["name"] for s in analyst.get("/api/v1/syncs").json()["items"]]
    assert syncs == ["VIPs to CSV"]
