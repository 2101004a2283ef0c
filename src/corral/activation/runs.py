"""What a sync run reports: its status, its counts, its errors, its log.

The engine fills a `RunReport` as it goes and tells a `RunRecorder` about every step;
the metadata store implements the recorder (so the studio and `corral sync status` can
show runs while they happen), and tests use `MemoryRecorder`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every planned row delivered
    PARTIAL = "partial"  # finished, but some rows were rejected (they retry next run)
    FAILED = "failed"  # stopped by an error; the state stays as far as it was delivered
    NEEDS_CONFIRMATION = "needs_confirmation"  # removals held back by a guard
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass
class RunCounts:
    """Planned: what the diff found. Delivered: what the destination accepted."""

    planned_added: int = 0
    planned_changed: int = 0
    planned_removed: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    rejected: int = 0
    retried: int = 0
    held_removals: int = 0
    members: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class RejectedRow:
    key: str
    reason: str
    attempts: int = 1


@dataclass
class RunReport:
    sync: str
    run_id: str
    status: RunStatus = RunStatus.RUNNING
    dry_run: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    error: str | None = None
    rejected: list[RejectedRow] = field(default_factory=list)  # a sample, at most 100
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # dry runs
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["started_at"] = self.started_at.isoformat() if self.started_at else None
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["seconds"] = self.seconds
        return data


def jsonable(value: Any) -> Any:
    """A sample value as JSON can hold it: exact decimals and times as text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


class RunRecorder(Protocol):
    """Receives a run's progress; implementations must be thread-safe."""

    def log(self, level: int, message: str) -> None: ...

    def progress(self, report: RunReport) -> None:
        """Called after each phase and each acknowledged batch; also a heartbeat."""
        ...


class MemoryRecorder:
    """Keeps a run's log lines in memory and mirrors them to the `corral.sync` logger."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []
        self.updates = 0
        self._lock = threading.Lock()
        self._logger = logging.getLogger("corral.sync")

    def log(self, level: int, message: str) -> None:
        with self._lock:
            self.lines.append((level, message))
        self._logger.log(level, message)

    def progress(self, report: RunReport) -> None:
        with self._lock:
            self.updates += 1
