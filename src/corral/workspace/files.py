"""A workspace as a directory of YAML files.

    corral.yaml            name, time zone, warehouse, metadata store, as-of time
    schema.yaml            models, relationships, traits
    audiences/*.yaml       one audience each
    destinations/*.yaml    one destination each (type and settings; secrets as {env: VAR})
    syncs/*.yaml           one sync each (audience or model, destination, mode, mapping)

These are the same files the studio imports and exports; the CLI works on them directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from corral.activation.syncs import DestinationDefinition, SyncDefinition
from corral.audiences.conditions import AudienceDefinition
from corral.errors import DefinitionError, UnknownReferenceError
from corral.schema.model import SchemaDefinition

logger = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


class WorkspaceSettings(BaseModel):
    """`corral.yaml`: the workspace's name, time zone and warehouse connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "Corral workspace"
    time_zone: str = "UTC"
    warehouse: str = "duckdb:///warehouse.duckdb"
    # Fixes "now" for every preview (the demo's data ends at a fixed time); None is now.
    as_of: datetime | None = None
    # The metadata store (run records, schedules); a SQLite file in the workspace by default.
    metadata: str = "sqlite:///.corral/metadata.db"
    # Corral's own schema in the warehouse, for sync state and the membership log.
    planner_schema: str = "corral_planner"


@dataclass(frozen=True)
class Workspace:
    root: Path
    settings: WorkspaceSettings
    schema: SchemaDefinition
    audiences: Mapping[str, AudienceDefinition]
    audience_files: Mapping[str, Path] = field(default_factory=dict)
    destinations: Mapping[str, DestinationDefinition] = field(default_factory=dict)
    syncs: Mapping[str, SyncDefinition] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)  # "sync:<name>" -> its file

    def audience(self, name_or_file: str) -> AudienceDefinition:
        """An audience by its name, its file name (without .yaml) or a path to a YAML file."""
        if name_or_file in self.audiences:
            return self.audiences[name_or_file]
        for name, path in self.audience_files.items():
            if path.stem == name_or_file:
                return self.audiences[name]
        candidate = Path(name_or_file)
        if candidate.suffix in (".yaml", ".yml", ".json") and candidate.is_file():
            return read_audience(candidate)
        raise UnknownReferenceError(
            f"there is no audience {name_or_file!r} in {self.root}",
            hint="audiences are: " + (", ".join(sorted(self.audiences)) or "(none)"),
        )

    def sync(self, name_or_file: str) -> SyncDefinition:
        """A sync by its name or its file name (without .yaml)."""
        if name_or_file in self.syncs:
            return self.syncs[name_or_file]
        for name in self.syncs:
            path = self.files.get(f"sync:{name}")
            if path is not None and path.stem == name_or_file:
                return self.syncs[name]
        raise UnknownReferenceError(
            f"there is no sync {name_or_file!r} in {self.root}",
            hint="syncs are: " + (", ".join(sorted(self.syncs)) or "(none)"),
        )

    def destination(self, name: str, *, where: str) -> DestinationDefinition:
        if name in self.destinations:
            return self.destinations[name]
        raise UnknownReferenceError(
            f"there is no destination {name!r}",
            where=where,
            hint="destinations are: "
            + (", ".join(sorted(self.destinations)) or "(none)")
            + f"; add destinations/{name}.yaml",
        )

    def metadata_url(self) -> str:
        """The metadata store URL, with a relative SQLite path read from the workspace."""
        url = self.settings.metadata
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
            path = (self.root / url[len(prefix) :]).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
        return url

    def warehouse_url(self) -> str:
        """The warehouse URL, with a relative DuckDB path read from the workspace folder."""
        url = self.settings.warehouse
        prefix = "duckdb:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
            relative = url[len(prefix) :]
            if relative != ":memory:":
                return prefix + str((self.root / relative).resolve())
        return url


