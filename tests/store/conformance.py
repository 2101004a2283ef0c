"""The conformance suite every metadata-store backend runs.

Subclass `StoreConformance` once per database and give it a `store` fixture: an upgraded
`Store` whose tables are empty.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from corral.activation.runs import RejectedRow, RunReport, RunStatus
from corral.errors import InternalError
from corral.store import AudienceSize, SizeSource, Store, StoreRecorder, Trigger
from corral.store.sizes import AudienceSizes

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def measured(
    audience: str, definition: str, size: int, minutes: int, source: SizeSource = SizeSource.CLI
) -> AudienceSize:
    return AudienceSize(
        audience=audience,
        definition_hash=definition,
        size=size,
        parent_rows=1000,
        as_of=T0,
        measured_at=T0 + timedelta(minutes=minutes),
        source=source,
    )


def finished(store: Store, run_id: str, status: RunStatus = RunStatus.SUCCEEDED) -> RunReport:
    record = store.run(run_id)
    assert record is not None
    report = record.to_report()
    report.status = status
    return report


class StoreConformance:
    def test_enqueue_records_a_queued_run(self, store: Store) -> None:
        run_id = store.enqueue_run("VIPs to CRM", Trigger.MANUAL, dry_run=True, now=T0)

        record = store.run(run_id)
        assert record is not None
        assert (record.sync, record.status, record.trigger) == (
            "VIPs to CRM",
            RunStatus.QUEUED,
            Trigger.MANUAL,
        )
        assert record.dry_run and record.attempt == 0 and record.queued_at == T0
        assert record.started_at is None and record.counts.added == 0
        assert store.run("no-such-run") is None

    def test_timestamps_come_back_as_utc(self, store: Store) -> None:
        berlin_morning = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
        run_id = store.enqueue_run("a", now=berlin_morning)

        record = store.run(run_id)
        assert record is not None
        assert record.queued_at == T0 and record.queued_at.tzinfo == UTC

    def test_history_is_newest_first_and_latest_is_per_sync(self, store: Store) -> None:
        ids = [
            store.enqueue_run(sync, now=T0 + timedelta(minutes=i))
            for i, sync in enumerate(["a", "b", "a", "a"])
        ]

        assert [run.id for run in store.runs("a")] == [ids[3], ids[2], ids[0]]
        assert [run.id for run in store.runs(limit=2)] == [ids[3], ids[2]]
        assert [run.id for run in store.runs(statuses=[RunStatus.RUNNING])] == []
        assert {sync: run.id for sync, run in store.latest_runs().items()} == {
            "a": ids[3],
            "b": ids[1],
        }

    def test_start_claims_and_counts_attempts(self, store: Store) -> None:
        run_id = store.enqueue_run("a", now=T0)

        first = store.start(run_id, "worker-1", now=T0 + timedelta(seconds=1))
        assert first is not None
        assert (first.status, first.worker_id, first.attempt) == (RunStatus.RUNNING, "worker-1", 1)
        assert first.heartbeat_at == T0 + timedelta(seconds=1)

        # The worker died: another one starts the same run again as the next attempt.
        second = store.start(run_id, "worker-2")
        assert second is not None and (second.worker_id, second.attempt) == ("worker-2", 2)

        store.finish(finished(store, run_id))
        assert store.start(run_id, "worker-3") is None

    def test_progress_and_finish_keep_counts_errors_and_samples(self, store: Store) -> None:
        run_id = store.enqueue_run("a", now=T0)
        store.start(run_id, "w", now=T0)
        report = finished(store, run_id, RunStatus.RUNNING)
        report.counts.planned_added = 5
        report.timings["plan"] = 0.25
        store.record_progress(report, now=T0 + timedelta(seconds=3))

        during = store.run(run_id)
        assert during is not None
        assert during.counts.planned_added == 5 and during.timings == {"plan": 0.25}
        assert during.heartbeat_at == T0 + timedelta(seconds=3)

        report.status = RunStatus.PARTIAL
        report.counts.added, report.counts.rejected, report.counts.retried = 4, 1, 2
        report.rejected = [RejectedRow("user-7", "invalid email", attempts=2)]
        report.error = "1 row rejected"
        report.samples = {"added": [{"email": "ada@example.com"}]}
        report.finished_at = T0 + timedelta(seconds=9)
        store.finish(report)

        record = store.run(run_id)
        assert record is not None
        assert record.status == RunStatus.PARTIAL and record.error == "1 row rejected"
        assert (record.counts.added, record.counts.rejected, record.counts.retried) == (4, 1, 2)
        assert record.rejected == (RejectedRow("user-7", "invalid email", attempts=2),)
        assert record.samples == {"added": [{"email": "ada@example.com"}]}
        assert record.seconds == 9.0
        assert record.to_dict()["rejected"] == [
            {"key": "user-7", "reason": "invalid email", "attempts": 2}
        ]
        assert record.to_report().counts.added == 4

    def test_finish_needs_a_final_status(self, store: Store) -> None:
        run_id = store.enqueue_run("a")
        with pytest.raises(InternalError, match="final status"):
            store.finish(finished(store, run_id, RunStatus.RUNNING))

    def test_followers_queue_only_after_a_delivering_run(self, store: Store) -> None:
        delivered = store.enqueue_run("a")
        queued = store.finish(finished(store, delivered), followers=["b", "c"])
        assert [store.run(run_id).sync for run_id in queued] == ["b", "c"]  # type: ignore[union-attr]
        follower = store.run(queued[0])
        assert follower is not None
        assert (follower.trigger, follower.triggered_by) == (Trigger.AFTER, delivered)

        # b already has a queued run: no second one.
        again = store.enqueue_run("a")
        assert store.finish(finished(store, again), followers=["b"]) == []
        assert len(store.runs("b")) == 1

        failed = store.enqueue_run("a")
        assert store.finish(finished(store, failed, RunStatus.FAILED), followers=["d"]) == []
        dry = store.enqueue_run("a", dry_run=True)
        assert store.finish(finished(store, dry), followers=["d"]) == []

    def test_cancel_stops_only_queued_runs(self, store: Store) -> None:
        queued, running = store.enqueue_run("a"), store.enqueue_run("b")
        store.start(running, "w")

        assert store.cancel(queued) and not store.cancel(running)
        assert store.start(queued, "w") is None
        assert store.run(queued).status == RunStatus.CANCELED  # type: ignore[union-attr]

    def test_retry_queues_a_new_run(self, store: Store) -> None:
        first = store.enqueue_run("a", dry_run=True)
        store.finish(finished(store, first, RunStatus.FAILED))

        retry = store.run(store.retry_run(first))
        assert retry is not None
        assert (retry.trigger, retry.triggered_by, retry.dry_run) == (Trigger.RETRY, first, True)

    def test_logs_keep_order_and_level(self, store: Store) -> None:
        run_id = store.enqueue_run("a")
        recorder = StoreRecorder(store, run_id)

        def write(thread: int) -> None:
            for line in range(20):
                recorder.log(logging.INFO, f"{thread}:{line}")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        recorder.log(logging.ERROR, "the destination refused the batch")

        lines = store.logs(run_id)
        assert len(lines) == 81
        for number in range(4):
            mine = [line.message for line in lines if line.message.startswith(f"{number}:")]
            assert mine == [f"{number}:{n}" for n in range(20)]
        errors = store.logs(run_id, min_level=logging.WARNING)
        assert [(line.level_name, line.message) for line in errors] == [
            ("ERROR", "the destination refused the batch")
        ]

    def test_recorder_progress_is_a_heartbeat(self, store: Store) -> None:
        run_id = store.enqueue_run("a")
        store.start(run_id, "w", now=T0)
        report = finished(store, run_id, RunStatus.RUNNING)
        report.counts.added = 3

        StoreRecorder(store, run_id).progress(report)

        record = store.run(run_id)
        assert record is not None and record.counts.added == 3
        assert record.heartbeat_at is not None and record.heartbeat_at > T0

    def test_dispatch_marks(self, store: Store) -> None:
        first, second = store.enqueue_run("a", now=T0), store.enqueue_run("b", now=T0)
        store.mark_dispatched(first)

        assert [run.id for run in store.undispatched_runs()] == [second]

    def test_schedule_state_is_compare_and_set(self, store: Store) -> None:
        assert store.set_schedule("a", "every 1 hour", T0, expected_version=None)
        assert not store.set_schedule("a", "every 1 hour", T0, expected_version=None)
        state = store.schedule_state("a")
        assert state is not None and (state.version, state.next_due_at) == (1, T0)

        later = T0 + timedelta(hours=1)
        assert store.set_schedule("a", "every 2 hours", later, expected_version=1)
        assert not store.set_schedule("a", "every 3 hours", later, expected_version=1)
        state = store.schedule_state("a")
        assert state is not None and (state.schedule, state.version) == ("every 2 hours", 2)

    def test_a_due_time_is_enqueued_exactly_once(self, store: Store) -> None:
        store.set_schedule("a", "every 1 hour", T0, expected_version=None)
        state = store.schedule_state("a")
        assert state is not None
        results: list[str | None] = []
        barrier = threading.Barrier(6)

        def race() -> None:
            barrier.wait()
            results.append(store.enqueue_due(state, now=T0))

        threads = [threading.Thread(target=race) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        winners = [run_id for run_id in results if run_id is not None]
        assert len(winners) == 1
        runs = store.runs("a")
        assert [(run.id, run.trigger, run.scheduled_for) for run in runs] == [
            (winners[0], Trigger.SCHEDULE, T0)
        ]
        after = store.schedule_state("a")
        assert after is not None and after.next_due_at is None and after.last_run_id == winners[0]

    def test_workers_that_stop_beating_are_gone_until_recovered(self, store: Store) -> None:
        store.register_worker("w1", now=T0)
        store.register_worker("w2", now=T0)
        store.register_worker("w3", now=T0)
        store.worker_heartbeat("w2", now=T0 + timedelta(seconds=50))
        store.worker_stopped("w3", now=T0 + timedelta(seconds=1))
        now = T0 + timedelta(seconds=60)

        assert sorted(store.gone_workers(timedelta(seconds=30), now=now)) == ["w1", "w3"]
        store.mark_recovered("w1", by="w2", now=now)
        assert store.gone_workers(timedelta(seconds=30), now=now) == ["w3"]
        w1 = next(worker for worker in store.workers() if worker.id == "w1")
        assert w1.recovered_by == "w2"

        store.register_worker("w1", now=now)  # restarted under the same id
        assert store.gone_workers(timedelta(seconds=30), now=now) == ["w3"]

    def test_heartbeat_runs_touches_only_this_workers_running_runs(self, store: Store) -> None:
        mine, theirs = store.enqueue_run("a"), store.enqueue_run("b")
        store.start(mine, "w1", now=T0)
        store.start(theirs, "w2", now=T0)

        store.heartbeat_runs("w1", now=T0 + timedelta(seconds=5))

        assert store.run(mine).heartbeat_at == T0 + timedelta(seconds=5)  # type: ignore[union-attr]
        assert store.run(theirs).heartbeat_at == T0  # type: ignore[union-attr]

    def test_sizes_are_kept_with_their_definition_and_read_newest_first(self, store: Store) -> None:
        sizes = AudienceSizes(store)
        sizes.record(measured("VIPs", "v1", 10, 0, SizeSource.DEMO))
        sizes.record(measured("VIPs", "v1", 12, 5, SizeSource.STUDIO))
        sizes.record(measured("Lapsed", "l1", 7, 1))

        latest = sizes.latest()
        assert (latest["VIPs"].size, latest["VIPs"].source) == (12, SizeSource.STUDIO)
        assert latest["VIPs"].measured_at == T0 + timedelta(minutes=5)
        assert latest["VIPs"].as_of == T0 and latest["VIPs"].parent_rows == 1000
        assert latest["Lapsed"].size == 7
        assert [s.size for s in sizes.history("VIPs")] == [12, 10]
        assert [s.size for s in sizes.history("VIPs", limit=1)] == [12]
        assert sizes.history("nobody") == []

    def test_the_same_measure_again_within_an_hour_only_moves_the_newest_time(
        self, store: Store
    ) -> None:
        sizes = AudienceSizes(store)
        sizes.record(measured("VIPs", "v1", 10, 0))
        sizes.record(measured("VIPs", "v1", 10, 20, SizeSource.STUDIO))  # opened again
        sizes.record(measured("VIPs", "v1", 10, 70))  # 50 minutes after the newest
        sizes.record(measured("VIPs", "v1", 11, 75))  # the data changed
        sizes.record(measured("VIPs", "v1", 11, 140))  # 65 minutes after the newest
        sizes.record(measured("VIPs", "v2", 11, 141))  # the definition changed

        history = sizes.history("VIPs")
        assert [(s.definition_hash, s.size, s.measured_at) for s in history] == [
            ("v2", 11, T0 + timedelta(minutes=141)),
            ("v1", 11, T0 + timedelta(minutes=140)),
            ("v1", 11, T0 + timedelta(minutes=75)),
            ("v1", 10, T0 + timedelta(minutes=70)),
        ]

    def test_latest_sizes_prefer_the_current_definition(self, store: Store) -> None:
        sizes = AudienceSizes(store)
        sizes.record(measured("VIPs", "v1", 10, 0))
        sizes.record(measured("VIPs", "v2", 20, 5))  # a draft or a newer version
        sizes.record(measured("Lapsed", "l1", 7, 1))

        assert sizes.latest({"VIPs": "v1", "Lapsed": "l1"})["VIPs"].size == 10
        stale = sizes.latest({"VIPs": "v3"})
        assert set(stale) == {"VIPs"} and stale["VIPs"].definition_hash == "v2"

    def test_sizes_follow_a_rename(self, store: Store) -> None:
        sizes = AudienceSizes(store)
        sizes.record(measured("VIPs", "v1", 10, 0))
        sizes.rename("VIPs", "Best customers")
        assert set(sizes.latest()) == {"Best customers"}
        assert len(sizes.history("Best customers")) == 1
