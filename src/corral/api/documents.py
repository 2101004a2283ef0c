"""The workspace's YAML files as the API's documents: ETags, atomic writes, file names.

The folder stays the source of truth. Each resource (an audience, a destination, a sync,
`schema.yaml`, `corral.yaml`) is one file; its ETag is a hash of the file's bytes, so an
edit made in a text editor or by `git pull` changes it just as an API write does. A write
goes to a temporary file in the same folder and is renamed over the old one, so a reader
never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from corral.api.errors import PreconditionRequiredError
from corral.errors import ConflictError


def etag_of_bytes(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:20] + '"'


def etag_of(path: Path) -> str:
    """The ETag of a file (of no bytes when it does not exist, like an absent corral.yaml)."""
    return etag_of_bytes(path.read_bytes() if path.exists() else b"")


def check_if_match(if_match: str | None, current: str, *, what: str) -> None:
    """Refuse a change without `If-Match` (428) or based on another version (409)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequiredError(
            f"changing {what} needs the If-Match header",
            where=what,
            hint=f"GET it first and send its ETag back as If-Match (now {current})",
        )
    offered = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if "*" in offered or current in offered:
        return
    raise ConflictError(
        f"{what} changed since you read it",
        where=what,
        hint=f"GET it again (its ETag is now {current}), reapply your change and retry",
    )


def slug(name: str) -> str:
    """A file name for a resource name: lower case ASCII, underscores for the rest."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return text[:80] or "unnamed"


def new_file(folder: Path, name: str) -> Path:
    """A path in `folder` for a new resource called `name` that no file holds yet."""
    base = slug(name)
    candidate = folder / f"{base}.yaml"
    number = 2
    while candidate.exists():
        candidate = folder / f"{base}_{number}.yaml"
        number += 1
    return candidate


def dump_yaml(data: Any) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return text.encode("utf-8")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` whole: written beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Change:
    """File changes applied together, and undone together if the workspace then fails to
    load (a duplicate name, a sync whose audience went away)."""

    def __init__(self) -> None:
        self._undo: list[tuple[Path, bytes | None]] = []

    def write(self, path: Path, data: bytes) -> None:
        self._undo.append((path, path.read_bytes() if path.exists() else None))
        write_atomic(path, data)

    def delete(self, path: Path) -> None:
        self._undo.append((path, path.read_bytes() if path.exists() else None))
        path.unlink(missing_ok=True)

    def undo(self) -> None:
        for path, before in reversed(self._undo):
            if before is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, before)
        self._undo.clear()
