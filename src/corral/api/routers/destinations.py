"""Destinations: the catalog of types, the files in `destinations/`, connection tests.

Secret settings never leave the server: see `corral.api.secrets` for how they are
stored, referenced from the YAML and shown as `{"set": true}`.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, ValidationError

from corral.activation.engine import open_destination
from corral.activation.syncs import DestinationDefinition
from corral.api.deps import (
    DestinationCreator,
    DestinationManager,
    DestinationViewer,
    IfMatch,
    SomeDestinationViewer,
    StudioDep,
    audit,
)
from corral.api.documents import check_if_match, dump_yaml, etag_of, new_file
from corral.api.errors import ERROR_RESPONSES
from corral.api.pagination import Cursor, Limit, Page, paginate
from corral.api.secrets import SecretWriter, masked, placeholders, secret_fields, stored_names
from corral.api.security import actor
from corral.api.studio import Studio
from corral.destinations import destination_class, destination_types
from corral.errors import ConflictError, DefinitionError, DestinationError, UnknownReferenceError
from corral.workspace import Workspace

router = APIRouter(tags=["destinations"], responses=ERROR_RESPONSES)


class DestinationType(BaseModel):
    name: str
    title: str
    modes: list[str]
    batch_size: int
    identifiers: dict[str, dict[str, Any]]
    required_fields: list[str]
    secrets: list[str] = Field(description="Settings that are secret (write-only)")
    config_schema: dict[str, Any] = Field(description="JSON Schema; secrets are writeOnly")
    docs: str


class DestinationBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = {}
    description: str | None = None


class DestinationView(BaseModel):
    name: str
    type: str
    description: str | None
    file: str
    etag: str
    config: dict[str, Any] = Field(description='Secrets show as {"set": true}')
    syncs: list[str]


class TestResult(BaseModel):
    ok: bool
    message: str


@router.get("/destination-types", summary="Every destination type and its settings")
def list_types(
    principal: SomeDestinationViewer, limit: Limit = 50, cursor: Cursor = None
) -> Page[DestinationType]:
    return paginate([_type(name) for name in destination_types()], limit, cursor)


@router.get("/destinations", summary="Destinations the caller may see")
def list_destinations(
    principal: SomeDestinationViewer, studio: StudioDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[DestinationView]:
    """Only the destinations the caller holds destinations:view for."""
    workspace = studio.workspace()
    names = [
        n
        for n in sorted(workspace.destinations)
        if principal.can("destinations:view", f"destination:{n}")
    ]
    views = [_view(studio, workspace, n) for n in names]
    return paginate(views, limit, cursor)


@router.post("/destinations", status_code=201, summary="Create a destination")
def create_destination(
    principal: DestinationCreator,
    body: DestinationBody,
    studio: StudioDep,
    request: Request,
    response: Response,
) -> DestinationView:
    fields = secret_fields(destination_class(body.type).catalog.config)
    writer = SecretWriter(studio.secrets, body.name, actor(request, principal))
    try:
        with studio.changing() as change:
            workspace = studio.workspace()
            if body.name in workspace.destinations:
                raise ConflictError(
                    f"there is already a destination named {body.name!r}",
                    where=f"destination {body.name}",
                    hint="pick another name, or PUT /api/v1/destinations/{name} to change it",
                )
            config = writer.convert(body.config, {}, fields)
            data = _yaml(body, config, fields)
            change.write(new_file(studio.root / "destinations", body.name), data)
    except BaseException:
        writer.rollback()
        raise
    audit(request, principal, "destination.create", body.name, {"type": body.type})
    return _respond(studio, body.name, response)


@router.get("/destinations/{name}", summary="A destination (never its secrets)")
def get_destination(
    principal: DestinationViewer, name: str, studio: StudioDep, response: Response
) -> DestinationView:
    return _respond(studio, name, response)


@router.put("/destinations/{name}", summary="Change a destination")
def put_destination(
    principal: DestinationManager,
    name: str,
    body: DestinationBody,
    studio: StudioDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> DestinationView:
    """Send secrets as text to change them, `{"set": true}` to keep them. The name cannot
    change while syncs send to it; the type may."""
    fields = secret_fields(destination_class(body.type).catalog.config)
    writer = SecretWriter(studio.secrets, body.name, actor(request, principal))
    try:
        with studio.changing() as change:
            workspace = studio.workspace()
            current = workspace.destination(name, where="destinations")
            path = workspace.files[f"destination:{name}"]
            check_if_match(if_match, etag_of(path), what=f"destination {name}")
            if body.name != name:
                _check_rename(workspace, name, body.name)
            before = current.config if current.type == body.type else {}
            config = writer.convert(body.config, before, fields)
            data = _yaml(body, config, fields)
            if body.name != name:
                change.delete(path)
                path = new_file(studio.root / "destinations", body.name)
            change.write(path, data)
    except BaseException:
        writer.rollback()
        raise
    old_fields = secret_fields(destination_class(current.type).catalog.config)
    writer.discard(current.config, old_fields)
    audit(request, principal, "destination.update", body.name, {"type": body.type})
    return _respond(studio, body.name, response)


@router.delete("/destinations/{name}", status_code=204, summary="Delete a destination")
def delete_destination(
    principal: DestinationManager,
    name: str,
    studio: StudioDep,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Refused (409) while syncs send to it; its stored secrets are deleted with it."""
    with studio.changing() as change:
        workspace = studio.workspace()
        current = workspace.destination(name, where="destinations")
        path = workspace.files[f"destination:{name}"]
        check_if_match(if_match, etag_of(path), what=f"destination {name}")
        syncs = _syncs_of(workspace, name)
        if syncs:
            raise ConflictError(
                f"destination {name!r} is used by the syncs {', '.join(syncs)}",
                where=f"destination {name}",
                hint="delete those syncs (or point them elsewhere) first",
            )
        change.delete(path)
    fields = secret_fields(destination_class(current.type).catalog.config)
    if studio.secrets is not None:
        for secret in stored_names(current.config, fields):
            studio.secrets.delete(secret, actor=actor(request, principal))
    audit(request, principal, "destination.delete", name)
    return Response(status_code=204)


