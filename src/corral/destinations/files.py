"""Files: each sync run's changes as CSV, JSON Lines or Parquet, in a folder or on S3.

A run writes into its own folder, `<path or prefix>/<sync>/<run>/`, one part file per
batch, named after the batch's operation and a hash of its keys:

    exports/vips-to-crm/run-42/added-3f9c0a1b2d4e5f60.csv
    exports/vips-to-crm/run-42/changed-0c1d2e3f40516273.csv
    exports/vips-to-crm/run-42/removed-9a8b7c6d5e4f3021.csv
    exports/vips-to-crm/run-42/_manifest.json

Every row holds the record's key in `_key` and then the mapped fields, in the order the
sync lists them. A part is written under a temporary name and renamed into place (on S3,
one PutObject is atomic), so a reader never sees half a part; a resent batch has the same
keys, so it overwrites its own part rather than adding a second copy. The files are
snapshots of changes, not a table: a reader applies `added`, `changed` and `removed` in
run order to rebuild the current state.

>>> destination = FileDestination(FileConfig(path="exports", format="parquet"))  # doctest: +SKIP
>>> destination.begin_run("run-42", "VIPs to CRM")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from corral.destinations.base import (
    Batch,
    Catalog,
    CheckResult,
    Job,
    Mode,
    Operation,
    RowResult,
)
from corral.errors import (
    ConfigurationError,
    DestinationError,
    InternalError,
    TransientDestinationError,
)

logger = logging.getLogger(__name__)

KEY_COLUMN = "_key"
MANIFEST = "_manifest.json"

# The word each operation gives its part files.
PART_NAMES: Mapping[Operation, str] = {
    Operation.ADD: "added",
    Operation.CHANGE: "changed",
    Operation.REMOVE: "removed",
}
_OPERATIONS_BY_PART = {name: operation for operation, name in PART_NAMES.items()}
_EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_PART = re.compile(r"^(added|changed|removed)-[0-9a-f]{16}\.(csv|jsonl|parquet)$")


class FileConfig(BaseModel):
    """Where and how the files are written.

    `path` is a local folder; `url` is `s3://bucket/prefix` on AWS S3 or any S3-compatible
    store (set `endpoint_url` for MinIO, R2, Ceph and the like). Give exactly one of them.
    Without `access_key_id`, boto3 finds credentials itself (environment, profile, role).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    url: str | None = None
    format: Literal["csv", "jsonl", "parquet"] = "csv"
    manifest: bool = True
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None

    @model_validator(mode="after")
    def _one_target(self) -> FileConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path` (a local folder) or `url` (s3://...)")
        if self.url is not None and not self.url.startswith("s3://"):
            raise ValueError(
                f"`url` must start with s3://, not {self.url!r}; use `path` for a folder"
            )
        if self.url is not None and not self.url.removeprefix("s3://").split("/")[0]:
            raise ValueError(f"`url` {self.url!r} names no bucket: write s3://bucket/prefix")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both `access_key_id` and `secret_access_key`, or neither")
        return self


class _Store(Protocol):
    """Where part files go: a folder or an S3 prefix. Paths are relative, with '/'."""

    def put(self, path: str, data: bytes, content_type: str) -> None: ...

    def list(self, folder: str) -> list[str]: ...

    def delete(self, path: str) -> None: ...

    def describe(self, path: str) -> str: ...


class _FolderStore:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def put(self, path: str, data: bytes, content_type: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same folder, renamed over the target: readers see the
        # old part or the new one, never half of one, and a crash leaves only a .tmp file.
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def list(self, folder: str) -> list[str]:
        directory = self.root / folder
        return (
            sorted(p.name for p in directory.iterdir() if p.is_file()) if directory.exists() else []
        )

    def delete(self, path: str) -> None:
        (self.root / path).unlink(missing_ok=True)

    def describe(self, path: str) -> str:
        return str(self.root / path)


class _S3Store:
    def __init__(self, config: FileConfig) -> None:
        assert config.url is not None
        bucket, _, prefix = config.url.removeprefix("s3://").partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = _s3_client(config)

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def put(self, path: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(path), Body=data, ContentType=content_type
        )

    def list(self, folder: str) -> list[str]:
        start = self._key(folder).rstrip("/") + "/"
        names: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        ):
            names.extend(item["Key"][len(start) :] for item in page.get("Contents", []))
        return sorted(name for name in names if "/" not in name)

    def delete(self, path: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(path))

    def describe(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._key(path)}"


def _s3_client(config: FileConfig) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigurationError(
            "the file destination needs boto3 to write to S3",
            hint="pip install 'corral[s3]'",
        ) from None
    settings = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        # S3-compatible stores reached by endpoint rarely resolve bucket subdomains.
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
    )
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=secret,
        config=settings,
    )


@dataclass(frozen=True)
class _Part:
    name: str
    operation: Operation
    rows: int


class FileDestination:
    """Writes each run's changes as part files; see the module docstring for the layout.

    The engine calls `begin_run(run_id, sync)` before `open` when the destination has it:
    it names the run's folder, so a run resumed after a crash writes into the same folder
    and its resent batches overwrite their own parts. Without it, the folder is named
    after the time `open` was called, under `unnamed-sync/`.
    """

    catalog: ClassVar[Catalog] = Catalog(
        name="file",
        title="Files (CSV, JSON Lines, Parquet; local folder or S3)",
        modes=frozenset({Mode.UPSERT, Mode.INSERT, Mode.MIRROR, Mode.MEMBERSHIP}),
        config=FileConfig,
        batch_size=100_000,
        concurrency=4,
        docs="docs/destinations/files.md",
    )

    def __init__(self, config: FileConfig, *, transport: httpx.BaseTransport | None = None):
        # `transport` is accepted for the common constructor; files need no HTTP client.
        self.config = config
        self._store: _Store | None = None
        self._lock = threading.Lock()
        self._sync_folder = "unnamed-sync"
        self._run_folder: str | None = None
        self._mode: Mode | None = None
        self._fields: list[str] = []
        self._parts: dict[str, _Part] = {}
        self._arrow_types: dict[str, pa.DataType] = {}

    def __repr__(self) -> str:
        return f"FileDestination({self.config.url or self.config.path!r}, {self.config.format})"

    @property
    def folder(self) -> str:
        """The run's folder, relative to `path` or to the S3 prefix."""
        if self._run_folder is None:
            raise InternalError("the file destination was sent a batch before open()")
        return f"{self._sync_folder}/{self._run_folder}"

    def begin_run(self, run_id: str, sync: str) -> None:
        """Name the folder of the next run after the sync and the run's id."""
        self._sync_folder = _slug(sync) or "unnamed-sync"
        self._run_folder = _safe_name(run_id)
        self._parts = {}

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode not in self.catalog.modes:
            raise InternalError(f"the file destination does not support {mode} mode")
        if KEY_COLUMN in fields:
            raise DestinationError(
                f"a mapped field is named {KEY_COLUMN!r}, which the file destination uses "
                "for the record key",
                hint="rename that field in the sync's mapping",
            )
        self._mode = mode
        self._fields = list(fields)
        self._arrow_types = {}
        if self._run_folder is None:
            self._run_folder = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    def send(self, batch: Batch) -> list[RowResult] | Job:
        if self._mode is None:
            raise InternalError("the file destination was sent a batch before open()")
        if not batch.records:
            return []
        name = _part_name(batch, self.config.format)
        path = f"{self.folder}/{name}"
        started = time.perf_counter()
        data = self._encode(batch)
        self._put(path, data, _CONTENT_TYPES[self.config.format])
        with self._lock:
            self._parts[name] = _Part(name, batch.operation, len(batch.records))
        logger.info(
            "file destination wrote %s (%d rows, %d bytes) in %.3fs",
            self._describe(path),
            len(batch.records),
            len(data),
            time.perf_counter() - started,
        )
        return [RowResult.accepted(record.key) for record in batch.records]

    def poll(self, job: Job) -> list[RowResult] | Job:
        raise InternalError("the file destination never answers with a job")

    def check(self) -> CheckResult:
        probe = f".corral-check-{uuid.uuid4().hex}"
        try:
            self._put(probe, b"corral can write here\n", "text/plain")
            self._store_or_open().delete(probe)
        except (DestinationError, ConfigurationError) as error:
            return CheckResult(False, error.message)
        return CheckResult(True, f"can write to {self._describe('')}")

    def close(self) -> None:
        """Write the run's `_manifest.json`, unless `manifest` is off or nothing was sent."""
        if self._mode is None or self._run_folder is None:
            return
        if self.config.manifest and self._parts:
            data = json.dumps(self._manifest(), indent=2, ensure_ascii=False).encode()
            self._put(f"{self.folder}/{MANIFEST}", data, "application/json")
        self._mode = None
        self._run_folder = None

    def _manifest(self) -> dict[str, Any]:
        # Parts written by an earlier process for the same run (before a crash and
        # resume) are listed too; their row counts are unknown here, so they are null.
        with self._lock:
            known = dict(self._parts)
        present = [name for name in self._store_or_open().list(self.folder) if _PART.match(name)]
        parts: list[dict[str, Any]] = []
        for name in sorted(set(present) | set(known)):
            part = known.get(name)
            operation = part.operation if part else _OPERATIONS_BY_PART[name.split("-")[0]]
            parts.append({"file": name, "operation": operation.value, "rows": part and part.rows})
        totals = {op.value: 0 for op in Operation}
        for part in known.values():
            totals[part.operation.value] += part.rows
        return {
            "sync": self._sync_folder,
            "run": self._run_folder,
            "mode": self._mode.value if self._mode else None,
            "format": self.config.format,
            "columns": [KEY_COLUMN, *self._fields],
            "rows": totals,
            "parts": parts,
            "written_at": datetime.now(UTC).isoformat(),
        }

    def _encode(self, batch: Batch) -> bytes:
        columns = self._columns(batch)
        rows = [
            [record.key, *(record.fields.get(f) for f in columns[1:])] for record in batch.records
        ]
        if self.config.format == "csv":
            return _csv_bytes(columns, rows)
        if self.config.format == "jsonl":
            return _jsonl_bytes(columns, rows)
        return self._parquet_bytes(columns, rows)

    def _columns(self, batch: Batch) -> list[str]:
        """`_key`, the run's fields, then any field a record has that open() did not name."""
        columns = [KEY_COLUMN, *self._fields]
        known = set(columns)
        for record in batch.records:
            for name in record.fields:
                if name not in known:
                    known.add(name)
                    columns.append(name)
        if len(columns) > len(self._fields) + 1:
            logger.warning(
                "file destination: records carry fields the sync did not list (%s); "
                "they are written after the listed ones",
                ", ".join(columns[len(self._fields) + 1 :]),
            )
        return columns

    def _parquet_bytes(self, columns: list[str], rows: list[list[Any]]) -> bytes:
        arrays = [
            self._arrow_column(name, [row[i] for row in rows]) for i, name in enumerate(columns)
        ]
        table = pa.Table.from_arrays(arrays, names=columns)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()

    def _arrow_column(self, name: str, values: list[Any]) -> pa.Array:
        """Values typed as the column's first non-null values were; text when they vary.

        The type is kept for the run, so every part of the run agrees on it; a later part
        whose values do not fit it writes that column as text, with a warning.
        """
        with self._lock:
            known = self._arrow_types.get(name)
        if known is None:
            known = _infer_arrow_type(values)
            if known is None:
                return pa.array([_text(v) for v in values], type=pa.string())
            with self._lock:
                known = self._arrow_types.setdefault(name, known)
        try:
            return pa.array(values, type=known)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            logger.warning(
                "file destination: column %r does not fit %s in this part; written as text",
                name,
                known,
            )
            return pa.array([_text(v) for v in values], type=pa.string())

    def _store_or_open(self) -> _Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    config = self.config
                    self._store = (
                        _S3Store(config) if config.url else _FolderStore(config.path or "")
                    )
        return self._store

    def _describe(self, path: str) -> str:
        return self._store_or_open().describe(path)

    def _put(self, path: str, data: bytes, content_type: str) -> None:
        store = self._store_or_open()
        try:
            store.put(path, data, content_type)
        except OSError as error:
            raise DestinationError(
                f"could not write {store.describe(path)}: {error.strerror or error}",
                hint="check that the folder exists or can be created, and is writable",
            ) from error
        except Exception as error:
            raise _s3_error(error, store.describe(path)) from error


def _s3_error(error: Exception, where: str) -> DestinationError:
    """A botocore error as a DestinationError; throttling, 5xx and network errors may pass."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        if type(error).__module__.startswith(("botocore", "urllib3")):
            return TransientDestinationError(f"could not reach S3 to write {where}: {error}")
        raise error
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = f"S3 refused to write {where}: {code} {response.get('Error', {}).get('Message', '')}"
    if status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout"):
        return TransientDestinationError(message.strip())
    hints = {
        "NoSuchBucket": "create the bucket, or fix the bucket in `url`",
        "AccessDenied": "grant s3:PutObject (and s3:ListBucket, s3:DeleteObject) on the prefix",
        "InvalidAccessKeyId": "check `access_key_id` and `secret_access_key`",
        "SignatureDoesNotMatch": "check `secret_access_key` and `region`",
    }
    return DestinationError(message.strip(), hint=hints.get(code))


def _part_name(batch: Batch, format: str) -> str:
    """`added-<hash>.csv`: the hash of the batch's keys, so a resent batch names itself again."""
    digest = hashlib.sha256()
    for record in batch.records:
        digest.update(record.key.encode())
        digest.update(b"\x00")
    return f"{PART_NAMES[batch.operation]}-{digest.hexdigest()[:16]}.{_EXTENSIONS[format]}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not name:
        raise InternalError(f"the run id {text!r} gives no usable folder name")
    return name


def _text(value: Any) -> str | None:
    """A value as text for CSV cells and text columns; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Text keeps every digit; a JSON number would pass through a binary float.
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _csv_bytes(columns: list[str], rows: list[list[Any]]) -> bytes:
    """RFC 4180 CSV in UTF-8: quoted where needed, CRLF line ends, None as an empty cell."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_text(v) for v in row] for row in rows)
    return buffer.getvalue().encode()


def _jsonl_bytes(columns: list[str], rows: list[list[Any]]) -> bytes:
    lines = (
        json.dumps(dict(zip(columns, row, strict=True)), default=_json_default, ensure_ascii=False)
        for row in rows
    )
    return "".join(line + "\n" for line in lines).encode()


def _infer_arrow_type(values: list[Any]) -> pa.DataType | None:
    """The Arrow type of the values, or None (meaning text) when they are all null or vary."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    kinds = {type(v) for v in present}
    if kinds <= {int, float} and float in kinds:
        return pa.float64()
    if kinds == {Decimal}:
        exponents = [v.as_tuple().exponent for v in present if v.is_finite()]
        scale = max((-e for e in exponents if isinstance(e, int)), default=0)
        return pa.decimal128(38, min(max(scale, 0), 18))
    if len(kinds) > 1 or kinds & {dict, list, tuple, set, frozenset}:
        return None
    try:
        inferred = pa.array(present).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None
    if pa.types.is_null(inferred) or pa.types.is_nested(inferred):
        return None
    return inferred
