"""The studio's HTTP API (JSON under /api/v1, with an OpenAPI document) and its web app.

    app = create_app(Path("corral-demo"))
    uvicorn.run(app)                     # what `corral serve` does

The workspace folder stays the source of truth: the API reads its YAML files, and
writes them back (see `corral.api.documents`). Run history, audience versions, users and
secrets live in the metadata store that corral.yaml names (or `store_url`).

See docs/api.md for authentication, errors, pagination and ETags.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from corral import __version__
from corral.api.deps import StudioDep
from corral.api.errors import install_error_handlers
from corral.api.routers import audiences, auth, destinations, schema, sources, syncs
from corral.api.spa import STATIC, SinglePageApp
from corral.api.studio import Studio
from corral.governance import Governance

API_PREFIX = "/api/v1"
# Endpoints anyone may call, signed in or not.
PUBLIC = ("GET /api/v1/health", "POST /api/v1/auth/login")


class Health(BaseModel):
    status: str
    version: str
    workspace: str


def create_app(
    workspace: Path,
    *,
    store_url: str | None = None,
    serve_spa: bool = True,
    static: Path = STATIC,
) -> FastAPI:
    """The API for the workspace at `workspace`; `serve_spa=False` leaves out the web app."""
    studio = Studio(Path(workspace), store_url=store_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        studio.close()

    app = FastAPI(
        title="Corral",
        version=__version__,
        description="The studio's API: sources, schema, audiences, destinations, syncs, "
        "users, roles and tokens. See docs/api.md.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        swagger_ui_oauth2_redirect_url=f"{API_PREFIX}/docs/oauth2-redirect",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.studio = studio
    _attach_governance(app, studio)
    install_error_handlers(app)

    api = APIRouter(prefix=API_PREFIX)
    api.add_api_route("/health", health, methods=["GET"], tags=["health"], summary="Is it up")
    for module in (sources, schema, audiences, destinations, syncs):
        api.include_router(module.router)
    api.include_router(auth.router)
    app.include_router(api)

    # Last: it answers everything no route matched (the app's pages, and JSON 404s).
    app.mount("/", SinglePageApp(static, enabled=serve_spa), name="studio")
    return app


def health(studio: StudioDep) -> Health:
    return Health(status="ok", version=__version__, workspace=studio.root.name)


def _attach_governance(app: FastAPI, studio: Studio) -> None:
    """`app.state.governance`, which every permission check reads, and the secrets store
    destination settings are kept in."""
    governance = Governance(studio.store, workspace=studio.root)
    app.state.governance = governance
    studio.secrets = governance.secrets
