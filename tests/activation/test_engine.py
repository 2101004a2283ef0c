"""The sync engine and its in-warehouse planner, on DuckDB, PostgreSQL and Spark.

Each test drives real runs against a small `people` table and the in-memory destination,
changes the source between runs, and checks that the destination ends holding exactly
the audience, with only the changes sent.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.activation.engine import RunOptions, SyncContext, run_sync
from corral.activation.planner import Planner
from corral.activation.runs import RunStatus
from corral.activation.syncs import DestinationDefinition, SyncDefinition
from corral.audiences import AudienceDefinition
from corral.destinations import register
from corral.schema import SchemaDefinition, bind_schema
from corral.sql.build import column, literal
from corral.warehouse.base import TableRef, Warehouse
from corral.workspace.files import Workspace, WorkspaceSettings
from tests.helpers.memory_destination import STORES, MemoryDestination, store

register("memory", MemoryDestination)  # type: ignore[arg-type]

AS_OF = datetime(2026, 12, 1)
_names = itertools.count()


def people(rows: int = 12) -> pa.Table:
    return pa.table({
        "id": pa.array(range(1, rows + 1), pa.int64()),
        "email": [f" Person{i}@Example.com " for i in range(1, rows + 1)],
        "name": [f"Person {i}" if i % 5 else None for i in range(1, rows + 1)],
        "score": pa.array([i * 10 for i in range(1, rows + 1)], pa.int64()),
    })  # fmt: skip


ENGINES = {"duckdb": "duckdb_warehouse", "postgres": "postgres_warehouse"}
# Spark runs the tests that matter most for its different fold (a rebuild, not DELETE).
SPARK_TOO = {**ENGINES, "spark": "spark_warehouse"}


@pytest.fixture(params=list(ENGINES))
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    engine: Warehouse = request.getfixturevalue(ENGINES[request.param])
    return engine


@pytest.fixture(params=list(SPARK_TOO))
def any_warehouse(request: pytest.FixtureRequest) -> Warehouse:
    engine: Warehouse = request.getfixturevalue(SPARK_TOO[request.param])
    return engine


class Harness:
    """A workspace over one `people` table, a sync of an audience to a memory store."""

    def __init__(
        self,
        warehouse: Warehouse,
        tmp: Path,
        *,
        mode: str = "mirror",
        destination_type: str = "memory",
        **sync: Any,
    ):
        n = next(_names)
        self.warehouse = warehouse
        self.table = TableRef(f"people_{os.getpid()}_{n}")
        self.store_name = f"store{n}"
        STORES.pop(self.store_name, None)
        self.planner_schema = f"corral_planner_{os.getpid()}_{n}"
        warehouse.create_table(self.table, people())
        definition = SchemaDefinition.model_validate(
            {"parent": {"name": "people", "table": self.table.name, "primary_key": "id"}}
        )
        audience = AudienceDefinition.model_validate({
            "name": "High scorers", "conditions": [{"property": "score", "at_least": 50}]
        })  # fmt: skip
        sync_definition = SyncDefinition.model_validate(
            {
                "name": "High scorers to memory",
                "audience": "High scorers",
                "destination": "Memory",
                "mode": mode,
                "mapping": {
                    "email": "email",
                    "name": "name",
                    "score": "score",
                    "source": {"constant": "corral"},
                    "greeting": {"template": "Hello {name}!"},
                },
                **sync,
            }
        )
        self.workspace = Workspace(
            root=tmp,
            settings=WorkspaceSettings(planner_schema=self.planner_schema),
            schema=definition,
            audiences={audience.name: audience},
            destinations={
                "Memory": DestinationDefinition(
                    name="Memory", type=destination_type, config={"store": self.store_name}
                )
            },
            syncs={sync_definition.name: sync_definition},
        )
        self.sync = sync_definition.name

    @property
    def store(self) -> Any:
        return store(self.store_name)

    def run(self, **options: Any) -> Any:
        context = SyncContext(
            workspace=self.workspace,
            warehouse=self.warehouse,
            schema=bind_schema(self.workspace.schema, self.warehouse),
            as_of=AS_OF,
        )
        return run_sync(context, self.sync, options=RunOptions(sleep=lambda s: None, **options))

    def update(self, assignments: dict[str, Any], ids: range | None = None) -> None:
        """Set columns of the rows whose id is in `ids` (every row when None).

        The table is rewritten rather than UPDATEd, as Spark's file tables take no UPDATE.
        """
        rows = self.warehouse.query(
            exp.select(exp.Star()).from_(self.table.to_expression())
        ).to_pylist()
        for row in rows:
            if ids is None or row["id"] in ids:
                row.update(assignments)
        data = pa.Table.from_pylist(rows, schema=people().schema)
        self.warehouse.create_table(self.table, data, replace=True)

    def members(self) -> set[str]:
        rows = self.warehouse.query(
            exp.select(column("id"))
            .from_(self.table.to_expression())
            .where(exp.GTE(this=column("score"), expression=literal(50)))
        )
        return {str(v) for v in rows.column("id").to_pylist()}

    def planner(self) -> Planner:
        return Planner(self.warehouse, self.sync, schema=self.planner_schema)

    def close(self) -> None:
        planner = self.planner()
        planner.drop_all()
        self.warehouse.drop_table(planner.membership_log)
        self.warehouse.drop_table(self.table)


@pytest.fixture
def harness(warehouse: Warehouse, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(warehouse, tmp_path)
    yield h
    h.close()


@pytest.fixture
def any_harness(any_warehouse: Warehouse, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(any_warehouse, tmp_path)
    yield h
    h.close()


def test_first_run_adds_every_member_with_mapped_fields(harness: Harness) -> None:
    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    assert set(harness.store.records) == harness.members() == {str(i) for i in range(5, 13)}
    assert report.counts.planned_added == report.counts.added == 8
    record = harness.store.records["10"]
    # The engine normalizes identifiers the catalog names: the email is trimmed, lowered.
    assert record == {
        "email": "person10@example.com",
        "name": None,
        "score": 100,
        "source": "corral",
        "greeting": "Hello !",
    }
    assert harness.store.records["6"]["greeting"] == "Hello Person 6!"


def test_second_run_sends_only_what_changed(any_harness: Harness) -> None:
    any_harness.run()
    sent_before = any_harness.store.sent
    any_harness.update({"name": "Renamed"}, range(6, 8))  # two changes
    any_harness.update({"score": 0}, range(11, 13))  # two leave the audience
    any_harness.update({"score": 99}, range(1, 2))  # one enters

    report = any_harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    counts = report.counts
    assert (counts.added, counts.changed, counts.removed) == (1, 2, 2)
    assert any_harness.store.sent - sent_before == 5
    assert set(any_harness.store.records) == any_harness.members()
    assert any_harness.store.records["6"]["name"] == "Renamed"


def test_unchanged_source_sends_nothing(harness: Harness) -> None:
    harness.run()
    sent = harness.store.sent

    report = harness.run()

    assert report.counts.planned_added + report.counts.planned_changed == 0
    assert harness.store.sent == sent


def test_rejected_rows_are_recorded_and_retried_until_they_succeed(any_harness: Harness) -> None:
    any_harness.store.reject = lambda record: "no such list" if record.key in ("6", "9") else None

    first = any_harness.run()

    assert first.status is RunStatus.PARTIAL
    assert {(r.key, r.reason, r.attempts) for r in first.rejected} == {
        ("6", "no such list", 1),
        ("9", "no such list", 1),
    }
    assert set(any_harness.store.records) == any_harness.members() - {"6", "9"}

    second = any_harness.run()  # still rejected: planned again, attempts counted across runs
    assert second.counts.planned_added == 2
    assert {r.attempts for r in second.rejected} == {2}

    any_harness.store.reject = lambda record: None
    third = any_harness.run()
    assert third.status is RunStatus.SUCCEEDED
    assert third.rejected == []
    assert set(any_harness.store.records) == any_harness.members()


def test_transient_failures_are_retried_within_the_run(harness: Harness) -> None:
    harness.store.fail_batches = 2
    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    assert report.counts.retried >= 3
    assert set(harness.store.records) == harness.members()


def test_rows_that_keep_failing_are_rejected_with_the_reason(harness: Harness) -> None:
    harness.store.retry = lambda record: 0.0 if record.key == "7" else None
    report = harness.run()

    assert report.status is RunStatus.PARTIAL
    assert [(r.key, r.reason) for r in report.rejected] == [("7", "still failing after retries")]


def test_a_big_shrink_holds_removals_until_confirmed(harness: Harness) -> None:
    harness.run()
    harness.update({"score": 0}, range(5, 12))  # 7 of 8 members leave

    held = harness.run()

    assert held.status is RunStatus.NEEDS_CONFIRMATION
    assert held.counts.held_removals == 7
    assert len(harness.store.records) == 8  # nothing removed

    confirmed = harness.run(confirm_removals=True)
    assert confirmed.status is RunStatus.SUCCEEDED
    assert set(harness.store.records) == harness.members() == {"12"}


def test_an_empty_source_removes_nothing_without_confirmation(harness: Harness) -> None:
    harness.run()
    harness.update({"score": 0})

    report = harness.run()

    assert report.status is RunStatus.NEEDS_CONFIRMATION
    assert len(harness.store.records) == 8


def test_dry_run_shows_the_plan_and_changes_nothing(harness: Harness) -> None:
    harness.run()
    harness.update({"name": "Dry"}, range(8, 9))

    dry = harness.run(dry_run=True)

    assert dry.status is RunStatus.SUCCEEDED
    assert dry.counts.planned_changed == 1 and dry.counts.changed == 0
    assert dry.samples["change"][0]["name"] == "Dry"
    assert harness.store.records["8"]["name"] == "Person 8"
    real = harness.run()
    assert real.counts.changed == 1  # the dry run left the state alone


def test_membership_log_records_entries_and_exits(any_harness: Harness) -> None:
    first = any_harness.run()
    any_harness.update({"score": 0}, range(12, 13))
    any_harness.update({"score": 70}, range(2, 3))
    second = any_harness.run()

    log = any_harness.warehouse.query(
        exp.select(column("member_key"), column("event"), column("run_id")).from_(
            any_harness.planner().membership_log.to_expression()
        )
    ).to_pylist()
    entries = {(r["member_key"], r["event"]) for r in log if r["run_id"] == second.run_id}
    assert entries == {("2", "enter"), ("12", "exit")}
    assert sum(1 for r in log if r["run_id"] == first.run_id) == 8


def test_a_mapping_change_updates_every_delivered_row(harness: Harness) -> None:
    harness.run()
    sync = harness.workspace.syncs[harness.sync]
    data = sync.model_dump()
    data["mapping"]["tier"] = {"constant": "gold"}
    changed = SyncDefinition.model_validate(data)
    harness.workspace = Workspace(
        **{**harness.workspace.__dict__, "syncs": {harness.sync: changed}}
    )

    report = harness.run()

    assert report.counts.changed == 8
    assert {r["tier"] for r in harness.store.records.values()} == {"gold"}


@pytest.mark.parametrize("mode", ["upsert", "insert"])
def test_modes_that_never_remove(duckdb_warehouse: Warehouse, tmp_path: Path, mode: str) -> None:
    h = Harness(duckdb_warehouse, tmp_path, mode=mode)
    h.run()
    h.update({"score": 0}, range(12, 13))
    h.update({"name": "Changed"}, range(5, 6))

    report = h.run()

    assert report.status is RunStatus.SUCCEEDED
    assert report.counts.removed == 0
    assert "12" in h.store.records  # never removed at the destination
    assert h.store.records["5"]["name"] == ("Changed" if mode == "upsert" else None)
    assert report.counts.changed == (1 if mode == "upsert" else 0)
    # The next run has nothing left to do: unsent operations were committed too.
    again = h.run()
    assert again.counts.planned_changed + again.counts.planned_removed == 0


def test_a_run_that_dies_midway_is_completed_by_the_next(any_harness: Harness) -> None:
    calls = itertools.count()

    def die_on_third_batch(record: Any) -> None:
        if next(calls) == 7:
            raise KeyboardInterrupt  # not a CorralError: the run stops where it is

    any_harness.store.reject = lambda record: die_on_third_batch(record)
    with pytest.raises(KeyboardInterrupt):
        any_harness.run(ack_every=1)
    planner = any_harness.planner()
    committed = planner._count(planner.state) + planner._count(planner.acks)
    assert 0 < committed < 8

    any_harness.store.reject = lambda record: None
    sent = any_harness.store.sent
    report = any_harness.run()

    assert report.status is RunStatus.SUCCEEDED
    assert set(any_harness.store.records) == any_harness.members()
    # Acknowledged rows were not sent again; the rest were.
    assert any_harness.store.sent - sent == 8 - committed