@router.post("/destinations/{name}/test", summary="Test a destination's connection")
def test_destination(principal: DestinationManager, name: str, studio: StudioDep) -> TestResult:
    """Opens the destination with its saved settings and runs its own check (for a file
    destination: writes and deletes a probe file)."""
    workspace = studio.workspace()
    definition = workspace.destination(name, where="destinations")
    resolve = studio.secrets.get if studio.secrets is not None else None
    destination = open_destination(
        definition, dict(os.environ), root=workspace.root, secrets=resolve
    )
    try:
        result = destination.check()
    except DestinationError as error:
        return TestResult(ok=False, message=str(error))
    finally:
        close = getattr(destination, "close", None)
        if close is not None:
            close()
    return TestResult(ok=result.ok, message=result.message)


# -- helpers ------------------------------------------------------------------------------------


def _type(name: str) -> DestinationType:
    catalog = destination_class(name).catalog
    return DestinationType(
        name=name,
        title=catalog.title,
        modes=sorted(m.value for m in catalog.modes),
        batch_size=catalog.batch_size,
        identifiers={
            field: {"kind": i.kind, "rules": i.rules, "hashed": i.hashed}
            for field, i in catalog.identifiers.items()
        },
        required_fields=sorted(catalog.required_fields),
        secrets=sorted(secret_fields(catalog.config)),
        config_schema=catalog.config_schema(),
        docs=catalog.docs,
    )


def _yaml(body: DestinationBody, config: dict[str, Any], fields: dict[str, Any]) -> bytes:
    """The destination's file, after checking the settings other than secrets."""
    definition = DestinationDefinition(
        name=body.name, type=body.type, config=config, description=body.description
    )
    settings = destination_class(body.type).catalog.config
    try:
        settings.model_validate(placeholders(config, fields))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
            for e in error.errors()
            if not _is_env(config, e["loc"])
        )
        if problems:
            raise DefinitionError(
                f"the {body.type} destination's settings are wrong: {problems}",
                where=f"destination {body.name} > config",
                hint=f"GET /api/v1/destination-types shows the settings of {body.type}",
            ) from None
    return dump_yaml(definition.model_dump(mode="json", exclude_none=True, exclude_defaults=True))


def _is_env(config: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Whether a validation problem is about a setting read from the environment."""
    value = config.get(str(loc[0])) if loc else None
    return isinstance(value, dict) and set(value) == {"env"}


def _view(studio: Studio, workspace: Workspace, name: str) -> DestinationView:
    definition = workspace.destination(name, where="destinations")
    path = workspace.files[f"destination:{name}"]
    fields = secret_fields(destination_class(definition.type).catalog.config)
    return DestinationView(
        name=name,
        type=definition.type,
        description=definition.description,
        file=path.relative_to(studio.root).as_posix(),
        etag=etag_of(path),
        config=masked(definition.config, fields),
        syncs=_syncs_of(workspace, name),
    )


def _respond(studio: Studio, name: str, response: Response) -> DestinationView:
    workspace = studio.workspace()
    if name not in workspace.destinations:
        raise UnknownReferenceError(
            f"there is no destination {name!r}",
            where="destinations",
            hint="GET /api/v1/destinations lists them",
        )
    view = _view(studio, workspace, name)
    response.headers["ETag"] = view.etag
    return view


def _syncs_of(workspace: Workspace, name: str) -> list[str]:
    return sorted(s.name for s in workspace.syncs.values() if s.destination == name)


def _check_rename(workspace: Workspace, old: str, new: str) -> None:
    if new in workspace.destinations:
        raise ConflictError(
            f"there is already a destination named {new!r}", where=f"destination {old}"
        )
    syncs = _syncs_of(workspace, old)
    if syncs:
        raise ConflictError(
            f"destination {old!r} cannot be renamed while the syncs {', '.join(syncs)} send to it",
            where=f"destination {old}",
            hint="keep the name, or point those syncs elsewhere first",
        )
