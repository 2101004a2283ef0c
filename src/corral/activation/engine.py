"""One sync run, start to end: plan in the warehouse, deliver in batches, commit.

    plan      the source query and the diff against the last delivered state, in SQL
    guard     hold removals when the audience shrank suspiciously (a person confirms)
    deliver   batches per operation, in parallel up to the destination's concurrency;
              identifiers normalized and hashed as the destination's catalog says, or,
              when none is mapped and the destination takes them, Arrow columns as
              the warehouse streamed them; rows to retry are resent with backoff, then
              recorded as rejected
    commit    accepted keys are acknowledged in the warehouse as they come back and
              folded into the state at the end (or by the next run, after a crash)
    log       rejected rows, and the audience's enter and exit events

The run never holds more than a few batches in memory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from corral.activation.mapping import KEY, Field, planned_key_type, source_query
from corral.activation.planner import Planner, strings
from corral.activation.runs import (
    MemoryRecorder,
    RejectedRow,
    RunRecorder,
    RunReport,
    RunStatus,
    jsonable,
)
from corral.activation.syncs import DestinationDefinition, SyncDefinition
from corral.audiences import AudienceCompiler
from corral.destinations import create
from corral.destinations.base import (
    AllAccepted,
    Batch,
    Catalog,
    ColumnarDestination,
    ColumnBatch,
    Destination,
    Identifier,
    Job,
    Mode,
    Operation,
    Outcome,
    Record,
    RowResult,
)
from corral.destinations.identifiers import InvalidIdentifier, prepare
from corral.errors import CorralError, DefinitionError, TransientDestinationError
from corral.schema.resolved import Schema
from corral.warehouse.base import Warehouse
from corral.workspace.files import Workspace

logger = logging.getLogger(__name__)

# Which planned operations each mode sends; the others are committed without sending,
# so the state follows the source (an upsert sync forgets a row that left the audience).
SENT: Mapping[Mode, frozenset[Operation]] = {
    Mode.UPSERT: frozenset({Operation.ADD, Operation.CHANGE}),
    Mode.UPDATE: frozenset({Operation.ADD, Operation.CHANGE}),
    Mode.INSERT: frozenset({Operation.ADD}),
    Mode.MIRROR: frozenset({Operation.ADD, Operation.CHANGE, Operation.REMOVE}),
    Mode.MEMBERSHIP: frozenset({Operation.ADD, Operation.CHANGE, Operation.REMOVE}),
}
SAMPLE_ROWS = 10
_ACCEPTED = RowResult("", Outcome.ACCEPTED)  # shared: only its outcome is read
REJECTED_SAMPLE = 100


@dataclass(frozen=True)
class _BatchAccepted:
    """The destination accepted every row of the columnar batch sent as `number`."""

    number: int
    rows: int


# What sending a batch comes back with: each record with its result, or, for a columnar
# batch the destination accepted whole, just that (acknowledged without a Python row).
_Sent = list[tuple[Record, RowResult]] | _BatchAccepted


@dataclass
class RunOptions:
    dry_run: bool = False
    confirm_removals: bool = False
    max_attempts: int = 3  # sends per row within one run before it is recorded as rejected
    max_retry_wait: float = 60.0  # seconds; a longer Retry-After defers the row to next run
    ack_every: int = 20_000  # acknowledged keys buffered before they are written
    batch_size: int | None = None  # overrides the catalog's
    sleep: Callable[[float], None] = time.sleep


@dataclass
class SyncContext:
    """What a run needs besides the sync: the workspace, its warehouse and schema."""

    workspace: Workspace
    warehouse: Warehouse
    schema: Schema
    as_of: datetime
    transport: httpx.BaseTransport | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Reads a stored secret by name, for `{secret: NAME}` (the studio's secrets store).
    secrets: Callable[[str], str] | None = None


def run_sync(
    context: SyncContext,
    name: str,
    *,
    options: RunOptions | None = None,
    recorder: RunRecorder | None = None,
    run_id: str | None = None,
) -> RunReport:
    """Run the sync `name` once and return its report; errors end up in the report."""
    options = options or RunOptions()
    recorder = recorder or MemoryRecorder()
    sync = context.workspace.sync(name)
    started = datetime.now(UTC)
    report = RunReport(
        sync=sync.name,
        # Sortable by time, so a file destination's run folders list in run order.
        run_id=run_id or f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        dry_run=options.dry_run,
        started_at=started,
    )
    recorder.progress(report)
    try:
        _Run(context, sync, options, recorder, report).execute()
    except CorralError as error:
        report.status = RunStatus.FAILED
        report.error = str(error)
        recorder.log(logging.ERROR, f"run failed: {error}")
    report.finished_at = datetime.now(UTC)
    recorder.progress(report)
    recorder.log(
        logging.INFO,
        f"sync {sync.name!r} run {report.run_id}: {report.status.value}; "
        + ", ".join(f"{k} {v}" for k, v in report.counts.to_dict().items() if v),
    )
    return report


def resolve_secrets(
    value: Any,
    environ: Mapping[str, str],
    where: str,
    secrets: Callable[[str], str] | None = None,
) -> Any:
    """Replace every `{env: NAME}` in a configuration with that environment variable, and
    every `{secret: NAME}` with the stored secret `secrets` reads."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            variable = str(value["env"])
            if variable not in environ:
                raise DefinitionError(
                    f"the environment variable {variable} is not set",
                    where=where,
                    hint=f"export {variable}=... before running, or write the value in place",
                )
            return environ[variable]
        if set(value) == {"secret"}:
            if secrets is None:
                raise DefinitionError(
                    f"the secret {value['secret']!r} is kept in the studio's secrets store, "
                    "which this run cannot read",
                    where=where,
                    hint="run the sync from the studio, or use {env: NAME} instead",
                )
            return secrets(str(value["secret"]))
        return {k: resolve_secrets(v, environ, f"{where} > {k}", secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, environ, where, secrets) for v in value]
    return value


