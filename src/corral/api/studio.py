"""What the API serves from: the workspace folder, its warehouse, the metadata store.

One `Studio` lives on `app.state.studio`. It reads the workspace again when one of its
files changed (by a hash of each file, checked on each request), binds the schema
to the warehouse once per version of the files, and keeps a single warehouse connection
that every request (and every sync run started here) shares: an embedded DuckDB file can
be opened only once per process in one mode, and the adapters are thread-safe.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from corral.api.documents import Change
from corral.audiences.preview import Preview
from corral.errors import ConfigurationError
from corral.governance import SecretStore
from corral.schema import Schema, bind_schema
from corral.store import AudienceSize, SizeSource, Store
from corral.store.sizes import AudienceSizes, definition_hash, measured_size
from corral.store.versions import AudienceVersions
from corral.warehouse import Warehouse, connect
from corral.workspace import Workspace, load_workspace

logger = logging.getLogger(__name__)

_FOLDERS = ("audiences", "destinations", "syncs")

Fingerprint = tuple[tuple[str, str], ...]


class Studio:
    def __init__(self, root: Path, *, store_url: str | None = None) -> None:
        self.root = root.resolve()
        self._lock = threading.RLock()
        self.write_lock = threading.RLock()  # one write to the workspace at a time
        self._workspace = load_workspace(self.root)
        self._fingerprint = self._scan()
        self.store_url = store_url or self._workspace.metadata_url()
        self.store = Store(self.store_url)
        self.store.upgrade()
        self.versions = AudienceVersions(self.store)
        self.sizes = AudienceSizes(self.store)
        self.secrets: SecretStore | None = None
        self._warehouse: Warehouse | None = None
        self._warehouse_url: str | None = None
        self._schema: tuple[Fingerprint, str, Schema] | None = None
        self.runs: dict[str, threading.Thread] = {}

    def close(self) -> None:
        for thread in list(self.runs.values()):
            thread.join(timeout=30)
        with self._lock:
            if self._warehouse is not None:
                self._warehouse.close()
                self._warehouse = None
        self.store.close()

    # -- the workspace -------------------------------------------------------------------------

    def workspace(self) -> Workspace:
        """The workspace as its files are now; read again when any file changed."""
        fingerprint = self._scan()
        with self._lock:
            if fingerprint != self._fingerprint:
                logger.info("workspace %s changed on disk; reading it again", self.root)
                self._workspace = load_workspace(self.root)
                self._fingerprint = fingerprint
            return self._workspace

    def reload(self) -> Workspace:
        """Read the workspace now (after a write), failing if the files no longer load."""
        with self._lock:
            workspace = load_workspace(self.root)
            self._workspace, self._fingerprint = workspace, self._scan()
            return workspace

    @contextmanager
    def changing(self) -> Iterator[Change]:
        """One write to the workspace: the files changed inside are undone if the
        workspace no longer loads afterwards, and the error is raised."""
        with self.write_lock:
            change = Change()
            try:
                yield change
                self.reload()
            except BaseException:
                change.undo()
                with self._lock:
                    self._fingerprint = ()  # read again on the next request
                raise

    def _scan(self) -> Fingerprint:
        paths = [self.root / "corral.yaml", self.root / "schema.yaml"]
        for folder in _FOLDERS:
            paths += sorted((self.root / folder).glob("*.y*ml"))
        found = []
        for path in paths:
            # By content: an edit within the file system's timestamp resolution that keeps
            # the size would slip past a (mtime, size) check. The files are small.
            try:
                digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            except FileNotFoundError:
                continue
            found.append((str(path), digest))
        return tuple(found)

    def as_of(self) -> datetime:
        """The workspace's fixed `as_of`, else now."""
        return self.workspace().settings.as_of or datetime.now(UTC)

    # -- the warehouse -------------------------------------------------------------------------

    def warehouse(self) -> Warehouse:
        """The shared connection to the workspace's warehouse, opened on first use."""
        url = self.workspace().warehouse_url()
        with self._lock:
            if self._warehouse is not None and self._warehouse_url == url:
                return self._warehouse
            if self._warehouse is not None:
                self._warehouse.close()
                self._warehouse, self._schema = None, None
            if url.startswith("duckdb:///"):
                path = Path(url.split("://", 1)[1].partition("?")[0])
                if not path.exists():
                    raise ConfigurationError(
                        f"the warehouse file {path} does not exist",
                        where="corral.yaml",
                        hint="run 'corral demo' to build the demo warehouse, or change the "
                        "warehouse with PUT /api/v1/sources/warehouse",
                    )
            self._warehouse = connect(url)
            self._warehouse_url = url
            return self._warehouse

    def forget_warehouse(self) -> None:
        """Close the shared connection, so the next request opens the (new) URL."""
        with self._lock:
            if self._warehouse is not None:
                self._warehouse.close()
            self._warehouse, self._warehouse_url, self._schema = None, None, None

    def schema(self) -> Schema:
        """The workspace's schema bound to the warehouse's column types (cached per version)."""
        workspace = self.workspace()
        warehouse = self.warehouse()
        key = (self._fingerprint, self._warehouse_url or "")
        with self._lock:
            if self._schema is not None and self._schema[:2] == key:
                return self._schema[2]
        started = time.perf_counter()
        schema = bind_schema(workspace.schema, warehouse)
        logger.debug("bound the schema in %.1f ms", (time.perf_counter() - started) * 1000)
        with self._lock:
            self._schema = (key[0], key[1], schema)
        return schema

    # -- measured sizes ----------------------------------------------------------------------

    def definition_hashes(self) -> dict[str, str]:
        """Each audience's definition hash now (`corral.store.sizes.definition_hash`)."""
        audiences = self.workspace().audiences
        return {name: definition_hash(a, audiences) for name, a in audiences.items()}

    def record_size(self, name: str, result: Preview, definition: str) -> AudienceSize:
        """Keep a preview's size in the metadata store; a failing store only logs."""
        size = measured_size(name, result, definition, SizeSource.STUDIO)
        try:
            self.sizes.record(size)
        except SQLAlchemyError as error:
            logger.warning("could not record the size of audience %r: %s", name, error)
        return size
