"""Audiences through the API: files written, ETags, versions, previews, members, SQL."""

from __future__ import annotations

from urllib.parse import quote

import yaml
from fastapi.testclient import TestClient

from corral.api import create_app
from tests.api.conftest import Api, error_of

NEW = {
    "name": "US subscribers",
    "description": "Paying customers in the US.",
    "conditions": [
        {"property": "country", "equals": "US"},
        {"property": "plan", "in": ["plus", "pro"]},
    ],
}


def test_list_shows_audiences_with_the_syncs_that_use_them(api: Api) -> None:
    response = api.admin.get("/api/v1/audiences", params={"limit": 500})
    assert response.status_code == 200
    items = {a["name"]: a for a in response.json()["items"]}
    assert "VIPs" in items and items["VIPs"]["file"] == "audiences/vips.yaml"
    assert [s["name"] for s in items["VIPs"]["syncs"]] == ["VIPs to CSV"]
    assert items["VIPs"]["syncs"][0]["status"] is None  # never ran
    assert items["VIPs"]["size"] is None  # never previewed


def test_list_pages_with_a_cursor(api: Api) -> None:
    names, cursor = [], None
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = api.admin.get("/api/v1/audiences", params=params).json()
        assert len(page["items"]) <= 5
        names += [a["name"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == sorted(names) and len(names) == len(set(names)) == 12


def test_create_writes_a_file_and_the_first_version(api: Api) -> None:
    response = api.admin.post("/api/v1/audiences", json=NEW)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["file"] == "audiences/us_subscribers.yaml"
    assert response.headers["ETag"] == body["etag"]
    saved = yaml.safe_load((api.root / body["file"]).read_text())
    assert saved["name"] == "US subscribers"
    assert saved["conditions"][0] == {
        "kind": "property",
        "column": "country",
        "operator": "equals",
        "value": "US",
    }
    versions = api.admin.get("/api/v1/audiences/US subscribers/versions").json()["items"]
    assert [(v["version"], v["action"], v["author"]) for v in versions] == [
        (1, "create", "admin@example.com")
    ]


def test_create_refuses_a_taken_name_and_an_unknown_column(api: Api) -> None:
    taken = api.admin.post("/api/v1/audiences", json={**NEW, "name": "VIPs"})
    assert taken.status_code == 409 and error_of(taken)["type"] == "ConflictError"
    unknown = api.admin.post(
        "/api/v1/audiences",
        json={"name": "Typo", "conditions": [{"property": "cuntry", "equals": "US"}]},
    )
    assert unknown.status_code == 404, unknown.text
    assert "cuntry" in str(error_of(unknown)["message"])
    assert not (api.root / "audiences" / "typo.yaml").exists()


def test_update_needs_the_current_etag(api: Api) -> None:
    first = api.admin.get("/api/v1/audiences/VIPs")
    etag = first.headers["ETag"]
    changed = {**first.json()["definition"], "description": "Changed"}

    missing = api.admin.put("/api/v1/audiences/VIPs", json=changed)
    assert missing.status_code == 428
    assert error_of(missing)["type"] == "PreconditionRequiredError"

    ok = api.admin.put("/api/v1/audiences/VIPs", json=changed, headers={"If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] != etag and ok.json()["description"] == "Changed"

    stale = api.admin.put("/api/v1/audiences/VIPs", json=changed, headers={"If-Match": etag})
    assert stale.status_code == 409 and error_of(stale)["type"] == "ConflictError"


def test_an_edit_on_disk_changes_the_etag_and_is_served(api: Api) -> None:
    etag = api.admin.get("/api/v1/audiences/VIPs").headers["ETag"]
    path = api.root / "audiences" / "vips.yaml"
    path.write_text(path.read_text().replace("Frequent or big", "Edited by hand -"))
    again = api.admin.get("/api/v1/audiences/VIPs")
    assert again.headers["ETag"] != etag
    assert again.json()["description"].startswith("Edited by hand -")
    stale = api.admin.put(
        "/api/v1/audiences/VIPs", json=again.json()["definition"], headers={"If-Match": etag}
    )
    assert stale.status_code == 409


def test_versions_and_restore(api: Api) -> None:
    created = api.admin.post("/api/v1/audiences", json=NEW)
    etag = created.headers["ETag"]
    second = {**NEW, "description": "second"}
    api.admin.put("/api/v1/audiences/US subscribers", json=second, headers={"If-Match": etag})

    versions = api.admin.get("/api/v1/audiences/US subscribers/versions").json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert "second" in versions[0]["definition"]

    restored = api.admin.post("/api/v1/audiences/US subscribers/versions/1/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["description"] == NEW["description"]
    versions = api.admin.get("/api/v1/audiences/US subscribers/versions").json()["items"]
    assert (versions[0]["version"], versions[0]["action"]) == (3, "restore")

    missing = api.admin.post("/api/v1/audiences/US subscribers/versions/99/restore")
    assert missing.status_code == 404


def test_rename_moves_the_file_and_its_history(api: Api) -> None:
    etag = api.admin.post("/api/v1/audiences", json=NEW).headers["ETag"]
    renamed = api.admin.put(
        "/api/v1/audiences/US subscribers",
        json={**NEW, "name": "American subscribers"},
        headers={"If-Match": etag},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["file"] == "audiences/american_subscribers.yaml"
    assert not (api.root / "audiences" / "us_subscribers.yaml").exists()
    versions = api.admin.get("/api/v1/audiences/American subscribers/versions").json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert api.admin.get("/api/v1/audiences/US subscribers").status_code == 404


def test_delete_refuses_an_audience_in_use_and_deletes_one_that_is_not(api: Api) -> None:
    vips = api.admin.get("/api/v1/audiences/VIPs")
    used = api.admin.delete("/api/v1/audiences/VIPs", headers={"If-Match": vips.headers["ETag"]})
    assert used.status_code == 409
    assert "VIPs to CSV" in str(error_of(used)["message"])

    etag = api.admin.post("/api/v1/audiences", json=NEW).headers["ETag"]
    assert api.admin.delete("/api/v1/audiences/US subscribers").status_code == 428
    gone = api.admin.delete("/api/v1/audiences/US subscribers", headers={"If-Match": etag})
    assert gone.status_code == 204
    assert not (api.root / "audiences" / "us_subscribers.yaml").exists()
    assert api.admin.get("/api/v1/audiences/US subscribers").status_code == 404
    # The history stays, and a restore brings the audience back.
    versions = api.admin.get("/api/v1/audiences/US subscribers/versions").json()["items"]
    assert versions[0]["action"] == "delete"
    back = api.admin.post("/api/v1/audiences/US subscribers/versions/1/restore")
    assert back.status_code == 200 and back.json()["name"] == "US subscribers"


def test_an_audience_referred_to_by_another_cannot_be_deleted(api: Api) -> None:
    # The demo's "VIPs without email consent" refers to VIPs; its file is free of syncs.
    referring = {"name": "Not VIPs", "conditions": [{"audience": "US subscribers"}]}
    etag = api.admin.post("/api/v1/audiences", json=NEW).headers["ETag"]
    assert api.admin.post("/api/v1/audiences", json=referring).status_code == 201
    refused = api.admin.delete("/api/v1/audiences/US subscribers", headers={"If-Match": etag})
    assert refused.status_code == 409
    assert "audience 'Not VIPs'" in str(error_of(refused)["message"])


def test_preview_of_a_saved_audience_and_its_size_in_the_list(api: Api) -> None:
    response = api.admin.post(
        "/api/v1/audiences/VIPs/preview", json={"breakdowns": ["country"], "sample": 3}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["size"] > 0 and result["parent_rows"] == 3000
    assert len(result["blocks"]) == 2
    assert result["breakdowns"][0]["name"] == "country"
    assert len(result["sample"]["rows"]) == 3
    assert "email" in result["sample"]["redacted"]
    assert {t["step"] for t in result["timings"]} >= {"compile"}

    vips = listed(api)["VIPs"]
    assert vips["size"] == result["size"] and vips["sized_at"] is not None
    assert vips["parent_rows"] == 3000 and vips["size_source"] == "studio"
    assert vips["size_stale"] is False and vips["size_as_of"].startswith("2026-12-01")


def listed(api: Api) -> dict[str, dict[str, object]]:
    items = api.admin.get("/api/v1/audiences", params={"limit": 500}).json()["items"]
    return {a["name"]: a for a in items}


def test_a_measured_size_outlives_a_restart(api: Api) -> None:
    size = api.admin.post("/api/v1/audiences/VIPs/preview", json={"blocks": False}).json()["size"]
    api.app.state.studio.close()

    with TestClient(create_app(api.root), headers=api.admin.headers) as restarted:
        items = restarted.get("/api/v1/audiences", params={"limit": 500}).json()["items"]
    vips = next(a for a in items if a["name"] == "VIPs")
    assert vips["size"] == size and vips["size_stale"] is False


def test_a_size_is_stale_once_the_audience_changes_and_current_after_a_preview(
    api: Api,
) -> None:
    before = api.admin.post("/api/v1/audiences/VIPs/preview", json={}).json()["size"]
    current = api.admin.get("/api/v1/audiences/VIPs")
    definition = current.json()["definition"]

    renamed = {**definition, "description": "Only the words changed"}
    etag = put(api, "VIPs", renamed, current.headers["ETag"])
    assert listed(api)["VIPs"]["size_stale"] is False  # same conditions, same members

    narrower = {
        **renamed,
        "conditions": [*renamed["conditions"], {"property": "country", "equals": "US"}],
    }
    put(api, "VIPs", narrower, etag)
    vips = listed(api)["VIPs"]
    assert vips["size"] == before and vips["size_stale"] is True

    after = api.admin.post("/api/v1/audiences/VIPs/preview", json={}).json()["size"]
    assert after < before
    vips = listed(api)["VIPs"]
    assert vips["size"] == after and vips["size_stale"] is False

    history = api.admin.get("/api/v1/audiences/VIPs/sizes").json()
    assert [(h["size"], h["current"]) for h in history] == [(after, True), (before, False)]


def test_an_audience_that_refers_to_a_changed_one_is_stale(api: Api) -> None:
    api.admin.post("/api/v1/audiences/VIPs without email consent/preview", json={})
    assert listed(api)["VIPs without email consent"]["size_stale"] is False
    current = api.admin.get("/api/v1/audiences/VIPs")
    definition = current.json()["definition"]
    changed = {**definition, "conditions": definition["conditions"][:1]}
    put(api, "VIPs", changed, current.headers["ETag"])
    assert listed(api)["VIPs without email consent"]["size_stale"] is True


def test_a_live_preview_records_only_a_saved_definition(api: Api) -> None:
    saved = api.admin.get("/api/v1/audiences/VIPs").json()["definition"]
    draft = {**saved, "conditions": saved["conditions"][:1]}
    api.admin.post("/api/v1/audiences/preview", json={"definition": draft})
    assert listed(api)["VIPs"]["size"] is None

    result = api.admin.post("/api/v1/audiences/preview", json={"definition": saved}).json()
    assert listed(api)["VIPs"]["size"] == result["size"]
    api.admin.post("/api/v1/audiences/preview", json={"definition": NEW})
    assert "US subscribers" not in listed(api)


def test_a_preview_at_another_moment_is_not_recorded(api: Api) -> None:
    api.admin.post("/api/v1/audiences/VIPs/preview", json={"as_of": "2026-06-01T00:00:00Z"})
    assert listed(api)["VIPs"]["size"] is None
    assert api.admin.get("/api/v1/audiences/VIPs/sizes").json() == []


def test_sizes_follow_a_rename(api: Api) -> None:
    api.admin.post("/api/v1/audiences", json=NEW)
    size = api.admin.post("/api/v1/audiences/US subscribers/preview", json={}).json()["size"]
    current = api.admin.get("/api/v1/audiences/US subscribers")
    put(api, "US subscribers", {**NEW, "name": "American subscribers"}, current.headers["ETag"])
    assert listed(api)["American subscribers"]["size"] == size
    missing = api.admin.get("/api/v1/audiences/nobody/sizes")
    assert missing.status_code == 404 and error_of(missing)["type"] == "UnknownReferenceError"


def put(api: Api, name: str, definition: dict[str, object], etag: str) -> str:
    response = api.admin.put(
        f"/api/v1/audiences/{quote(name)}", json=definition, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.text
    return str(response.headers["ETag"])


def test_a_sample_needs_data_view(api: Api) -> None:
    viewer = api.client("viewer")
    sized = viewer.post("/api/v1/audiences/VIPs/preview", json={})
    assert sized.status_code == 200 and sized.json()["sample"] is None
    refused = viewer.post("/api/v1/audiences/VIPs/preview", json={"sample": 2})
    assert refused.status_code == 403
    assert error_of(refused)["type"] == "PermissionDeniedError"


def test_live_preview_of_an_unsaved_definition(api: Api) -> None:
    response = api.admin.post("/api/v1/audiences/preview", json={"definition": NEW})
    assert response.status_code == 200, response.text
    result = response.json()
    assert [b["index"] for b in result["blocks"]] == [1, 2]
    assert result["size"] <= min(b["size"] for b in result["blocks"])
    assert result["sample"] is None and result["breakdowns"] == []
    assert not (api.root / "audiences" / "us_subscribers.yaml").exists()


def test_members_page_by_primary_key_and_redact_private_values(api: Api) -> None:
    size = api.admin.post("/api/v1/audiences/VIPs/preview", json={"blocks": False}).json()["size"]
    keys: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 60, "columns": "country"}
        if cursor:
            params["cursor"] = cursor
        page = api.admin.get("/api/v1/audiences/VIPs/members", params=params).json()
        assert page["columns"][0] == "user_id" and page["columns"][-1] == "country"
        assert "email" in page["redacted"]
        assert all(row["email"] == "••••" for row in page["items"])
        keys += [row["user_id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == size

    revealed = api.admin.get("/api/v1/audiences/VIPs/members", params={"reveal": True, "limit": 1})
    assert revealed.json()["redacted"] == []
    assert "@" in revealed.json()["items"][0]["email"]


def test_members_need_data_view(api: Api) -> None:
    response = api.client("viewer").get("/api/v1/audiences/VIPs/members")
    assert response.status_code == 403


def test_sql_in_another_dialect_and_a_bad_dialect(api: Api) -> None:
    response = api.admin.get("/api/v1/audiences/VIPs/sql", params={"dialect": "snowflake"})
    assert response.status_code == 200
    assert response.json()["dialect"] == "snowflake"
    assert response.json()["sql"].startswith("SELECT")
    bad = api.admin.get("/api/v1/audiences/VIPs/sql", params={"dialect": "cobol"})
    assert bad.status_code == 422 and error_of(bad)["where"] == "dialect"


def test_file_names_work_as_names(api: Api) -> None:
    response = api.admin.get("/api/v1/audiences/lapsed_high_spenders")
    assert response.status_code == 200
    assert response.json()["name"] == "Lapsed high spenders"
    by_name = api.admin.get("/api/v1/audiences/" + quote("Lapsed high spenders"))
    assert by_name.json()["etag"] == response.json()["etag"]


def test_condition_schema(api: Api) -> None:
    schema = api.client("viewer").get("/api/v1/audiences/schema").json()
    assert schema["title"] == "AudienceDefinition"
    assert "conditions" in schema["properties"]
