"""Syncs through the API: editing, runs in the background, dry runs, history, logs."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import Api, error_of

SYNC = {
    "name": "VIPs to JSON",
    "audience": "VIPs",
    "destination": "JSON Lines exports",
    "mode": "upsert",
    "mapping": {"email": "email", "plan": "plan"},
}


def wait_for(client: TestClient, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_create_edit_and_delete_a_sync(api: Api) -> None:
    created = api.admin.post("/api/v1/syncs", json=SYNC)
    assert created.status_code == 201, created.text
    assert created.json()["file"] == "syncs/vips_to_json.yaml"
    assert created.json()["schedule"] == "manual"

    changed = {**SYNC, "schedule": {"every": "2 hours"}}
    etag = created.headers["ETag"]
    updated = api.admin.put("/api/v1/syncs/VIPs to JSON", json=changed, headers={"If-Match": etag})
    assert updated.status_code == 200, updated.text
    assert updated.json()["schedule"] == "every 2 hours"

    stale = api.admin.delete("/api/v1/syncs/VIPs to JSON", headers={"If-Match": etag})
    assert stale.status_code == 409
    gone = api.admin.delete(
        "/api/v1/syncs/VIPs to JSON", headers={"If-Match": updated.headers["ETag"]}
    )
    assert gone.status_code == 204 and not (api.root / "syncs" / "vips_to_json.yaml").exists()


def test_a_sync_must_name_what_exists(api: Api) -> None:
    for wrong, field in (
        ({"destination": "Nowhere"}, "Nowhere"),
        ({"audience": "Nobody"}, "Nobody"),
    ):
        response = api.admin.post("/api/v1/syncs", json={**SYNC, **wrong})
        assert response.status_code == 404 and field in str(error_of(response)["message"])
    bad_cron = api.admin.post("/api/v1/syncs", json={**SYNC, "schedule": {"cron": "nope"}})
    assert bad_cron.status_code == 422
    taken = api.admin.post("/api/v1/syncs", json={**SYNC, "name": "VIPs to CSV"})
    assert taken.status_code == 409


def test_run_now_in_the_background_then_history_and_logs(api: Api) -> None:
    started = api.admin.post("/api/v1/syncs/VIPs to CSV/run")
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert started.headers["Location"] == f"/api/v1/runs/{run_id}"

    run = wait_for(api.admin, run_id)
    assert run["status"] == "succeeded", run
    assert run["counts"]["added"] == run["counts"]["members"] > 0

    history = api.admin.get("/api/v1/syncs/VIPs to CSV/runs").json()
    assert [r["id"] for r in history["items"]] == [run_id]
    logs = api.admin.get(f"/api/v1/runs/{run_id}/logs").json()["items"]
    assert any("planned" in line["message"] for line in logs)
    assert list((api.root / "exports").rglob("*.csv"))

    audiences = api.admin.get("/api/v1/audiences", params={"limit": 500}).json()["items"]
    vips = next(a for a in audiences if a["name"] == "VIPs")
    assert vips["syncs"][0]["status"] == "succeeded"


def test_dry_run_counts_and_samples_for_data_view_only(api: Api) -> None:
    dry = api.admin.post("/api/v1/syncs/VIPs to CSV/dry-run")
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True and report["counts"]["planned_added"] > 0
    assert report["samples"]["add"][0]["email"]
    assert not (api.root / "exports").exists()

    runner = api.custom("runner", [("syncs:run", "*")])  # no data:view
    blind = runner.post("/api/v1/syncs/VIPs to CSV/dry-run").json()
    assert blind["counts"]["planned_added"] == report["counts"]["planned_added"]
    assert blind["samples"] == {}


def test_history_pages(api: Api) -> None:
    for _ in range(3):
        assert api.admin.post("/api/v1/syncs/VIPs to CSV/dry-run").status_code == 200
    first = api.admin.get("/api/v1/syncs/VIPs to CSV/runs", params={"limit": 2}).json()
    second = api.admin.get(
        "/api/v1/syncs/VIPs to CSV/runs", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert len(set(ids)) == 3


def test_rejected_rows_need_data_view_and_are_empty_before_a_run(api: Api) -> None:
    assert api.admin.get("/api/v1/syncs/VIPs to CSV/rejected").json() == {
        "items": [],
        "next_cursor": None,
    }
    assert api.client("viewer").get("/api/v1/syncs/VIPs to CSV/rejected").status_code == 403


def test_unknown_runs_and_syncs_are_404(api: Api) -> None:
    assert api.admin.get("/api/v1/runs/nope").status_code == 404
    assert api.admin.post("/api/v1/syncs/nope/run").status_code == 404
