"""A destination that keeps records in memory, with scriptable failures, for engine tests.

Like a real destination it is idempotent: records are keyed, so a resent batch leaves
the same contents. `sent` counts every record it was sent, resends included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from corral.destinations.base import (
    Batch,
    Catalog,
    CheckResult,
    Identifier,
    Job,
    Mode,
    Operation,
    Record,
    RowResult,
)
from corral.errors import TransientDestinationError


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store: str = "default"
    batch_size: int = 3


class Store:
    """What one named memory destination holds, shared by every instance."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.sent = 0
        self.batches: list[tuple[str, list[str]]] = []
        self.reject: Callable[[Record], str | None] = lambda record: None
        self.retry: Callable[[Record], float | None] = lambda record: None
        self.fail_batches = 0  # whole batches to fail with a transient error first
        self.lock = threading.Lock()


STORES: dict[str, Store] = {}


def store(name: str = "default") -> Store:
    return STORES.setdefault(name, Store())


class MemoryDestination:
    catalog: ClassVar[Catalog] = Catalog(
        name="memory",
        title="Memory",
        modes=frozenset(Mode),
        config=MemoryConfig,
        batch_size=3,
        concurrency=2,
        identifiers={"email": Identifier("email", "plain", hashed=False)},
    )

    def __init__(self, config: MemoryConfig, *, transport: httpx.BaseTransport | None = None):
        self.store = store(config.store)
        self.mode = Mode.UPSERT

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        self.mode = mode

    def send(self, batch: Batch) -> list[RowResult] | Job:
        data = self.store
        with data.lock:
            data.batches.append((batch.operation.value, [r.key for r in batch.records]))
            if data.fail_batches:
                data.fail_batches -= 1
                raise TransientDestinationError("scripted outage", retry_after=0.0)
        results = []
        for record in batch.records:
            with data.lock:
                data.sent += 1
            reason = data.reject(record)
            after = data.retry(record)
            if reason is not None:
                results.append(RowResult.rejected(record.key, reason))
            elif after is not None:
                results.append(RowResult.retry(record.key, "scripted retry", after))
            else:
                self._apply(batch.operation, record)
                results.append(RowResult.accepted(record.key))
        return results

    def _apply(self, operation: Operation, record: Record) -> None:
        with self.store.lock:
            if operation is Operation.REMOVE:
                self.store.records.pop(record.key, None)
            else:
                self.store.records[record.key] = dict(record.fields)

    def poll(self, job: Job) -> list[RowResult] | Job:
        raise AssertionError("the memory destination is synchronous")

    def check(self) -> CheckResult:
        return CheckResult(True, "in memory")

    def close(self) -> None:
        pass
