"""A `RunRecorder` that writes a run's log and progress to the metadata store."""

from __future__ import annotations

import logging
import threading

from corral.activation.runs import RunReport
from corral.store.store import Store

logger = logging.getLogger("corral.sync")


class StoreRecorder:
    """Saves every log line and progress report of one run; safe to share between threads.

    Each line is also mirrored to the `corral.sync` logger with the run id, so a worker's
    own log shows what the studio shows.
    """

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._lock = threading.Lock()

    def log(self, level: int, message: str) -> None:
        with self._lock:
            self.store.append_log(self.run_id, level, message)
        logger.log(level, "run %s: %s", self.run_id, message)

    def progress(self, report: RunReport) -> None:
        with self._lock:
            self.store.record_progress(report)
