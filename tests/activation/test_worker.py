"""Workers: schedules enqueue due runs once; runs execute and are recorded; and, with real
worker processes on PostgreSQL and SQLite, no sync runs twice at once, every run finishes
exactly once, and a SIGKILLed worker's run is taken up again."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from corral.activation.runs import RunReport, RunStatus
from corral.activation.syncs import (
    AfterSchedule,
    CronSchedule,
    IntervalSchedule,
    Schedule,
    SyncDefinition,
)
from corral.activation.worker import RunRequest, Worker, dbos_system_url
from corral.errors import ConfigurationError, DestinationError
from corral.store import Store, Trigger, default_store_url
from tests.store.databases import fresh_postgres_database

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def definition(name: str, schedule: Schedule) -> SyncDefinition:
    return SyncDefinition(
        name=name,
        model="users",
        destination="CRM",
        mode="upsert",  # type: ignore[arg-type]
        mapping={"email": "email"},
        schedule=schedule,
    )


def succeed(request: RunRequest) -> RunReport:
    request.recorder.log(logging.INFO, "delivered")
    report = RunReport(sync=request.sync, run_id=request.run_id, status=RunStatus.SUCCEEDED)
    report.counts.added = 2
    return report


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = default_store_url(tmp_path)
    store = Store(url)
    store.upgrade()
    store.close()
    yield url


def make_worker(
    store_url: str,
    syncs: dict[str, SyncDefinition],
    executor: Callable[[RunRequest], RunReport] = succeed,
) -> Worker:
    return Worker(store_url, executor, syncs=lambda: syncs, worker_id="test-worker")


# Scheduling and executing, in this process (no DBOS needed)


def test_interval_runs_at_once_then_an_interval_after_the_last_run(store_url: str) -> None:
    worker = make_worker(store_url, {"a": definition("a", IntervalSchedule(every="1 hour"))})

    first = worker.tick(now=T0)
    assert len(first) == 1 and worker.tick(now=T0 + timedelta(hours=5)) == []  # still out

    run = worker.store.run(first[0])
    assert run is not None and (run.trigger, run.scheduled_for) == (Trigger.SCHEDULE, T0)
    worker.store.start(first[0], "w", now=T0)
    report = run.to_report()
    report.status, report.finished_at = RunStatus.SUCCEEDED, T0 + timedelta(minutes=10)
    worker.store.finish(report)

    assert worker.tick(now=T0 + timedelta(minutes=69)) == []
    second = worker.tick(now=T0 + timedelta(minutes=70))
    assert len(second) == 1
    assert worker.store.run(second[0]).scheduled_for == T0 + timedelta(minutes=70)  # type: ignore[union-attr]


def test_cron_waits_for_its_next_fire_and_skips_missed_ones(store_url: str) -> None:
    hourly = CronSchedule(cron="0 * * * *", time_zone="Europe/Berlin")
    worker = make_worker(store_url, {"a": definition("a", hourly)})

    assert worker.tick(now=T0 + timedelta(minutes=1)) == []  # first sight: from now on
    [run_id] = worker.tick(now=T0 + timedelta(hours=5, minutes=30))  # was down for hours
    assert worker.store.run(run_id).scheduled_for == T0 + timedelta(hours=1)  # type: ignore[union-attr]

    worker.store.start(run_id, "w")
    report = worker.store.run(run_id).to_report()  # type: ignore[union-attr]
    report.status, report.finished_at = RunStatus.SUCCEEDED, T0 + timedelta(hours=5, minutes=31)
    worker.store.finish(report)
    assert worker.tick(now=T0 + timedelta(hours=5, minutes=59)) == []
    [next_id] = worker.tick(now=T0 + timedelta(hours=6))
    assert worker.store.run(next_id).scheduled_for == T0 + timedelta(hours=6)  # type: ignore[union-attr]


def test_manual_and_after_schedules_are_not_ticked(store_url: str) -> None:
    syncs = {"a": definition("a", "manual"), "b": definition("b", AfterSchedule(after="a"))}
    assert make_worker(store_url, syncs).tick(now=T0) == []


def test_many_workers_ticking_at_once_enqueue_a_due_time_once(store_url: str) -> None:
    syncs = {"a": definition("a", IntervalSchedule(every="1 hour"))}
    workers = [make_worker(store_url, syncs) for _ in range(5)]
    barrier = threading.Barrier(len(workers))
    queued: list[str] = []

    def tick(worker: Worker) -> None:
        barrier.wait()
        queued.extend(worker.tick(now=T0))

    threads = [threading.Thread(target=tick, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(queued) == 1 and len(workers[0].store.runs("a")) == 1


def test_execute_records_the_report_and_queues_followers(store_url: str) -> None:
    syncs = {"a": definition("a", "manual"), "b": definition("b", AfterSchedule(after="a"))}
    worker = make_worker(store_url, syncs)
    run_id = worker.store.enqueue_run("a")

    worker.execute(run_id)

    run = worker.store.run(run_id)
    assert run is not None and run.status == RunStatus.SUCCEEDED and run.counts.added == 2
    assert run.worker_id == "test-worker" and run.attempt == 1 and run.finished_at is not None
    assert [line.message for line in worker.store.logs(run_id)] == ["delivered"]
    [follower] = worker.store.runs("b")
    assert (follower.trigger, follower.triggered_by) == (Trigger.AFTER, run_id)


def test_execute_records_a_failing_engine_as_a_failed_run(store_url: str) -> None:
    def refuse(request: RunRequest) -> RunReport:
        raise DestinationError("HubSpot refused the token", hint="renew HUBSPOT_TOKEN")

    syncs = {"a": definition("a", "manual"), "b": definition("b", AfterSchedule(after="a"))}
    worker = make_worker(store_url, syncs, refuse)
    run_id = worker.store.enqueue_run("a")

    worker.execute(run_id)

    run = worker.store.run(run_id)
    assert run is not None and run.status == RunStatus.FAILED
    assert run.error is not None and "HubSpot refused the token" in run.error
    assert "renew HUBSPOT_TOKEN" in worker.store.logs(run_id)[-1].message
    assert worker.store.runs("b") == []  # a failed run does not start its followers


def test_execute_skips_a_canceled_run(store_url: str) -> None:
    calls: list[str] = []

    def record(request: RunRequest) -> RunReport:
        calls.append(request.run_id)
        return succeed(request)

    worker = make_worker(store_url, {}, record)
    run_id = worker.store.enqueue_run("a")
    worker.store.cancel(run_id)

    worker.execute(run_id)
    assert calls == [] and worker.store.run(run_id).status == RunStatus.CANCELED  # type: ignore[union-attr]


def test_worker_settings_are_checked(store_url: str) -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        Worker(store_url, succeed, concurrency=0)
    with pytest.raises(ConfigurationError, match="two poll intervals"):
        Worker(store_url, succeed, poll_interval=5, dead_after=8)
    with pytest.raises(ConfigurationError, match="in-memory"):
        dbos_system_url("sqlite://")
    assert (
        dbos_system_url("sqlite:////w/.corral/metadata.db")
        == "sqlite:////w/.corral/metadata-dbos.db"
    )


# Real worker processes


@dataclass(frozen=True)
class Event:
    kind: str  # start or end
    run_id: str
    sync: str
    attempt: int
    worker: str
    at: float


class Fleet:
    """Worker processes running tests/activation/worker_main.py against one store."""

    def __init__(self, store_url: str, directory: Path, schedules: dict[str, object]) -> None:
        self.store_url = store_url
        self.events_dir = directory / "events"
        self.events_dir.mkdir()
        self.logs_dir = directory
        self.schedules = schedules
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: dict[str, float] = {}

    def start(self, worker_id: str) -> None:
        log = (self.logs_dir / f"{worker_id}.out").open("ab")
        self.processes[worker_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.activation.worker_main",
                self.store_url,
                str(self.events_dir),
                worker_id,
                json.dumps(self.schedules),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, worker_id: str) -> None:
        process = self.processes.pop(worker_id)
        process.kill()
        process.wait()
        self.killed[worker_id] = time.time()

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for worker_id, process in list(self.processes.items()):
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self.processes.pop(worker_id)

    def events(self) -> list[Event]:
        found = []
        for path in self.events_dir.glob("*.log"):
            for line in path.read_text().splitlines():
                kind, run_id, sync, attempt, worker, at = line.split(" ")
                found.append(Event(kind, run_id, sync, int(attempt), worker, float(at)))
        return sorted(found, key=lambda event: event.at)

    def output(self) -> str:
        return "\n".join(path.read_text()[-3000:] for path in self.logs_dir.glob("*.out"))


def wait_until(what: str, condition: Callable[[], bool], fleet: Fleet, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting until {what}\n{fleet.output()}")


def assert_no_sync_ran_twice_at_once(fleet: Fleet) -> None:
    intervals: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    starts = {}
    for event in fleet.events():
        key = (event.run_id, event.attempt, event.worker)
        if event.kind == "start":
            starts[key] = event
        else:
            intervals[event.sync].append((starts.pop(key).at, event.at, event.run_id))
    for (_, _, worker), start in starts.items():  # cut short by a kill
        intervals[start.sync].append((start.at, fleet.killed[worker], start.run_id))
    for sync, spans in intervals.items():
        spans.sort()
        for (_, end, first), (begin, _, second) in pairwise(spans):
            assert end <= begin, f"sync {sync!r}: runs {first} and {second} overlapped"


def assert_finished_exactly_once(fleet: Fleet, store: Store, run_ids: list[str]) -> None:
    events = fleet.events()
    for run_id in run_ids:
        ends = [event for event in events if event.kind == "end" and event.run_id == run_id]
        assert len(ends) == 1, f"run {run_id} ended {len(ends)} times"
        run = store.run(run_id)
        assert run is not None and run.status == RunStatus.SUCCEEDED
        assert run.worker_id == ends[0].worker and run.counts.added == 1
        starts = [event for event in events if event.kind == "start" and event.run_id == run_id]
        # Only a killed worker's attempt may start without ending.
        assert all(event.worker in fleet.killed for event in starts if event is not starts[-1])


@pytest.fixture
def postgres_fleet(postgres_url: str, tmp_path: Path) -> Iterator[Fleet]:
    with fresh_postgres_database(postgres_url) as url:
        Store(url).upgrade()
        fleet = Fleet(url, tmp_path, {"ticker": {"every": "1 second"}, "after_a": {"after": "a"}})
        try:
            yield fleet
        finally:
            fleet.stop_all()


def test_many_workers_on_postgres_share_runs_and_take_over_a_killed_one(
    postgres_fleet: Fleet,
) -> None:
    fleet = postgres_fleet
    store = Store(fleet.store_url)
    for worker_id in ("w1", "w2", "w3"):
        fleet.start(worker_id)
    wait_until("three workers beat", lambda: len(store.workers()) == 3, fleet, timeout=60)

    slow = store.enqueue_run("slow")
    runs = [store.enqueue_run(sync) for sync in ["a", "b", "c"] * 4]

    def slow_started() -> bool:
        return any(e.kind == "start" and e.run_id == slow for e in fleet.events())

    wait_until("the slow run starts", slow_started, fleet, timeout=30)
    [victim] = [e.worker for e in fleet.events() if e.kind == "start" and e.run_id == slow]
    fleet.kill(victim)

    def all_finished() -> bool:
        return all(store.run(run_id).status.finished for run_id in [slow, *runs])  # type: ignore[union-attr]

    wait_until("every run finishes", all_finished, fleet, timeout=60)
    followers = [run.id for run in store.runs("after_a")]
    wait_until(
        "the follow-up runs finish",
        lambda: all(store.run(run_id).status.finished for run_id in followers),  # type: ignore[union-attr]
        fleet,
        timeout=30,
    )
    fleet.stop_all()

    taken_over = store.run(slow)
    assert taken_over is not None
    assert taken_over.attempt == 2 and taken_over.worker_id not in (None, victim)
    assert any("attempt 2" in line.message for line in store.logs(slow))
    assert_finished_exactly_once(fleet, store, [slow, *runs, *followers])
    assert_no_sync_ran_twice_at_once(fleet)
    # Shared: more than one worker ran them, and a survivor went on after the kill. Which
    # survivors got one is up to timing on a loaded machine (one may be busy throughout).
    ran_them = {e.worker for e in fleet.events() if e.run_id in runs}
    assert len(ran_them) >= 2 and ran_them & ({"w1", "w2", "w3"} - {victim})
    assert followers and all(store.run(i).trigger == Trigger.AFTER for i in followers)  # type: ignore[union-attr]

    ticks = [run for run in store.runs("ticker", limit=1000) if run.status.finished]
    assert len(ticks) >= 2
    due_times = [run.scheduled_for for run in store.runs("ticker", limit=1000)]
    assert len(due_times) == len(set(due_times))
    store.close()


def test_one_worker_on_sqlite_resumes_its_killed_run_after_a_restart(
    store_url: str, tmp_path: Path
) -> None:
    fleet = Fleet(store_url, tmp_path, {})
    store = Store(store_url)
    try:
        fleet.start("solo")
        slow = store.enqueue_run("slow")
        quick = [store.enqueue_run(sync) for sync in ("a", "a", "b")]

        def slow_started() -> bool:
            return any(e.kind == "start" and e.run_id == slow for e in fleet.events())

        wait_until("the slow run starts", slow_started, fleet, timeout=60)
        fleet.kill("solo")
        running = store.run(slow)
        assert running is not None and running.status == RunStatus.RUNNING

        fleet.start("solo")  # the same worker id: DBOS recovers its own workflows
        wait_until(
            "every run finishes",
            lambda: all(store.run(i).status.finished for i in [slow, *quick]),  # type: ignore[union-attr]
            fleet,
            timeout=60,
        )
    finally:
        fleet.stop_all()

    resumed = store.run(slow)
    assert resumed is not None and resumed.attempt == 2
    assert [e.attempt for e in fleet.events() if e.run_id == slow and e.kind == "start"] == [1, 2]
    assert_finished_exactly_once(fleet, store, [slow, *quick])
    assert_no_sync_ran_twice_at_once(fleet)
    store.close()
