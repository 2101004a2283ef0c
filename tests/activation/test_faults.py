"""Destination faults, played by a real local HTTP server: whole sync runs to a webhook.

The receiver applies what it accepts to a dict by key, as an idempotent receiver would,
and the server plays 429 with Retry-After, 5xx, timeouts, partial batch failures and
malformed answers before, between or instead of its own answers. After each run every
member of the audience must be delivered (at the receiver and in the planner's state) or
rejected with a reason that names the fault; the counts must add up; and a run against a
healthy receiver must then deliver the rejected rows.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.activation.engine import RunOptions, SyncContext, run_sync
from corral.activation.mapping import KEY
from corral.activation.planner import Planner
from corral.activation.runs import RunReport, RunStatus
from corral.schema import bind_schema
from corral.warehouse import DuckDBWarehouse
from tests.activation.crash_main import (
    AS_OF,
    MAPPING,
    PEOPLE,
    PEOPLE_SCHEMA,
    SYNC,
    THRESHOLD,
    build_workspace,
)
from tests.helpers.fake_server import FakeServer, RecordedRequest, Reply

PEOPLE_ROWS = 40  # 20 members: four batches of five
BATCH_SIZE = 5
PLANNER_SCHEMA = "corral_planner"
Row = dict[str, Any]
# How the receiver answers one row: (operation, key, how many times it has seen the key)
# -> None to accept it, or the row's entry in the `results` list.
Verdict = Callable[[str, str, int], "Row | None"]


def accept(operation: str, key: str, seen: int) -> Row | None:
    return None


class Receiver:
    """Applies accepted rows to `held`; answers each row as `verdict` says."""

    def __init__(self) -> None:
        self.held: dict[str, Row] = {}
        self.seen: Counter[str] = Counter()  # deliveries of each key, resends included
        self.verdict: Verdict = accept
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.json()
        results = []
        with self._lock:
            for record in body["records"]:
                key = record["key"]
                self.seen[key] += 1
                answer = self.verdict(body["operation"], key, self.seen[key])
                if answer is None:
                    self._apply(body["operation"], key, record["fields"])
                    answer = {"key": key, "status": "accepted"}
                if answer:  # an empty answer leaves the row out of the results
                    results.append(answer)
        return Reply.json({"results": results})

    def applied_then(self, reply: Reply) -> Callable[[RecordedRequest], Reply]:
        """A scripted fault that strikes after the batch was applied (a slow answer)."""

        def respond(request: RecordedRequest) -> Reply:
            self(request)
            return reply

        return respond

    def _apply(self, operation: str, key: str, fields: Row) -> None:
        if operation == "remove":
            self.held.pop(key, None)
        else:
            self.held[key] = fields


@dataclass
class Harness:
    warehouse: DuckDBWarehouse
    server: FakeServer
    receiver: Receiver
    root: Path

    def run(self, **options: Any) -> RunReport:
        workspace = build_workspace(
            self.root,
            PLANNER_SCHEMA,
            # A timeout far below the slow answers, so those time out quickly.
            {"type": "webhook", "config": {"url": f"{self.server.url}/hook", "timeout": 0.3}},
        )
        context = SyncContext(
            workspace=workspace,
            warehouse=self.warehouse,
            schema=bind_schema(workspace.schema, self.warehouse),
            as_of=AS_OF,
        )
        settings = {"batch_size": BATCH_SIZE, "max_retry_wait": 5.0, **options}
        return run_sync(context, SYNC, options=RunOptions(sleep=lambda s: None, **settings))

    def audience(self) -> dict[str, Row]:
        rows = self.warehouse.query(exp.select(exp.Star()).from_(PEOPLE.to_expression()))
        return {
            str(row["id"]): {name: row[source] for name, source in MAPPING.items()}
            for row in rows.to_pylist()
            if row["score"] >= THRESHOLD
        }

    def planner(self) -> Planner:
        return Planner(self.warehouse, SYNC, schema=PLANNER_SCHEMA)

    def state(self) -> dict[str, Row]:
        rows = self.warehouse.query(
            exp.select(exp.Star()).from_(self.planner().state.to_expression())
        )
        return {str(r[KEY]): {name: r[f"f_{name}"] for name in MAPPING} for r in rows.to_pylist()}

    def rejected(self) -> dict[str, str]:
        return {row.key: row.reason for row in self.planner().rejected_rows(limit=1000)}

    def healthy(self) -> None:
        """From now on the server answers every request from the receiver, accepting all."""
        self.receiver.verdict = accept
        self.server.respond_with(self.receiver)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    warehouse = DuckDBWarehouse()
    rows = [
        {
            "id": person,
            "email": f"person{person}@example.com",
            "name": f"Person {person}",
            "score": 100 if person % 2 else 0,
        }
        for person in range(1, PEOPLE_ROWS + 1)
    ]
    warehouse.create_table(PEOPLE, pa.Table.from_pylist(rows, schema=PEOPLE_SCHEMA))
    receiver = Receiver()
    with FakeServer(receiver) as server:
        yield Harness(warehouse, server, receiver, tmp_path)
    warehouse.close()


def check_accounted_for(harness: Harness, report: RunReport) -> dict[str, str]:
    """Every member delivered or rejected with a reason, never both; a row the run had to
    remove is gone or rejected; the counts add up. Returns the rejected rows' reasons."""
    members = harness.audience()
    state = harness.state()
    rejected = harness.rejected()
    for key, fields in members.items():
        delivered = state.get(key) == fields and harness.receiver.held.get(key) == fields
        assert delivered != (key in rejected), (key, state.get(key), rejected.get(key))
    for key in state.keys() - members.keys():  # a removal that did not go through
        assert key in rejected and key in harness.receiver.held, key
    assert rejected.keys() <= members.keys() | state.keys()
    assert all(reason.strip() for reason in rejected.values())
    assert state.keys() <= harness.receiver.held.keys()  # accepted: the receiver has it

    counts = report.counts
    planned = counts.planned_added + counts.planned_changed + counts.planned_removed
    assert counts.added + counts.changed + counts.removed + counts.rejected == planned
    assert counts.rejected == len(rejected)
    assert {(r.key, r.reason) for r in report.rejected} == set(rejected.items())
    assert report.status is (RunStatus.PARTIAL if rejected else RunStatus.SUCCEEDED)
    return rejected


