"""The destination protocol and the catalog that drives the sync engine.

A destination receives batches of records and answers with one result per record:
accepted, rejected (with a reason), or retry after a delay. Destinations that work
asynchronously answer with a job instead, which the engine polls until it yields the
results. A destination never sees a warehouse: it gets plain Python values, already
mapped to its own field names and, where its catalog says so, normalized and hashed.

A bulk destination may also take a batch as Arrow columns (`ColumnarDestination`): the
engine then hands it the plan's columns as they come from the warehouse, renamed to the
destination's fields, without building a Python object per row. The engine uses it only
when no field of the sync needs its identifiers normalized or hashed, and sends retries
as records, so such a destination implements both.

Each destination module defines one class that implements `Destination` and carries a
`Catalog`: what it supports, how large its batches may be, how fast it may be called,
which fields are identifiers that must be normalized (and hashed), and the pydantic
model of its configuration (secrets as `SecretStr`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

import pyarrow as pa
from pydantic import BaseModel


class Mode(StrEnum):
    """How a sync treats the destination's records.

    upsert      add and change records; never remove
    update      change records that already exist; rows the destination lacks are rejected
    insert      add new records only
    mirror      add, change and remove, removing only what Corral itself delivered
    membership  add members to and remove them from a list or audience
    """

    UPSERT = "upsert"
    UPDATE = "update"
    INSERT = "insert"
    MIRROR = "mirror"
    MEMBERSHIP = "membership"


class Operation(StrEnum):
    """What the planner found for one row since the last successful delivery."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class Record:
    """One row on its way to a destination.

    `key` is the sync's primary key rendered as text; `fields` maps destination field
    names to values (None for a missing value). Remove records carry the fields that
    were last delivered for the key, so destinations can address what they remove.
    """

    key: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Batch:
    """Records that share one operation, at most `Catalog.batch_size` of them."""

    operation: Operation
    records: Sequence[Record]


@dataclass(frozen=True)
class ColumnBatch:
    """Rows that share one operation, as Arrow columns: the columnar form of a `Batch`.

    `keys` holds the sync's primary keys as text; `fields` has one column per destination
    field, named as the destination calls it; row i of `fields` belongs to `keys[i]`. The
    values are those the records of a `Batch` would carry (`records()` builds them).
    """

    operation: Operation
    keys: pa.Array
    fields: pa.RecordBatch

    def __len__(self) -> int:
        return len(self.keys)

    def records(self) -> list[Record]:
        """The same rows as records, for the paths that need them one by one."""
        names = self.fields.schema.names
        columns = [values.to_pylist() for values in self.fields.columns]
        return [
            Record(key, dict(zip(names, values, strict=True)))
            for key, *values in zip(self.keys.to_pylist(), *columns, strict=True)
        ]


@dataclass(frozen=True)
class RowResult:
    key: str
    outcome: Outcome
    reason: str | None = None
    retry_after: float | None = None  # seconds; only for Outcome.RETRY

    @classmethod
    def accepted(cls, key: str) -> RowResult:
        return cls(key, Outcome.ACCEPTED)

    @classmethod
    def rejected(cls, key: str, reason: str) -> RowResult:
        return cls(key, Outcome.REJECTED, reason)

    @classmethod
    def retry(cls, key: str, reason: str, after: float | None = None) -> RowResult:
        return cls(key, Outcome.RETRY, reason, after)


class AllAccepted:
    """What `send` may return instead of one result per record: every record accepted.

    Saves building a result per row on the fast path of bulk destinations.
    """

    _instance: AllAccepted | None = None

    def __new__(cls) -> AllAccepted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ALL_ACCEPTED"


ALL_ACCEPTED = AllAccepted()


@dataclass(frozen=True)
class Job:
    """An asynchronous delivery the engine polls; `id` is the destination's handle."""

    id: str
    keys: Sequence[str]
    poll_after: float = 5.0
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls per `per_seconds`, as the vendor documents."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class Identifier:
    """A destination field that holds a person's identifier.

    `kind` is one of: email, phone, first_name, last_name, zip, country, city, state,
    mobile_ad_id, external_id. `rules` names the vendor's normalization rules
    (see `corral.destinations.identifiers`); `hashed` says whether the value is sent as
    a SHA-256 hex digest.
    """

    kind: str
    rules: str
    hashed: bool = True


@dataclass(frozen=True)
class Catalog:
    """What the engine needs to know about a destination, declared once per module."""

    name: str
    title: str
    modes: frozenset[Mode]
    config: type[BaseModel]
    batch_size: int
    rate_limit: RateLimit | None = None
    concurrency: int = 1
    identifiers: Mapping[str, Identifier] = field(default_factory=dict)
    required_fields: frozenset[str] = frozenset()
    removals_first: bool = False
    asynchronous: bool = False
    # Each operation's rows arrive sorted by the bytes of their key: a table keyed by a
    # B-tree then loads and updates them in index order, page after page.
    sorted_keys: bool = False
    docs: str = ""

    def config_schema(self) -> dict[str, Any]:
        """The JSON Schema of the configuration; secrets carry `"writeOnly": true`."""
        return self.config.model_json_schema()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


@runtime_checkable
class Destination(Protocol):
    """One configured destination, used by one sync run at a time.

    The engine calls `open` once per run (a destination may create a list there),
    then `send` for each batch, possibly from several threads up to
    `Catalog.concurrency`, then `close`. Every mode must be idempotent: the engine may
    resend a batch after a crash.
    """

    catalog: ClassVar[Catalog]

    def open(self, mode: Mode, fields: Sequence[str]) -> None: ...

    def send(self, batch: Batch) -> list[RowResult] | AllAccepted | Job: ...

    def poll(self, job: Job) -> list[RowResult] | AllAccepted | Job:
        """The results of an asynchronous job, or the job again if it is still running."""
        ...

    def check(self) -> CheckResult:
        """Whether the destination can be reached with this configuration."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ColumnarDestination(Protocol):
    """A destination that also takes batches as Arrow columns (see the module docstring).

    `send_columns` answers as `send` does, except that it never answers with a job.
    """

    def send_columns(self, batch: ColumnBatch) -> list[RowResult] | AllAccepted: ...