def load_workspace(root: str | Path) -> Workspace:
    """Read a workspace folder; every problem names its file and place."""
    root = Path(root)
    if not (root / "schema.yaml").is_file():
        raise DefinitionError(
            f"{root} holds no schema.yaml, so it is not a Corral workspace",
            hint="pass --workspace with a folder made by 'corral demo', or create schema.yaml",
        )
    settings_file = root / "corral.yaml"
    settings_data = _read_yaml(settings_file) if settings_file.is_file() else {}
    settings = _validate(WorkspaceSettings, settings_data, settings_file)
    schema = _validate(SchemaDefinition, _read_yaml(root / "schema.yaml"), root / "schema.yaml")
    audiences: dict[str, AudienceDefinition] = {}
    files: dict[str, Path] = {}
    for path in sorted((root / "audiences").glob("*.y*ml")):
        audience = read_audience(path)
        if audience.name in audiences:
            raise DefinitionError(
                f"two audiences are named {audience.name!r}: {files[audience.name].name} "
                f"and {path.name}",
                where=str(path),
                hint="rename one of them",
            )
        audiences[audience.name] = audience
        files[audience.name] = path
    destinations = _named(root, "destinations", DestinationDefinition)
    syncs = _named(root, "syncs", SyncDefinition)
    paths = {f"destination:{n}": p for n, (_, p) in destinations.items()}
    paths.update({f"sync:{n}": p for n, (_, p) in syncs.items()})
    for name, (sync, path) in syncs.items():
        if sync.destination not in destinations:
            raise UnknownReferenceError(
                f"sync {name!r} sends to destination {sync.destination!r}, which does not exist",
                where=str(path),
                hint="destinations are: " + (", ".join(sorted(destinations)) or "(none)"),
            )
        if sync.audience is not None and sync.audience not in audiences:
            raise UnknownReferenceError(
                f"sync {name!r} takes audience {sync.audience!r}, which does not exist",
                where=str(path),
                hint="audiences are: " + (", ".join(sorted(audiences)) or "(none)"),
            )
    logger.debug("loaded workspace %s: %d audiences, %d syncs", root, len(audiences), len(syncs))
    return Workspace(
        root,
        settings,
        schema,
        audiences,
        files,
        destinations={n: d for n, (d, _) in destinations.items()},
        syncs={n: s for n, (s, _) in syncs.items()},
        files=paths,
    )


N = TypeVar("N", DestinationDefinition, SyncDefinition)


def _named(root: Path, folder: str, model: type[N]) -> dict[str, tuple[N, Path]]:
    """Every definition in `root/folder/*.yaml`, by name; two with one name is an error."""
    found: dict[str, tuple[N, Path]] = {}
    for path in sorted((root / folder).glob("*.y*ml")):
        definition = _validate(model, _read_yaml(path), path)
        if definition.name in found:
            raise DefinitionError(
                f"two {folder} are named {definition.name!r}: {found[definition.name][1].name} "
                f"and {path.name}",
                where=str(path),
                hint="rename one of them",
            )
        found[definition.name] = (definition, path)
    return found


def read_audience(path: Path) -> AudienceDefinition:
    return _validate(AudienceDefinition, _read_yaml(path), path)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise DefinitionError(
            f"cannot read YAML: {getattr(error, 'problem', error)}",
            where=where,
            hint="check the indentation and quoting around that line",
        ) from None


def _validate(model: type[T], data: Any, path: Path) -> T:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as error:
        raise definition_error(error, str(path)) from None


def definition_error(error: ValidationError, where: str) -> DefinitionError:
    """One DefinitionError listing each problem pydantic found, with its place in the tree."""
    lines = []
    for problem in error.errors()[:10]:
        place = " > ".join(str(p) for p in problem["loc"] if not str(p).startswith("function-"))
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{place}: {message}" if place else message)
    return DefinitionError(
        "invalid definition:\n  " + "\n  ".join(lines),
        where=where,
        hint="see docs/audiences.md and docs/schema.md for the format",
    )
