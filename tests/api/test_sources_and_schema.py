"""Sources and the schema through the API."""

from __future__ import annotations

import yaml

from tests.api.conftest import Api, error_of


def test_the_warehouse_source_masks_its_password(api: Api) -> None:
    sources = api.admin.get("/api/v1/sources").json()["items"]
    assert sources == [
        {
            "name": "warehouse",
            "dialect": "duckdb",
            "url": "duckdb:///warehouse.duckdb",
            "planner_schema": "corral_planner",
        }
    ]
    etag = api.admin.get("/api/v1/sources/warehouse").headers["ETag"]
    url = "postgresql://corral:hunter2@db.internal:5432/shop"
    changed = api.admin.put(
        "/api/v1/sources/warehouse", json={"url": url}, headers={"If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == "postgresql://corral:***@db.internal:5432/shop"
    assert yaml.safe_load((api.root / "corral.yaml").read_text())["warehouse"] == url
    assert "hunter2" not in api.admin.get("/api/v1/sources").text


def test_changing_the_source_needs_sources_manage(api: Api) -> None:
    response = api.client("editor").put(
        "/api/v1/sources/warehouse", json={"url": "duckdb:///x.duckdb"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 403


def test_connection_test_lists_tables_and_columns(api: Api) -> None:
    test = api.admin.post("/api/v1/sources/warehouse/test").json()
    assert test["ok"] is True and test["dialect"] == "duckdb"
    assert {"users", "purchases", "events"} <= {t["name"] for t in test["tables"]}
    tables = api.admin.get("/api/v1/sources/warehouse/tables", params={"limit": 2}).json()
    assert len(tables["items"]) == 2 and tables["next_cursor"]
    columns = api.admin.get("/api/v1/sources/warehouse/tables/users/columns").json()["items"]
    assert {"name": "user_id", "type": "integer", "native_type": "BIGINT", "nullable": True} in [
        c for c in columns
    ]
    missing = api.admin.get("/api/v1/sources/warehouse/tables/nope/columns")
    assert missing.status_code == 404


def test_a_failing_connection_is_reported_not_raised(api: Api) -> None:
    etag = api.admin.get("/api/v1/sources/warehouse").headers["ETag"]
    api.admin.put(
        "/api/v1/sources/warehouse",
        json={"url": "duckdb:///missing.duckdb"},
        headers={"If-Match": etag},
    )
    test = api.admin.post("/api/v1/sources/warehouse/test")
    assert test.status_code == 200 and test.json()["ok"] is False
    # Endpoints that need the warehouse now say what is wrong.
    models = api.admin.get("/api/v1/schema/models/users/columns/country/values")
    assert models.status_code == 500 and "does not exist" in str(error_of(models)["message"])


def test_models_columns_relationships_and_traits(api: Api) -> None:
    models = api.admin.get("/api/v1/schema/models").json()["items"]
    kinds = {m["name"]: m["kind"] for m in models}
    assert kinds["users"] == "parent" and kinds["events"] == "event"
    users = api.admin.get("/api/v1/schema/models/users").json()
    email = next(c for c in users["columns"] if c["name"] == "email")
    assert email["settings"]["privacy"] == "pii" and email["type"] == "string"
    assert "purchases" in users["relations"]
    relationships = api.admin.get("/api/v1/schema/relationships").json()["items"]
    assert {"from": "users", "to": "purchases"}.items() <= relationships[0].items()
    traits = api.admin.get("/api/v1/schema/traits", params={"limit": 500}).json()["items"]
    assert "order_count" in {t["name"] for t in traits}
    assert api.admin.get("/api/v1/schema/models/nope").status_code == 404


def test_value_suggestions_refuse_private_columns(api: Api) -> None:
    values = api.admin.get(
        "/api/v1/schema/models/users/columns/country/values", params={"prefix": "d", "limit": 3}
    ).json()
    assert values and all(str(v["value"]).lower().startswith("d") for v in values)
    private = api.admin.get("/api/v1/schema/models/users/columns/email/values")
    assert private.status_code == 422


def test_check_finds_no_problems_in_the_demo(api: Api) -> None:
    assert api.admin.post("/api/v1/schema/check").json() == {"ok": True, "problems": []}


def test_schema_round_trips_and_column_settings_change_it(api: Api) -> None:
    read = api.admin.get("/api/v1/schema")
    document, etag = read.json(), read.headers["ETag"]
    assert document["parent"]["name"] == "users"

    same = api.admin.put("/api/v1/schema", json=document, headers={"If-Match": etag})
    assert same.status_code == 200, same.text
    assert same.json() == document

    settings = {"alias": "Home country", "privacy": "internal", "hidden": False}
    column = api.admin.put(
        "/api/v1/schema/models/users/columns/country",
        json=settings,
        headers={"If-Match": same.headers["ETag"]},
    )
    assert column.status_code == 200, column.text
    saved = yaml.safe_load((api.root / "schema.yaml").read_text())
    assert saved["parent"]["columns"]["country"] == {"alias": "Home country", "privacy": "internal"}

    stale = api.admin.put("/api/v1/schema", json=document, headers={"If-Match": etag})
    assert stale.status_code == 409


def test_a_schema_naming_a_missing_table_is_refused(api: Api) -> None:
    read = api.admin.get("/api/v1/schema")
    document = read.json()
    document["models"][0]["table"] = "no_such_table"
    response = api.admin.put("/api/v1/schema", json=document, headers={"If-Match": "*"})
    assert response.status_code == 422
    assert api.admin.get("/api/v1/schema").headers["ETag"] == read.headers["ETag"]
    invalid = api.admin.put("/api/v1/schema", json={"parent": {}}, headers={"If-Match": "*"})
    assert invalid.status_code == 422 and error_of(invalid)["type"] == "DefinitionError"
