"""A workspace as a directory of YAML files: `corral.yaml`, `schema.yaml`, `audiences/*.yaml`.

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


@dataclass(frozen=True)
class Workspace:
    root: Path
    settings: WorkspaceSettings
    schema: SchemaDefinition
    audiences: Mapping[str, AudienceDefinition]
    audience_files: Mapping[str, Path] = field(default_factory=dict)

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
    logger.debug("loaded workspace %s: %d audiences", root, len(audiences))
    return Workspace(root, settings, schema, audiences, files)


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