def check_next_run_delivers_the_rest(harness: Harness, rejected: dict[str, str]) -> None:
    harness.healthy()

    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    counts = report.counts
    assert counts.added + counts.changed + counts.removed == len(rejected)
    assert harness.rejected() == {}
    assert harness.state() == harness.receiver.held == harness.audience()


def test_rate_limits_and_server_errors_pass_within_the_run(harness: Harness) -> None:
    harness.server.enqueue(
        Reply.rate_limited(retry_after="1"),
        harness.receiver,
        Reply.server_error(503),
        Reply.server_error(500),
        harness.receiver,
        Reply.server_error(502),
    )

    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    assert check_accounted_for(harness, report) == {}
    assert harness.receiver.held == harness.audience()
    # Four batches, each sent once more for every fault it met.
    assert len(harness.server.requests) == 4 + 4


def test_timeouts_resend_batches_the_receiver_already_applied(harness: Harness) -> None:
    slow = Reply.slow(2.0)  # longer than the 0.3 s timeout
    harness.server.enqueue(harness.receiver.applied_then(slow), harness.receiver, slow)

    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    assert check_accounted_for(harness, report) == {}
    assert harness.receiver.held == harness.audience()
    resent = [key for key, n in harness.receiver.seen.items() if n > 1]
    assert len(resent) == BATCH_SIZE  # the batch applied before its answer timed out


def test_malformed_answers_are_retried(harness: Harness) -> None:
    harness.server.enqueue(
        Reply.malformed(),  # JSON cut short: every row is retried by the engine
        Reply.json({"results": "all good"}),  # JSON of the wrong shape: retried too
        Reply.truncated(),  # fewer bytes than announced: retried by the HTTP client
    )

    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    assert check_accounted_for(harness, report) == {}
    assert report.counts.retried == 2 * BATCH_SIZE
    assert harness.receiver.held == harness.audience()


