"""A `corral worker` stand-in for the multi-process tests in test_worker.py.

    python -m tests.activation.worker_main STORE_URL EVENTS_DIR WORKER_ID [SYNCS_JSON]

The executor writes `start` and `end` lines (run id, sync, attempt, worker, wall time) to
EVENTS_DIR/<worker id>.log and sleeps in between: syncs named `slow*` take 4 s, the
others 0.3 s. SYNCS_JSON maps sync names to their `schedule:` values.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from corral.activation.runs import RunReport, RunStatus
from corral.activation.syncs import SyncDefinition
from corral.activation.worker import RunRequest, Worker


def main() -> None:
    store_url, events_dir, worker_id = sys.argv[1:4]
    schedules = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    syncs = {
        name: SyncDefinition.model_validate(
            {
                "name": name,
                "model": "users",
                "destination": "CRM",
                "mode": "upsert",
                "mapping": {"email": "email"},
                "schedule": schedule,
            }
        )
        for name, schedule in schedules.items()
    }
    events = Path(events_dir) / f"{worker_id}.log"

    def write(kind: str, request: RunRequest) -> None:
        line = f"{kind} {request.run_id} {request.sync} {request.attempt} {worker_id} {time.time()}"
        with events.open("a") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())

    def execute(request: RunRequest) -> RunReport:
        write("start", request)
        request.recorder.log(logging.INFO, f"delivering on {worker_id}")
        time.sleep(4.0 if request.sync.startswith("slow") else 0.3)
        report = RunReport(sync=request.sync, run_id=request.run_id, status=RunStatus.SUCCEEDED)
        report.counts.added = 1
        request.recorder.progress(report)
        write("end", request)
        return report

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {worker_id} %(name)s %(message)s")
    worker = Worker(
        store_url,
        execute,
        syncs=lambda: syncs,
        worker_id=worker_id,
        poll_interval=0.2,
        concurrency=2,
        dead_after=2.0,
    )
    worker.run_forever()


if __name__ == "__main__":
    main()