def open_destination(
    definition: DestinationDefinition,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
    *,
    root: Path | None = None,
    secrets: Callable[[str], str] | None = None,
) -> Destination:
    """The destination a definition describes, secrets resolved; a relative `path`
    setting (a local folder) is read from the workspace folder `root`."""
    where = f"destination {definition.name!r}"
    config = resolve_secrets(definition.config, environ, where, secrets)
    path = config.get("path")
    if root is not None and isinstance(path, str) and not Path(path).is_absolute():
        config = {**config, "path": str(root / path)}
    return create(definition.type, config, transport=transport, where=where)


class _Run:
    def __init__(
        self,
        context: SyncContext,
        sync: SyncDefinition,
        options: RunOptions,
        recorder: RunRecorder,
        report: RunReport,
    ) -> None:
        self.context = context
        self.sync = sync
        self.options = options
        self.recorder = recorder
        self.report = report
        self.where = f"sync {sync.name!r}"
        self.planner = Planner(
            context.warehouse,
            sync.name,
            schema=context.workspace.settings.planner_schema,
            dry_run=options.dry_run,
            keep_current=sync.audience is not None,  # for the membership log
        )
        self._lock = threading.Lock()
        # Accepted keys not yet written, in chunks of one operation each: a list of keys
        # from the row path, or an Arrow array of a whole batch from the columnar path.
        self._acked: list[tuple[Sequence[str] | pa.Array, str]] = []
        self._acked_rows = 0
        self._batch_number = 0  # batches sent in this run, numbered from 1
        self._seq = 0
        self._rejected: dict[str, RejectedRow] = {}
        self._hints: dict[str, str] = {}

    # -- the phases ----------------------------------------------------------------------------

    def execute(self) -> None:
        definition = self.context.workspace.destination(self.sync.destination, where=self.where)
        destination = open_destination(
            definition,
            self.context.environ,
            self.context.transport,
            root=self.context.workspace.root,
            secrets=self.context.secrets,
        )
        catalog = destination.catalog
        self._check(catalog)
        fields = self._plan()
        if self.options.dry_run:
            self._dry_run_samples()
            self.report.status = RunStatus.SUCCEEDED
            destination.close()
            return
        held = self._guard()
        try:
            self._deliver(destination, catalog, fields, hold_removals=held)
        finally:
            self._flush_acks(force=True)
            started = time.perf_counter()
            self.planner.fold()
            self.report.timings["commit"] = time.perf_counter() - started
            destination.close()
        self._finish(held)

    def _check(self, catalog: Catalog) -> None:
        if self.sync.mode not in catalog.modes:
            modes = ", ".join(sorted(m.value for m in catalog.modes))
            raise DefinitionError(
                f"the {catalog.title} destination does not support mode {self.sync.mode.value!r}",
                where=self.where,
                hint=f"use one of: {modes}",
            )
        missing = sorted(catalog.required_fields - set(self.sync.mapping))
        if missing:
            raise DefinitionError(
                f"the {catalog.title} destination needs the field(s) {', '.join(missing)}",
                where=f"{self.where} > mapping",
                hint="map them to source columns, e.g. `email: email`",
            )

    def _plan(self) -> list[Field]:
        started = time.perf_counter()
        workspace = self.context.workspace
        compiler = AudienceCompiler(
            self.context.schema,
            self.context.as_of,
            workspace.audiences,
            time_zone=workspace.settings.time_zone,
        )
        audience = None
        if self.sync.audience is not None:
            audience = workspace.audiences[self.sync.audience]
            model = self.context.schema.parent
        else:
            assert self.sync.model is not None
            model = self.context.schema.model(self.sync.model, where=self.where)
        dialect = self.context.warehouse.dialect
        source, fields = source_query(self.sync, model, compiler, audience, dialect)
        if self.planner.prepare():
            self.recorder.log(logging.WARNING, "completed the state left by an interrupted run")
        counts = self.planner.plan(source, fields, key_type=planned_key_type(self.sync, model))
        planned = self.report.counts
        planned.planned_added = counts.added
        planned.planned_changed = counts.changed
        planned.planned_removed = counts.removed
        planned.members = counts.members
        self._delivered_before = counts.delivered_before
        self.report.timings["plan"] = time.perf_counter() - started
        self.recorder.log(
            logging.INFO,
            f"planned: {counts.added} to add, {counts.changed} to change, {counts.removed} to "
            f"remove; {counts.members} members, {counts.delivered_before} delivered before",
        )
        self.recorder.progress(self.report)
        self.fields = fields
        return fields

    def _dry_run_samples(self) -> None:
        for operation in Operation:
            rows = self.planner.sample(operation.value, SAMPLE_ROWS)
            self.report.samples[operation.value] = [
                {k: jsonable(v) for k, v in self._row_fields(r).items()} for r in rows
            ]

    def _guard(self) -> bool:
        counts = self.report.counts
        if not counts.planned_removed or self.options.confirm_removals:
            return False
        if Operation.REMOVE not in SENT[self.sync.mode]:
            return False
        guards = self.sync.guards
        before = max(self._delivered_before, 1)
        share = counts.planned_removed / before
        reason = None
        if guards.hold_when_empty and counts.members == 0:
            reason = "the source is empty"
        elif share > guards.max_removal_share:
            reason = (
                f"{counts.planned_removed} of {self._delivered_before} delivered rows "
                f"({share:.0%}) would be removed, above the limit of "
                f"{guards.max_removal_share:.0%}"
            )
        if reason is None:
            return False
        counts.held_removals = counts.planned_removed
        self.recorder.log(
            logging.WARNING,
            f"holding {counts.planned_removed} removals: {reason}; run again with "
            "--confirm-removals once the source is right",
        )
        return True

    def _deliver(
        self,
        destination: Destination,
        catalog: Catalog,
        fields: list[Field],
        *,
        hold_removals: bool,
    ) -> None:
        started = time.perf_counter()
        begin = getattr(destination, "begin_run", None)
        if callable(begin):
            begin(self.report.run_id, self.sync.name)
        destination.open(self.sync.mode, [f.name for f in fields])
        order = [Operation.ADD, Operation.CHANGE, Operation.REMOVE]
        if catalog.removals_first:
            order = [Operation.REMOVE, Operation.ADD, Operation.CHANGE]
        batch_size = self.options.batch_size or catalog.batch_size
        for operation in order:
            if operation is Operation.REMOVE and hold_removals:
                continue
            if operation not in SENT[self.sync.mode]:
                self._commit_unsent(operation, batch_size)
                continue
            self._send_all(destination, catalog, operation, batch_size)
        self.report.timings["deliver"] = time.perf_counter() - started

    def _commit_unsent(self, operation: Operation, batch_size: int) -> None:
        for batch in self.planner.rows(operation.value, batch_size):
            self._ack(batch.column(KEY), operation)

    def _send_all(
        self, destination: Destination, catalog: Catalog, operation: Operation, batch_size: int
    ) -> None:
        attempts: dict[str, int] = {}
        pending: list[tuple[Record, float]] = []  # rows to retry, with the wait they asked
        workers = max(1, catalog.concurrency)
        columnar = self._columnar(destination, catalog)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corral-send") as pool:
            running: set[Future[_Sent]] = set()
            try:
                for batch in self._batches(catalog, operation, batch_size, columnar=columnar):
                    # Written before sending, so a crash before the answer leaves these keys
                    # in doubt rather than unknown to the state (see corral.activation.planner).
                    self._batch_number += 1
                    self.planner.intend(_keys(batch), self._batch_number)
                    send = partial(self._send_batch, destination, batch, self._batch_number)
                    running.add(pool.submit(send))
                    if len(running) >= workers * 2:
                        done, running = wait(running, return_when=FIRST_COMPLETED)
                        pending += self._settle_done(done, operation, attempts)
            finally:
                # Even when a batch failed hard, every batch that was answered is
                # acknowledged before the error goes on, so nothing delivered is forgotten.
                pending += self._settle_done(wait(running).done, operation, attempts)

        for attempt in range(2, self.options.max_attempts + 1):
            if not pending:
                break
            delay = max(after for _, after in pending)
            self.options.sleep(min(max(delay, 0.5 * attempt), self.options.max_retry_wait))
            records = [record for record, _ in pending]
            self.report.counts.retried += len(records)
            pending = []
            for start in range(0, len(records), batch_size):
                results = self._send(destination, operation, records[start : start + batch_size])
                pending += self._settle(results, operation, attempts, attempt)
        for record, _ in pending:
            self._reject(record.key, "still failing after retries", attempts.get(record.key, 1))
        self._flush_acks(force=True)

    def _columnar(self, destination: Destination, catalog: Catalog) -> bool:
        """Whether to send Arrow columns: the destination takes them, and no mapped field
        is an identifier to normalize (which works value by value)."""
        if not isinstance(destination, ColumnarDestination):
            return False
        return not any(name in self.sync.mapping for name in catalog.identifiers)

    def _batches(
        self, catalog: Catalog, operation: Operation, batch_size: int, *, columnar: bool
    ) -> Iterator[Batch | ColumnBatch]:
        if not columnar:
            for records in self._records(catalog, operation, batch_size):
                yield Batch(operation, records)
            return
        names = [f.name for f in self.fields]
        ordered = catalog.sorted_keys
        for data in self.planner.rows(operation.value, batch_size, in_key_order=ordered):
            if not data.num_rows:
                continue
            keys = data.column(KEY)
            if keys.type != pa.string():
                keys = keys.cast(pa.string())
            fields = pa.RecordBatch.from_arrays(
                [data.column(f.column) for f in self.fields], names=names
            )
            yield ColumnBatch(operation, keys, fields)

    def _records(
        self, catalog: Catalog, operation: Operation, batch_size: int
    ) -> Iterator[list[Record]]:
        identifiers = [(n, i) for n, i in catalog.identifiers.items() if n in self.sync.mapping]
        ordered = catalog.sorted_keys
        for batch in self.planner.rows(operation.value, batch_size, in_key_order=ordered):
            data = batch.to_pydict()
            keys = data[KEY]
            columns = [(f.name, data[f.column]) for f in self.fields]
            records = []
            for index, key in enumerate(keys):
                fields = {name: values[index] for name, values in columns}
                if identifiers:
                    self._prepare_identifiers(str(key), fields, identifiers)
                records.append(Record(str(key), fields))
            if records:
                yield records

    def _prepare_identifiers(
        self, key: str, fields: dict[str, Any], identifiers: list[tuple[str, Identifier]]
    ) -> None:
        """Normalize (and hash) identifier fields in place; note why a value was dropped."""
        problems = []
        for name, identifier in identifiers:
            try:
                fields[name] = prepare(
                    identifier.kind, fields[name], identifier.rules, hashed=identifier.hashed
                )
            except InvalidIdentifier as error:
                fields[name] = None
                problems.append(str(error))
        if problems:
            with self._lock:
                self._hints[key] = "; ".join(problems)

    def _row_fields(self, row: Mapping[str, Any]) -> dict[str, Any]:
        values = {f.name: row.get(f.column) for f in self.fields}
        return values

    def _send_batch(
        self, destination: Destination, batch: Batch | ColumnBatch, number: int
    ) -> _Sent:
        if isinstance(batch, Batch):
            return self._send(destination, batch.operation, batch.records)
        assert isinstance(destination, ColumnarDestination)
        try:
            answer = destination.send_columns(batch)
        except TransientDestinationError as error:
            return [
                (r, RowResult.retry(r.key, error.message, error.retry_after))
                for r in batch.records()
            ]
        if isinstance(answer, AllAccepted):
            return _BatchAccepted(number, len(batch))
        return _paired(batch.records(), answer)

    def _send(
        self, destination: Destination, operation: Operation, records: Sequence[Record]
    ) -> list[tuple[Record, RowResult]]:
        try:
            answer = destination.send(Batch(operation, list(records)))
            while isinstance(answer, Job):
                self.options.sleep(answer.poll_after)
                answer = destination.poll(answer)
        except TransientDestinationError as error:
            return [(r, RowResult.retry(r.key, error.message, error.retry_after)) for r in records]
        if isinstance(answer, AllAccepted):
            return [(r, _ACCEPTED) for r in records]
        return _paired(records, answer)

    def _settle_done(
        self, done: set[Future[_Sent]], operation: Operation, attempts: dict[str, int]
    ) -> list[tuple[Record, float]]:
        """Settle every finished batch, then raise the first batch's error, if any."""
        retry: list[tuple[Record, float]] = []
        failure: BaseException | None = None
        for future in done:
            error = future.exception()
            if error is not None:
                failure = failure or error
                continue
            sent = future.result()
            if isinstance(sent, _BatchAccepted):
                self.planner.acknowledge_batch(sent.number, operation.value)
                self._count_sent(sent.rows, operation)
                self.recorder.progress(self.report)
            else:
                retry += self._settle(sent, operation, attempts, 1)
        if failure is not None:
            raise failure
        return retry

    def _settle(
        self,
        results: list[tuple[Record, RowResult]],
        operation: Operation,
        attempts: dict[str, int],
        attempt: int,
    ) -> list[tuple[Record, float]]:
        """Acknowledge accepted rows, record rejected ones, return the ones to retry."""
        retry: list[tuple[Record, float]] = []
        accepted: list[str] = []
        for record, result in results:
            if result.outcome is Outcome.ACCEPTED:
                accepted.append(record.key)
                continue
            attempts[record.key] = attempt
            if result.outcome is Outcome.REJECTED:
                self._reject(record.key, result.reason or "rejected", attempt)
            elif (result.retry_after or 0.0) > self.options.max_retry_wait:
                self._reject(record.key, f"deferred to the next run: {result.reason}", attempt)
            else:
                retry.append((record, result.retry_after or 0.0))
        if accepted:
            self._ack(accepted, operation)
        return retry

    def _ack(self, keys: Sequence[str] | pa.Array, operation: Operation) -> None:
        with self._lock:
            self._acked.append((keys, operation.value))
            self._acked_rows += len(keys)
        self._count_sent(len(keys), operation)
        self._flush_acks()

    def _count_sent(self, rows: int, operation: Operation) -> None:
        if operation not in SENT[self.sync.mode]:
            return
        with self._lock:
            counts = self.report.counts
            if operation is Operation.ADD:
                counts.added += rows
            elif operation is Operation.CHANGE:
                counts.changed += rows
            else:
                counts.removed += rows

    def _reject(self, key: str, reason: str, attempts: int) -> None:
        del attempts  # attempts within a run; the rejected table counts runs
        hint = self._hints.get(key)
        with self._lock:
            self._rejected[key] = RejectedRow(key, f"{reason} ({hint})" if hint else reason)

    def _flush_acks(self, *, force: bool = False) -> None:
        with self._lock:
            if not self._acked or (not force and self._acked_rows < self.options.ack_every):
                return
            acked, self._acked, self._acked_rows = self._acked, [], 0
            self._seq += 1
            seq = self._seq
        self.planner.acknowledge(
            pa.concat_arrays([strings(keys) for keys, _ in acked]),
            pa.concat_arrays([pa.repeat(pa.scalar(op), len(keys)) for keys, op in acked]),
            seq,
        )
        self.recorder.progress(self.report)

    def _finish(self, held: bool) -> None:
        rejected = sorted(self._rejected.values(), key=lambda r: r.key)
        now = datetime.now(UTC)
        self.planner.record_rejected(rejected, now)
        self.report.counts.rejected = len(rejected)
        self.report.rejected = self.planner.rejected_rows(REJECTED_SAMPLE)
        if self.sync.audience is not None:
            entered, exited = self.planner.log_membership(
                self.sync.audience, self.report.run_id, now
            )
            self.recorder.log(logging.INFO, f"membership: {entered} entered, {exited} exited")
        if held:
            self.report.status = RunStatus.NEEDS_CONFIRMATION
        elif rejected:
            self.report.status = RunStatus.PARTIAL
        else:
            self.report.status = RunStatus.SUCCEEDED


def _keys(batch: Batch | ColumnBatch) -> Sequence[str] | pa.Array:
    if isinstance(batch, ColumnBatch):
        return batch.keys
    return [record.key for record in batch.records]


def _paired(
    records: Sequence[Record], answer: Sequence[RowResult]
) -> list[tuple[Record, RowResult]]:
    """Each record with its result; a record the destination did not answer for retries."""
    by_key = {r.key: r for r in records}
    answered = {result.key for result in answer}
    missing = [
        RowResult.retry(k, "the destination did not answer for this row")
        for k in by_key
        if k not in answered
    ]
    return [(by_key[r.key], r) for r in [*answer, *missing] if r.key in by_key]
