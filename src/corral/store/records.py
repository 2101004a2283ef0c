"""What the metadata store hands back: immutable records of runs, log lines, schedules,
workers and measured audience sizes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from corral.activation.runs import RejectedRow, RunCounts, RunReport, RunStatus


class SizeSource(StrEnum):
    """Who measured an audience's size."""

    STUDIO = "studio"  # a preview in the studio (or through the API)
    CLI = "cli"  # `corral audience preview`
    DEMO = "demo"  # `corral demo`
    SYNC = "sync"  # a sync run counted its members


class Trigger(StrEnum):
    MANUAL = "manual"  # someone asked: `corral sync run`, the studio's button
    SCHEDULE = "schedule"  # an interval or cron schedule came due
    AFTER = "after"  # the sync it follows finished
    RETRY = "retry"  # someone asked to run a finished run again


@dataclass(frozen=True)
class RunRecord:
    """One sync run as the store holds it; `attempt` counts the workers that started it."""

    id: str
    sync: str
    status: RunStatus
    trigger: Trigger
    dry_run: bool
    queued_at: datetime
    scheduled_for: datetime | None = None
    triggered_by: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker_id: str | None = None
    attempt: int = 0
    counts: RunCounts = field(default_factory=RunCounts)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    rejected: tuple[RejectedRow, ...] = ()
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_report(self) -> RunReport:
        return RunReport(
            sync=self.sync,
            run_id=self.id,
            status=self.status,
            dry_run=self.dry_run,
            started_at=self.started_at,
            finished_at=self.finished_at,
            counts=RunCounts(**self.counts.to_dict()),
            error=self.error,
            rejected=list(self.rejected),
            samples=dict(self.samples),
            timings=dict(self.timings),
        )

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "sync": self.sync,
            "status": self.status.value,
            "trigger": self.trigger.value,
            "dry_run": self.dry_run,
            "queued_at": iso(self.queued_at),
            "scheduled_for": iso(self.scheduled_for),
            "triggered_by": self.triggered_by,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "seconds": self.seconds,
            "worker_id": self.worker_id,
            "attempt": self.attempt,
            "counts": self.counts.to_dict(),
            "timings": dict(self.timings),
            "error": self.error,
            "rejected": [
                {"key": row.key, "reason": row.reason, "attempts": row.attempts}
                for row in self.rejected
            ],
        }


@dataclass(frozen=True)
class LogLine:
    run_id: str
    at: datetime
    level: int
    message: str

    @property
    def level_name(self) -> str:
        return logging.getLevelName(self.level)


@dataclass(frozen=True)
class ScheduleState:
    """Where a sync's time schedule stands; `next_due_at` is None while its run is out."""

    sync: str
    schedule: str
    next_due_at: datetime | None
    last_run_id: str | None
    version: int


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    recovered_at: datetime | None = None
    recovered_by: str | None = None


@dataclass(frozen=True)
class AudienceSize:
    """An audience's size as measured once.

    `definition_hash` names the definition it was measured on
    (`corral.store.sizes.definition_hash`): a size whose hash differs from the
    audience's current one is stale. `as_of` is the moment relative windows were measured
    from, `measured_at` when the warehouse counted.
    """

    audience: str
    definition_hash: str
    size: int
    parent_rows: int
    as_of: datetime
    measured_at: datetime
    source: SizeSource
