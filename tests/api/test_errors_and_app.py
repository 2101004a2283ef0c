"""One error shape everywhere, the health check, the web app and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from corral.api import create_app
from corral.api.security import unguarded_routes
from tests.api.conftest import Api, error_of


def test_unknown_routes_are_json_404s_whatever_the_method(api: Api) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = api.admin.request(method, "/api/v1/no/such/thing")
        assert response.status_code == 404
        assert error_of(response)["type"] == "NotFound"


def test_validation_errors_have_the_shape_and_say_where(api: Api) -> None:
    response = api.admin.get("/api/v1/audiences", params={"limit": 0})
    assert response.status_code == 422
    error = error_of(response)
    assert error["type"] == "ValidationError" and error["where"] == "query > limit"
    body = api.admin.post("/api/v1/audiences", json={"name": ""})
    assert body.status_code == 422 and error_of(body)["where"].startswith("body")


def test_a_bad_cursor_is_a_422(api: Api) -> None:
    response = api.admin.get("/api/v1/audiences", params={"cursor": "!!not-a-cursor"})
    assert response.status_code == 422 and error_of(response)["where"] == "cursor"


def test_authentication_errors_have_the_shape(api: Api) -> None:
    response = api.anonymous.get("/api/v1/audiences")
    assert response.status_code == 401
    assert error_of(response)["type"] == "AuthenticationError"
    bad = api.anonymous.get("/api/v1/audiences", headers={"Authorization": "Bearer crl_nope"})
    assert bad.status_code == 401 and error_of(bad)["status"] == 401


def test_a_broken_file_is_a_422_naming_it_without_the_server_path(api: Api) -> None:
    (api.root / "audiences" / "broken.yaml").write_text("name: [unclosed\n")
    response = api.admin.get("/api/v1/audiences")
    error = error_of(response)
    assert response.status_code == 422
    assert error["where"] == "audiences/broken.yaml:2:1"


def test_health_needs_no_sign_in(api: Api) -> None:
    response = api.anonymous.get("/api/v1/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_every_endpoint_checks_the_caller(api: Api) -> None:
    assert unguarded_routes(api.app.routes, public=("POST /api/v1/auth/login",)) == [
        "GET /api/v1/health"
    ]


def test_the_openapi_document_lists_every_resource(api: Api) -> None:
    document = api.anonymous.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/sources/warehouse/test",
        "/api/v1/schema/models/{model}/columns/{column}/values",
        "/api/v1/audiences/{name}/versions/{version}/restore",
        "/api/v1/destinations/{name}/test",
        "/api/v1/syncs/{name}/dry-run",
        "/api/v1/runs/{run_id}/logs",
        "/api/v1/auth/login",
        "/api/v1/tokens",
    ):
        assert path in paths, path
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["error"]["$ref"].endswith("ErrorDetail")


def test_the_page_says_how_to_build_the_studio_when_it_is_not_built(api: Api) -> None:
    response = api.anonymous.get("/", follow_redirects=False)
    if (Path(__file__).parents[2] / "src/corral/api/static/index.html").exists():
        assert response.status_code == 200  # a built studio is served instead
    else:
        assert response.status_code == 200 and "make studio" in response.text


def test_the_built_app_is_served_with_index_fallback(api: Api, tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>studio</html>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    app = create_app(api.root, static=static)
    with TestClient(app) as client:
        assert client.get("/").text == "<html>studio</html>"
        assert client.get("/audiences/VIPs").text == "<html>studio</html>"
        assert client.get("/assets/app.js").text == "console.log(1)"
        assert client.get("/assets/missing.js").status_code == 404
        assert client.get("/../../etc/passwd").status_code in (404, 200)
        assert "root:" not in client.get("/..%2F..%2Fetc%2Fpasswd").text
        api_miss = client.get("/api/v1/nothing")
        assert api_miss.status_code == 404 and error_of(api_miss)["type"] == "NotFound"


def test_the_app_without_the_web_app(api: Api) -> None:
    app = create_app(api.root, serve_spa=False)
    with TestClient(app) as client:
        assert client.get("/").status_code == 404
