"""Dependencies the routers share: the studio, and the scope each permission is checked in.

Permissions about warehouse data (schema, audiences, rows) are scoped to the source
`source:warehouse`; those about destinations, syncs and their runs to
`destination:<name>`, the destination a sync sends to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from corral.api.security import Principal, actor, governance_of, require, require_some
from corral.api.studio import Studio

WAREHOUSE = "warehouse"
SOURCE_SCOPE = f"source:{WAREHOUSE}"


def get_studio(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


StudioDep = Annotated[Studio, Depends(get_studio)]
IfMatch = Annotated[
    str | None,
    Header(description="The ETag you read; required to change or delete (428 without)."),
]


def source_scope(request: Request) -> str:
    return SOURCE_SCOPE


def destination_scope(request: Request) -> str:
    return f"destination:{request.path_params.get('name', '')}"


def sync_scope(request: Request) -> str | None:
    """The destination of the sync named in the path (None for an unknown sync: the
    endpoint then answers 404 to callers with an unscoped grant)."""
    name = request.path_params.get("name")
    syncs = get_studio(request).workspace().syncs
    sync = syncs.get(str(name)) if name is not None else None
    return None if sync is None else f"destination:{sync.destination}"


def run_scope(request: Request) -> str | None:
    """The destination of the sync a run belongs to."""
    studio = get_studio(request)
    record = studio.store.run(str(request.path_params.get("run_id", "")))
    if record is None:
        return None
    sync = studio.workspace().syncs.get(record.sync)
    return None if sync is None else f"destination:{sync.destination}"


def author(principal: Principal) -> str:
    return principal.email or principal.user_id


def audit(
    request: Request,
    principal: Principal,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append to the audit log: `action` is "<thing>.<verb>", like "audience.update"."""
    kind = action.partition(".")[0]
    governance_of(request).audit.record(actor(request, principal), action, kind, target, details)


# Who may call an endpoint: the caller, once `require` let them in.
AudienceEditor = Annotated[Principal, Depends(require("audiences:edit", source_scope))]
AudienceViewer = Annotated[Principal, Depends(require("audiences:view", source_scope))]
DataViewer = Annotated[Principal, Depends(require("data:view", source_scope))]
DestinationCreator = Annotated[Principal, Depends(require("destinations:manage"))]
DestinationManager = Annotated[
    Principal, Depends(require("destinations:manage", destination_scope))
]
DestinationViewer = Annotated[Principal, Depends(require("destinations:view", destination_scope))]
RunViewer = Annotated[Principal, Depends(require("syncs:view", run_scope))]
SchemaEditor = Annotated[Principal, Depends(require("schema:edit", source_scope))]
SchemaViewer = Annotated[Principal, Depends(require("schema:view", source_scope))]
SomeDestinationViewer = Annotated[Principal, Depends(require_some("destinations:view"))]
SomeSyncViewer = Annotated[Principal, Depends(require_some("syncs:view"))]
SourceManager = Annotated[Principal, Depends(require("sources:manage", source_scope))]
SyncCreator = Annotated[Principal, Depends(require("syncs:manage"))]
SyncManager = Annotated[Principal, Depends(require("syncs:manage", sync_scope))]
SyncRunner = Annotated[Principal, Depends(require("syncs:run", sync_scope))]
SyncViewer = Annotated[Principal, Depends(require("syncs:view", sync_scope))]
