"""The engine's columnar path: destinations that take Arrow columns end where the row path
ends, with the same rows, the same state and the same acknowledgements.

Two memory destinations share everything but the way batches reach them: one takes
records, the other also takes `ColumnBatch`es (and answers them through the same code, so
rejections, retries and outages behave alike). Each test runs the same sync through both.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.activation.mapping import HASH, KEY
from corral.activation.runs import RunStatus
from corral.destinations import register
from corral.destinations.base import (
    AllAccepted,
    Batch,
    Catalog,
    ColumnarDestination,
    ColumnBatch,
    Job,
    RowResult,
)
from corral.sql.build import column, literal
from corral.warehouse.base import TableRef, Warehouse
from tests.activation.test_engine import (  # noqa: F401 (fixtures)
    Harness,
    any_warehouse,
    warehouse,
)
from tests.helpers.memory_destination import MemoryDestination

_PLAIN = dataclasses.replace(MemoryDestination.catalog, name="memory_plain", identifiers={})


class PlainMemoryDestination(MemoryDestination):
    """The memory destination without identifiers to normalize: records only."""

    catalog: ClassVar[Catalog] = _PLAIN


class ColumnarMemoryDestination(MemoryDestination):
    """The same, also taking Arrow columns; every columnar batch is kept for the tests."""

    catalog: ClassVar[Catalog] = dataclasses.replace(_PLAIN, name="memory_columnar")
    columnar: ClassVar[list[ColumnBatch]] = []

    def send_columns(self, batch: ColumnBatch) -> list[RowResult] | AllAccepted:
        self.columnar.append(batch)
        answer = self.send(Batch(batch.operation, batch.records()))
        assert not isinstance(answer, Job)
        if all(result.outcome.value == "accepted" for result in answer):
            return AllAccepted()  # the path the engine acknowledges as a whole batch
        return answer


class SortedMemoryDestination(ColumnarMemoryDestination):
    """The columnar one, asking for each operation's rows in key order, one batch at a time
    (so the store lists batches in the order they were sent)."""

    catalog: ClassVar[Catalog] = dataclasses.replace(
        _PLAIN, name="memory_sorted", sorted_keys=True, concurrency=1
    )


register("memory_plain", PlainMemoryDestination)  # type: ignore[arg-type]
register("memory_columnar", ColumnarMemoryDestination)  # type: ignore[arg-type]
register("memory_sorted", SortedMemoryDestination)  # type: ignore[arg-type]

PATHS = {"rows": "memory_plain", "columns": "memory_columnar"}


@pytest.fixture
def harnesses(warehouse: Warehouse, tmp_path: Path) -> Iterator[dict[str, Harness]]:  # noqa: F811
    made = {
        path: Harness(warehouse, tmp_path, destination_type=kind) for path, kind in PATHS.items()
    }
    ColumnarMemoryDestination.columnar.clear()
    yield made
    for harness in made.values():
        harness.close()


def state(harness: Harness) -> dict[str, dict[str, Any]]:
    planner = harness.planner()
    rows = harness.warehouse.query(exp.select(exp.Star()).from_(planner.state.to_expression()))
    return {str(row[KEY]): row for row in rows.to_pylist()}


def both(harnesses: dict[str, Harness], change: Any = None, **options: Any) -> dict[str, Any]:
    """Apply `change` to both sources, run both syncs; the reports by path."""
    reports = {}
    for path, harness in harnesses.items():
        if change is not None:
            change(harness)
        reports[path] = harness.run(**options)
    return reports


def assert_alike(
    harnesses: dict[str, Harness], reports: dict[str, Any], *, missing: frozenset[str] = frozenset()
) -> None:
    rows, columns = harnesses["rows"], harnesses["columns"]
    assert columns.store.records == rows.store.records
    assert set(columns.store.records) == columns.members() - missing
    assert state(columns) == state(rows)
    assert reports["columns"].counts.to_dict() == reports["rows"].counts.to_dict()
    assert reports["columns"].status is reports["rows"].status
    planner = columns.planner()
    assert planner._count(planner.acks) == 0


def test_columnar_runs_end_like_row_runs(harnesses: dict[str, Harness]) -> None:
    reports = both(harnesses)
    assert reports["columns"].status is RunStatus.SUCCEEDED, reports["columns"].error
    assert_alike(harnesses, reports)
    assert ColumnarMemoryDestination.columnar, "the columnar path was not taken"
    batch = ColumnarMemoryDestination.columnar[0]
    assert batch.keys.type == pa.string()
    assert batch.fields.schema.names == ["email", "name", "score", "source", "greeting"]

    def changes(harness: Harness) -> None:
        harness.update({"name": "Renamed"}, range(6, 8))
        harness.update({"score": 0}, range(11, 13))
        harness.update({"score": 99}, range(1, 2))

    reports = both(harnesses, changes)
    assert (reports["columns"].counts.added, reports["columns"].counts.changed) == (1, 2)
    assert reports["columns"].counts.removed == 2
    assert_alike(harnesses, reports)

    reports = both(harnesses)  # nothing changed: nothing planned
    assert reports["columns"].counts.planned_changed == 0
    assert_alike(harnesses, reports)


def test_rejections_and_retries_leave_columnar_batches_as_records(
    harnesses: dict[str, Harness],
) -> None:
    for harness in harnesses.values():
        harness.store.reject = lambda record: "refused" if record.key == "6" else None
        harness.store.retry = lambda record: 0.0 if record.key == "9" else None
        harness.store.fail_batches = 1

    reports = both(harnesses)

    assert reports["columns"].status is RunStatus.PARTIAL
    assert {(r.key, r.reason) for r in reports["columns"].rejected} == {
        ("6", "refused"),
        ("9", "still failing after retries"),
    }
    assert_alike(harnesses, reports, missing=frozenset({"6", "9"}))
    for harness in harnesses.values():
        harness.store.reject = lambda record: None
        harness.store.retry = lambda record: None
    reports = both(harnesses)
    assert reports["columns"].status is RunStatus.SUCCEEDED
    assert_alike(harnesses, reports)


def test_a_columnar_run_that_dies_midway_is_completed_by_the_next(
    harnesses: dict[str, Harness],
) -> None:
    harness = harnesses["columns"]
    calls = itertools.count()

    def die_on_third_batch(record: Any) -> None:
        if next(calls) == 7:
            raise KeyboardInterrupt  # not a CorralError: the run stops where it is

    harness.store.reject = lambda record: die_on_third_batch(record)
    with pytest.raises(KeyboardInterrupt):
        harness.run()
    planner = harness.planner()
    committed = planner._count(planner.state) + planner._count(planner.acks)
    assert 0 < committed < 8

    harness.store.reject = lambda record: None
    sent = harness.store.sent
    report = harness.run()

    assert report.status is RunStatus.SUCCEEDED, report.error
    assert set(harness.store.records) == harness.members() == set(state(harness))
    assert planner._count(planner.acks) == 0
    # Batches acknowledged whole were not sent again; the rest were.
    assert harness.store.sent - sent == 8 - committed


def test_the_state_is_rehashed_when_the_warehouse_hashes_differently(
    harnesses: dict[str, Harness],
) -> None:
    harness = harnesses["columns"]
    harness.run()
    planner = harness.planner()
    before = {key: row[HASH] for key, row in state(harness).items()}
    # What an engine upgrade that changed the hash function leaves behind.
    wrong = literal(12345) if harness.warehouse.dialect == "duckdb" else literal("stale")
    harness.warehouse.execute(exp.update(planner.state.to_expression(), {HASH: wrong}))
    sent = harness.store.sent

    preview = harness.run(dry_run=True)  # plans against a rehashed copy
    report = harness.run()

    if harness.warehouse.dialect == "duckdb":  # the only hash that may change under us
        assert preview.counts.planned_changed == 0
        assert report.counts.planned_changed == 0
        assert harness.store.sent == sent
        assert {key: row[HASH] for key, row in state(harness).items()} == before
    else:  # a stable hash is never checked: the rows are sent again, and that is all
        assert report.counts.planned_changed == len(before)

    harness.update({"name": "Renamed"}, range(6, 7))  # still found after a rehash
    assert harness.run().counts.changed == 1


def test_a_state_hashed_as_text_is_rehashed_without_a_resend(
    duckdb_warehouse: Warehouse, tmp_path: Path
) -> None:
    """A Corral that planned keys and DuckDB hashes as text left a state of strings, with
    '' marking rows maybe added; it takes the source's key type and numeric hashes, and
    nothing is sent again."""
    harness = Harness(duckdb_warehouse, tmp_path, destination_type="memory_columnar")
    harness.run()
    planner = harness.planner()
    before = state(harness)
    in_doubt, unknown = sorted(before)[:2]
    as_text = exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=column(KEY), expression=literal(in_doubt)), true=literal("")),
            exp.If(
                this=exp.EQ(this=column(KEY), expression=literal(unknown)),
                true=exp.cast(exp.Null(), exp.DataType.Type.TEXT),
            ),
        ],
        default=exp.cast(column(HASH), exp.DataType.Type.TEXT),
    )
    old = TableRef(planner.state.name + "_old", planner.schema)
    fields = [c for c in before[in_doubt] if c not in (KEY, HASH)]
    harness.warehouse.execute(
        exp.Create(
            this=old.to_expression(),
            kind="TABLE",
            expression=exp.select(
                exp.alias_(exp.cast(column(KEY), exp.DataType.Type.TEXT), KEY, quoted=True),
                exp.alias_(as_text, HASH, quoted=True),
                *map(column, fields),
            ).from_(planner.state.to_expression()),
        )
    )
    harness.warehouse.drop_table(planner.state)
    harness.warehouse.execute(
        exp.Alter(
            this=old.to_expression(),
            kind="TABLE",
            actions=[exp.AlterRename(this=planner.state.to_expression())],
        )
    )

    report = harness.run()

    # The row maybe added is added again and the one with no hash changed; no other is sent.
    assert (report.counts.planned_added, report.counts.planned_changed) == (1, 1)
    assert state(harness) == before
    stored = {c.name: c for c in harness.warehouse.columns(planner.state)}
    assert (stored[KEY].native_type, stored[HASH].native_type) == ("BIGINT", "UBIGINT")
    harness.close()


def test_identifiers_keep_the_row_path(duckdb_warehouse: Warehouse, tmp_path: Path) -> None:
    class Normalizing(ColumnarMemoryDestination):
        catalog: ClassVar[Catalog] = dataclasses.replace(
            MemoryDestination.catalog, name="memory_columnar_ids"
        )

    register("memory_columnar_ids", Normalizing)  # type: ignore[arg-type]
    assert isinstance(Normalizing.__new__(Normalizing), ColumnarDestination)
    harness = Harness(duckdb_warehouse, tmp_path, destination_type="memory_columnar_ids")
    ColumnarMemoryDestination.columnar.clear()
    try:
        report = harness.run()
        assert report.status is RunStatus.SUCCEEDED
        assert not ColumnarMemoryDestination.columnar
        assert harness.store.records["10"]["email"] == "person10@example.com"  # normalized
    finally:
        harness.close()


def test_whole_batch_acknowledgements_never_hide_keys_in_doubt(
    duckdb_warehouse: Warehouse, tmp_path: Path
) -> None:
    """Keys of a batch acknowledged whole are acknowledged; keys of a batch sent and never
    answered stay in doubt, even beside per-key acknowledgements and whole-batch rows."""
    harness = Harness(duckdb_warehouse, tmp_path, destination_type="memory_columnar")
    try:
        harness.run()
        planner = harness.planner()
        planner.intend(pa.array(["1", "2", "3"]), 1)
        planner.intend(pa.array(["4", "5"]), 2)
        planner.intend(["6", "7"], 3)
        planner.acknowledge_batch(1, "change")
        planner.acknowledge(["6"], ["add"], 1)

        acked = harness.warehouse.query(planner._acked()).column(KEY).to_pylist()
        doubted = planner._doubted(planner._acked())

        assert sorted(acked) == ["1", "2", "3", "6"]
        assert doubted is not None
        assert sorted(harness.warehouse.query(doubted).column(KEY).to_pylist()) == ["4", "5", "7"]
    finally:
        harness.close()


def test_a_destination_that_asks_receives_keys_in_byte_order(
    any_warehouse: Warehouse,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Sorted by the key's text, byte by byte, across batches: "10" before "5" (the order of
    a B-tree keyed by text in PostgreSQL's "C" collation), on every warehouse."""
    harness = Harness(any_warehouse, tmp_path, destination_type="memory_sorted")
    try:
        harness.run()
        harness.update({"score": 99}, ids=range(5, 13))  # every member changes
        report = harness.run()
        assert report.status is RunStatus.SUCCEEDED, report.error

        by_operation: dict[str, list[str]] = {}
        for operation, keys in harness.store.batches:
            by_operation.setdefault(operation, []).extend(keys)
        members = ["10", "11", "12", "5", "6", "7", "8", "9"]
        assert by_operation == {"add": members, "change": members}
        assert len(harness.store.batches) > 2  # the order holds across batches
    finally:
        harness.close()
