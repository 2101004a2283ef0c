"""Corral's metadata store: sync run history, run logs, schedule state, workers and
measured audience sizes.

SQLAlchemy over a SQLite file by default (`<workspace>/.corral/metadata.db`) or
PostgreSQL when many workers share it; Alembic migrations ship in `migrations/` and run
from `Store.upgrade()`.
"""

from corral.store.recorder import StoreRecorder
from corral.store.records import (
    AudienceSize,
    LogLine,
    RunRecord,
    ScheduleState,
    SizeSource,
    Trigger,
    WorkerRecord,
)
from corral.store.store import Store, default_store_url, normalize_url

__all__ = [
    "AudienceSize",
    "LogLine",
    "RunRecord",
    "ScheduleState",
    "SizeSource",
    "Store",
    "StoreRecorder",
    "Trigger",
    "WorkerRecord",
    "default_store_url",
    "normalize_url",
]