def test_partial_batch_failures_reject_rows_with_their_reasons(harness: Harness) -> None:
    def verdict(operation: str, key: str, seen: int) -> Row | None:
        number = int(key)
        if number % 7 == 0:
            return {"key": key, "status": "rejected", "reason": f"invalid email for {key}"}
        if number % 11 == 0:
            return {"key": key, "status": "retry", "reason": "record locked"}  # every time
        if number % 5 == 0 and seen == 1:
            return {}  # left out of the answer the first time
        if number % 3 == 0 and seen == 1:
            return {"key": key, "status": "retry", "retry_after": 0.1}
        return None

    harness.receiver.verdict = verdict

    report = harness.run()

    rejected = check_accounted_for(harness, report)
    members = harness.audience()
    assert rejected == {
        **{k: f"invalid email for {k}" for k in members if int(k) % 7 == 0},
        # The reason is the engine's own: the receiver's "record locked" is not kept.
        **{k: "still failing after retries" for k in members if int(k) % 11 == 0},
    }
    for key in members:
        number = int(key)
        expected = 1 if number % 7 == 0 else 3 if number % 11 == 0 else 2
        if number % 7 and number % 11 and number % 5 and number % 3:
            expected = 1
        assert harness.receiver.seen[key] == expected, key
    check_next_run_delivers_the_rest(harness, rejected)


def test_a_retry_after_beyond_the_limit_defers_rows_to_the_next_run(harness: Harness) -> None:
    # The second batch is told to wait two minutes: longer than the run waits, and longer
    # than the HTTP client blocks a thread, so the rest of the run is deferred at once.
    harness.server.enqueue(harness.receiver, Reply.rate_limited(retry_after="120"))

    report = harness.run()

    rejected = check_accounted_for(harness, report)
    assert report.counts.added == BATCH_SIZE
    assert len(rejected) == len(harness.audience()) - BATCH_SIZE
    assert all(reason.startswith("deferred to the next run: ") for reason in rejected.values())
    assert sum("HTTP 429" in reason for reason in rejected.values()) == BATCH_SIZE
    assert sum("Retry-After" in reason for reason in rejected.values()) == 2 * BATCH_SIZE
    assert len(harness.server.requests) == 2  # the held batches were never sent
    check_next_run_delivers_the_rest(harness, rejected)


def test_a_mix_of_faults_leaves_every_row_accounted_for(harness: Harness) -> None:
    """Every kind of fault in one run; then changes and removals through faults as well."""
    refusals = itertools.count()

    def verdict(operation: str, key: str, seen: int) -> Row | None:
        if int(key) % 9 == 0:
            return {"key": key, "status": "rejected", "reason": "mailbox full"}
        if operation == "remove" and next(refusals) == 0:
            return {"key": key, "status": "rejected", "reason": "cannot remove yet"}
        return None

    harness.receiver.verdict = verdict
    harness.server.enqueue(
        Reply.server_error(503),
        harness.receiver.applied_then(Reply.slow(2.0)),  # applied, then timed out
        Reply.malformed(),
        Reply.rate_limited(retry_after="0"),
        harness.receiver,
        Reply(422, b"unknown field", {"Content-Type": "text/plain"}),
    )

    first = harness.run()

    rejected = check_accounted_for(harness, first)
    reasons = Counter(rejected.values())
    assert reasons.keys() <= {"mailbox full", "HTTP 422: unknown field"}
    assert reasons["HTTP 422: unknown field"] == BATCH_SIZE  # the whole batch
    assert {k for k in harness.audience() if int(k) % 9 == 0} <= rejected.keys()

    # Rename some members, drop others, and meet faults again on the way.
    delivered = harness.state()
    rows = harness.warehouse.query(exp.select(exp.Star()).from_(PEOPLE.to_expression()))
    changed = rows.to_pylist()
    for row in changed:
        if row["id"] % 4 == 1:
            row["name"] = "Renamed"
        if row["id"] in (3, 7, 11, 13, 15):
            row["score"] = 0
    data = pa.Table.from_pylist(changed, schema=PEOPLE_SCHEMA)
    harness.warehouse.create_table(PEOPLE, data, replace=True)
    harness.server.enqueue(Reply.server_error(500), Reply.truncated())

    second = harness.run()

    leaving = {"3", "7", "11", "13", "15"} & delivered.keys()
    assert second.counts.planned_removed == len(leaving) > 0
    rejected = check_accounted_for(harness, second)
    reasons = Counter(rejected.values())
    assert reasons.keys() <= {"mailbox full", "cannot remove yet"}
    assert reasons["cannot remove yet"] == 1
    refused = next(k for k, reason in rejected.items() if reason == "cannot remove yet")
    assert refused in harness.receiver.held and refused in harness.state()

    check_next_run_delivers_the_rest(harness, rejected)
