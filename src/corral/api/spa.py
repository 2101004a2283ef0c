"""The studio's single-page app: built files served from the package, index.html for the
app's own routes.

`make studio` builds the frontend into `src/corral/api/static/`. A GET outside `/api/`
that names no file there gets `index.html`, so the app's client-side routes
(`/audiences/VIPs`) load on refresh. Without a build, `/` says how to make one.

It is mounted at `/` after every API route, so it also answers whatever no route
matched: under `/api/` that is the API's JSON 404, whatever the method.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from corral.api.errors import error_response

STATIC = Path(__file__).parent / "static"

NOT_BUILT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Corral</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>Corral</h1>
<p>The API is running; the studio's web app has not been built.</p>
<p>Build it with <code>make studio</code>, then reload this page.</p>
<p>The API: <a href="/api/v1/docs">/api/v1/docs</a> (OpenAPI at
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>).</p>
</body>
</html>
"""


class SinglePageApp:
    """An ASGI app serving the built studio from `root`."""

    def __init__(self, root: Path = STATIC, *, enabled: bool = True) -> None:
        self.root = root.resolve()
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        await self.respond(request)(scope, receive, send)

    def respond(self, request: Request) -> Response:
        path = request.url.path.lstrip("/")
        if path == "api" or path.startswith("api/") or not self.enabled:
            return _not_found(request)
        if request.method not in ("GET", "HEAD"):
            return _not_found(request)
        index = self.root / "index.html"
        if not index.is_file():
            if path in ("", "index.html"):
                return HTMLResponse(NOT_BUILT)
            return _not_found(request)
        candidate = (self.root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(self.root):
            return FileResponse(candidate)
        if Path(path).suffix and not path.endswith(".html"):
            return _not_found(request)  # a missing asset, not one of the app's routes
        return FileResponse(index, headers={"Cache-Control": "no-cache"})


def _not_found(request: Request) -> Response:
    return error_response(
        404,
        "NotFound",
        f"there is no {request.method} {request.url.path}",
        hint="see /api/v1/docs for every endpoint",
    )
