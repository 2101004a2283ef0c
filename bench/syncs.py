"""The sync engine on the demo warehouse: planning, delivery to PostgreSQL, incremental runs.

    .venv/bin/python bench/syncs.py --users 1000000 [--rounds 3] [--threads N]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
    .venv/bin/python bench/syncs.py --users 10000000 --rounds 1

One sync of every user (`model: users`, mirror mode, six mapped columns: email,
first_name, last_name, country, plan, lifetime_value) into a PostgreSQL table, measured
three ways against what a strong engineer would do by hand:

1. *Planning.* Corral's plan phase (`Planner.prepare` and `Planner.plan`: the diff of the
   source query against the delivered state into the `plan` table, and its counts) on a
   warehouse where 1% of users changed since the last run, against one hand-written
   `CREATE TABLE ... AS` with a FULL OUTER JOIN of the same users and the same state
   table, comparing the same row hashes (DuckDB's `hash` of the values). Both
   must find the same rows to add, change and remove. Target: Corral at most 1.2 times
   the hand-written time.
2. *Delivery.* A baseline run (every user is an add) into an empty PostgreSQL table: the
   engine's delivery phase (plan rows streamed from DuckDB as Arrow in key order, each
   batch's keys written to the acks table before it is sent, the columns COPYed straight
   into the target as CSV written by Arrow, one transaction per batch, two batches in
   flight, each accepted batch acknowledged with one row in DuckDB), against one psycopg
   COPY of the same rows, sorted the same way, streamed from DuckDB as Arrow and written
   row by row with `write_row`, into an identical table in one transaction. Rows per
   second; target: Corral at least 0.7 times the raw COPY. Both tables must end with the
   same contents.
3. *Incremental.* A whole `run_sync` (plan, deliver, commit) after 1% of users changed,
   against a whole `run_sync` that resends every user to the same table (the planner
   state dropped first, so every row is an add and lands as an upsert). Before each run,
   outside the timing, the PostgreSQL table is vacuumed and checkpointed (see
   `settle_postgres`). Target:
   the incremental run at least 20 times faster at 10M users.

The demo warehouse comes from `bench/audiences.py`'s builder (`bench/data/demo-*.duckdb`,
built when missing). This script works on a copy of it, `bench/data/syncs-<users>-seed<seed>
.duckdb`, made once, because it writes (planner tables, the 1% change) and the audience
benchmark may be reading the original. The change is reversible: the original values of
the changed users are kept in the copy (`corral_bench.originals`), and every phase starts
from a known variant of them. The PostgreSQL tables live in a schema of their own,
dropped at the end.

At 10M users a baseline run and a full resend take minutes each (`--rounds 1` keeps the
whole script under an hour on two cores); `--only planning` skips the PostgreSQL timings
(a baseline run still sets up the state) and writes no results file.

The sides run alternately and the order flips each round, as in the audience benchmark;
each phase prints the medians, the ratio of the medians and the median of the per-round
ratios (which cancels load that drifts slower than a round). Results, every sample and
the load average included, go to `bench/results/syncs-<users>.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlglot import exp
from syncs_sql import (  # the hand-written references and the benchmark's own SQL
    CHANGE_USERS,
    DUCKDB_TOTALS,
    HAND_COUNTS,
    HAND_CURRENT,
    HAND_DIFF,
    PG_CHECKSUM,
    PG_TOTALS,
    PLANS_DIFFER,
    RAW_ROWS,
    RAW_TABLE_DDL,
    RESTORE_USERS,
)

from audiences import BENCH, WORKSPACE, ensure_warehouse, machine  # a module beside this script
from corral.activation.engine import RunOptions, SyncContext, run_sync
from corral.activation.mapping import planned_key_type, source_query
from corral.activation.planner import Planner
from corral.activation.runs import RunReport, RunStatus
from corral.activation.syncs import DestinationDefinition, SyncDefinition
from corral.audiences import AudienceCompiler
from corral.demo import DEMO_AS_OF
from corral.destinations.postgres import PostgresDestination
from corral.schema import bind_schema
from corral.sql import render
from corral.warehouse.duckdb import DuckDBWarehouse
from corral.workspace import load_workspace

SYNC = "All users to PostgreSQL"
DESTINATION = "PostgreSQL bench"
FIELDS = ("email", "first_name", "last_name", "country", "plan", "lifetime_value")
CORRAL_TABLE = "users_via_corral"
RAW_TABLE = "users_via_copy"
CHANGED_SHARE = 100  # users whose user_id % 100 == 42 change: 1%
MEASURED = (
    "corral.activation.engine",
    "corral.activation.planner",
    "corral.activation.state_upgrades",
    "corral.activation.records",
    "corral.activation.mapping",
    "corral.destinations.base",
    "corral.destinations.postgres",
    "corral.destinations.postgres_copy",
    "corral.warehouse.duckdb",
)
TARGET_PLAN = 1.2
TARGET_DELIVERY = 0.7
TARGET_INCREMENTAL = 20.0

console = Console()
if not console.is_terminal:
    console = Console(width=150)


# -- samples ---------------------------------------------------------------------------------


@dataclass
class Pair:
    """Seconds of Corral's side and of the reference, one sample of each per round."""

    corral: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)

    @property
    def corral_median(self) -> float:
        return statistics.median(self.corral)

    @property
    def reference_median(self) -> float:
        return statistics.median(self.reference)

    @property
    def time_ratio(self) -> float:
        """Corral's median time over the reference's."""
        return self.corral_median / self.reference_median

    @property
    def paired_time_ratio(self) -> float:
        """The median of each round's ratio: the two sides of a round share the load."""
        return statistics.median(c / r for c, r in zip(self.corral, self.reference, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "corral_s": [round(t, 4) for t in self.corral],
            "reference_s": [round(t, 4) for t in self.reference],
            "corral_median_s": round(self.corral_median, 4),
            "reference_median_s": round(self.reference_median, 4),
            "time_ratio": round(self.time_ratio, 4),
            "paired_time_ratio": round(self.paired_time_ratio, 4),
            "rounds": len(self.corral),
        }


class StatementLog(logging.Handler):
    """Collects the warehouse's DEBUG lines: each statement's first line and milliseconds."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[tuple[str, float]] = []
        self._running = ""

    def emit(self, record: logging.LogRecord) -> None:
        engine, value = record.args if isinstance(record.args, tuple) else ("", "")
        if isinstance(value, str):
            self._running = f"{engine}: " + " ".join(value.split())[:90]
        else:
            self.statements.append((self._running, float(value)))

    @contextmanager
    def capture(self) -> Iterator[None]:
        duckdb_logger = logging.getLogger("corral.warehouse.duckdb")
        level = duckdb_logger.level
        duckdb_logger.addHandler(self)
        duckdb_logger.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            duckdb_logger.removeHandler(self)
            duckdb_logger.setLevel(level)


# -- the warehouse copy, the workspace and PostgreSQL -----------------------------------------


@dataclass
class Bench:
    """The DuckDB copy (through Corral and a plain connection), the sync, and PostgreSQL."""

    path: Path
    users: int
    warehouse: DuckDBWarehouse
    connection: duckdb.DuckDBPyConnection  # the same database instance as the warehouse's
    context: SyncContext
    postgres_url: str
    postgres_schema: str
    users_changed: bool = False  # which variant of the changed users the warehouse holds

    @property
    def planner(self) -> Planner:
        # As the engine makes it: `current` is kept only for an audience's membership log.
        return Planner(
            self.warehouse,
            SYNC,
            schema=self.context.workspace.settings.planner_schema,
            keep_current=self.context.workspace.sync(SYNC).audience is not None,
        )

    @property
    def changed_users(self) -> int:
        return len(range(42, self.users + 1, CHANGED_SHARE))

    def pg_table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.postgres_schema, name)

    def pg(self, statement: sql.Composable) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.postgres_url, autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []


def copy_warehouse(data_dir: Path, users: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """This benchmark's own copy of the demo warehouse, made once per demo build."""
    source, built = ensure_warehouse(data_dir, users, seed)
    target = data_dir / f"syncs-{users}-seed{seed}.duckdb"
    sidecar = target.with_suffix(".json")
    wanted = {"source": source.name, "generator": built["generator"], "users": users}
    if target.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == wanted:
        console.print(f"reusing the copy {target}")
        return target, built

    console.print(f"copying {source} to {target}")
    sidecar.unlink(missing_ok=True)
    for stale in (target, target.with_name(target.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, target)
    sidecar.write_text(json.dumps(wanted, indent=2) + "\n")
    return target, built


def open_bench(path: Path, users: int, args: argparse.Namespace) -> Bench:
    warehouse = DuckDBWarehouse(str(path))
    connection = duckdb.connect(str(path))
    connection.execute("SET enable_progress_bar = false")
    if args.threads is not None:
        connection.execute("SET GLOBAL threads = ?", [args.threads])

    postgres_schema = f"corral_bench_syncs_{os.getpid()}"
    sync = SyncDefinition(
        name=SYNC,
        model="users",
        destination=DESTINATION,
        mode="mirror",
        mapping={f: f for f in FIELDS},
    )
    workspace = load_workspace(WORKSPACE)
    workspace = dataclasses.replace(
        workspace,
        syncs={SYNC: sync},
        destinations={
            DESTINATION: DestinationDefinition(
                name=DESTINATION,
                type="postgres",
                config={"url": args.postgres_url, "schema": postgres_schema, "table": CORRAL_TABLE},
            )
        },
    )
    context = SyncContext(
        workspace=workspace,
        warehouse=warehouse,
        schema=bind_schema(workspace.schema, warehouse),
        as_of=DEMO_AS_OF,
    )
    bench = Bench(path, users, warehouse, connection, context, args.postgres_url, postgres_schema)
    keep_originals(bench)
    return bench


def keep_originals(bench: Bench) -> None:
    """Save the changed users' original values, once, before the copy is first changed."""
    bench.connection.execute("CREATE SCHEMA IF NOT EXISTS corral_bench")
    bench.connection.execute(
        "CREATE TABLE IF NOT EXISTS corral_bench.originals AS"
        " SELECT user_id, country, lifetime_value FROM users WHERE user_id % ? = 42",
        [CHANGED_SHARE],
    )
    set_users(bench, changed=False)


def set_users(bench: Bench, *, changed: bool) -> None:
    """Put 1% of users in their original or their changed variant (both idempotent)."""
    bench.connection.execute(CHANGE_USERS if changed else RESTORE_USERS)
    bench.users_changed = changed


def reset_postgres(bench: Bench) -> None:
    schema = sql.Identifier(bench.postgres_schema)
    bench.pg(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
    bench.pg(sql.SQL("CREATE SCHEMA {}").format(schema))


def drop_postgres(bench: Bench) -> None:
    bench.pg(
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(bench.postgres_schema))
    )


# -- running the sync ------------------------------------------------------------------------


def checked_run(bench: Bench, *, added: int = 0, changed: int = 0) -> tuple[RunReport, float]:
    """One run_sync and its wall seconds; stops the benchmark if it did not do what it should."""
    started = time.perf_counter()
    report = run_sync(bench.context, SYNC, options=RunOptions())
    seconds = time.perf_counter() - started
    counts = report.counts
    if report.status is not RunStatus.SUCCEEDED or (counts.added, counts.changed) != (
        added,
        changed,
    ):
        raise SystemExit(
            f"the run did not do what the benchmark expects ({added:,} added, {changed:,} "
            f"changed): {report.status.value}, {counts.to_dict()}, {report.error}"
        )
    return report, seconds


def baseline_run(bench: Bench) -> tuple[RunReport, float]:
    """A first run into an empty table: every user is an add."""
    bench.pg(sql.SQL("DROP TABLE IF EXISTS {}").format(bench.pg_table(CORRAL_TABLE)))
    bench.planner.drop_all()
    return checked_run(bench, added=bench.users)


def alternate(rounds: int, sides: dict[str, Callable[[], None]]) -> Iterator[int]:
    """Run the two sides once per round, the order flipping each round; yields the round."""
    names = list(sides)
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else reversed(names):
            sides[name]()
        yield round_no


# -- 1. planning -----------------------------------------------------------------------------


def corral_plan(bench: Bench) -> tuple[float, dict[str, int]]:
    """Seconds of the engine's plan phase (as `_Run._plan` does it) and its counts."""
    started = time.perf_counter()
    workspace = bench.context.workspace
    schema = bench.context.schema
    compiler = AudienceCompiler(
        schema, bench.context.as_of, workspace.audiences, time_zone=workspace.settings.time_zone
    )
    sync = workspace.sync(SYNC)
    model = schema.model("users", where=SYNC)
    source, fields = source_query(sync, model, compiler, None, bench.warehouse.dialect)
    planner = bench.planner
    planner.prepare()
    counts = planner.plan(source, fields, key_type=planned_key_type(sync, model))
    seconds = time.perf_counter() - started
    return seconds, {"add": counts.added, "change": counts.changed, "remove": counts.removed}


def hand_plan(bench: Bench) -> tuple[float, dict[str, int]]:
    state = render_table(bench.planner.state.to_expression())
    started = time.perf_counter()
    bench.connection.execute(HAND_DIFF.format(current=HAND_CURRENT, state=state))
    found = dict(bench.connection.sql(HAND_COUNTS).fetchall())
    seconds = time.perf_counter() - started
    return seconds, {op: int(found.get(op, 0)) for op in ("add", "change", "remove")}


def render_table(table: exp.Table) -> str:
    return render(table, "duckdb")


def verify_plans(bench: Bench) -> dict[str, int]:
    """Both plans must hold the same rows, hashes and values; stops the run if not."""
    _, corral_counts = corral_plan(bench)
    _, hand_counts = hand_plan(bench)
    plan = render_table(bench.planner.plan_table.to_expression())
    differing = bench.connection.sql(PLANS_DIFFER.format(plan=plan)).fetchall()[0][0]
    expected = {"add": 0, "change": bench.changed_users, "remove": 0}
    if differing or corral_counts != hand_counts or corral_counts != expected:
        raise SystemExit(
            f"THE PLANS DIFFER: Corral {corral_counts}, hand-written {hand_counts}, expected "
            f"{expected}; {differing:,} rows in one plan and not the other"
        )
    console.print(f"verified: both plans hold the same {sum(expected.values()):,} rows")
    return corral_counts


def measure_planning(bench: Bench, rounds: int) -> dict[str, Any]:
    console.rule("planning: 1% of users changed")
    set_users(bench, changed=not bench.users_changed)  # the state holds the other variant
    counts = verify_plans(bench)  # also the warm-up of both

    breakdown = StatementLog()
    with breakdown.capture():
        corral_plan(bench)
    pair = Pair()
    sides = {
        "corral": lambda: pair.corral.append(corral_plan(bench)[0]),
        "hand": lambda: pair.reference.append(hand_plan(bench)[0]),
    }
    for round_no in alternate(rounds, sides):
        console.print(
            f"  round {round_no + 1}: Corral {pair.corral[-1]:.3f}s, "
            f"hand-written {pair.reference[-1]:.3f}s"
        )
    statements = sorted(breakdown.statements, key=lambda s: -s[1])
    console.print(
        f"  Corral's statements ({len(statements)}, {sum(ms for _, ms in statements):,.0f} ms):"
    )
    for text, ms in statements[:5]:
        console.print(f"    {ms:8,.1f} ms  {text}")
    return {
        **pair.to_dict(),
        "ratio": round(pair.time_ratio, 3),
        "paired_ratio": round(pair.paired_time_ratio, 3),
        "counts": counts,
        "corral_statements_ms": [[text, round(ms, 1)] for text, ms in statements],
    }


# -- 2. delivery -----------------------------------------------------------------------------


def raw_copy(bench: Bench) -> float:
    """Seconds to stream the users from DuckDB as Arrow and COPY them into a new table."""
    table = bench.pg_table(RAW_TABLE)
    bench.pg(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    batch_size = PostgresDestination.catalog.batch_size  # as the engine reads the plan

    started = time.perf_counter()
    cursor = bench.connection.cursor()
    reader = cursor.sql(RAW_ROWS).to_arrow_reader(batch_size)
    with psycopg.connect(bench.postgres_url) as connection, connection.cursor() as pg:
        pg.execute(sql.SQL(RAW_TABLE_DDL).format(table=table))
        with pg.copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy:
            for batch in reader:
                for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                    copy.write_row(row)
    seconds = time.perf_counter() - started
    cursor.close()
    return seconds


def verify_tables(bench: Bench) -> None:
    """The Corral table and the raw COPY's must hold the same rows."""
    sums = [
        bench.pg(sql.SQL(PG_CHECKSUM).format(table=bench.pg_table(t)))[0]
        for t in (CORRAL_TABLE, RAW_TABLE)
    ]
    if sums[0] != sums[1] or sums[0][0] != bench.users:
        raise SystemExit(f"THE TABLES DIFFER: Corral {sums[0]}, raw COPY {sums[1]}")
    console.print(f"verified: both PostgreSQL tables hold the same {bench.users:,} rows")


def measure_delivery(bench: Bench, rounds: int) -> dict[str, Any]:
    console.rule("delivery: a baseline run against a raw COPY")
    set_users(bench, changed=False)
    pair = Pair()
    runs: list[dict[str, float]] = []

    def corral() -> None:
        report, _ = baseline_run(bench)
        pair.corral.append(report.timings["deliver"])
        runs.append({k: round(v, 3) for k, v in report.timings.items()})

    sides = {"corral": corral, "raw": lambda: pair.reference.append(raw_copy(bench))}
    for round_no in alternate(rounds, sides):
        console.print(
            f"  round {round_no + 1}: Corral {bench.users / pair.corral[-1]:,.0f} rows/s "
            f"(deliver {pair.corral[-1]:.1f}s of a {sum(runs[-1].values()):.1f}s run), "
            f"raw COPY {bench.users / pair.reference[-1]:,.0f} rows/s"
        )
    verify_tables(bench)
    return {
        **pair.to_dict(),
        "corral_rows_per_s": round(bench.users / pair.corral_median),
        "raw_rows_per_s": round(bench.users / pair.reference_median),
        "ratio": round(1 / pair.time_ratio, 3),
        "paired_ratio": round(
            statistics.median(r / c for c, r in zip(pair.corral, pair.reference, strict=True)), 3
        ),
        "corral_run_timings_s": runs,
    }


# -- 3. incremental --------------------------------------------------------------------------


def verify_destination(bench: Bench) -> None:
    """The Corral table holds the warehouse's users as they are now."""
    destination = bench.pg(sql.SQL(PG_TOTALS).format(table=bench.pg_table(CORRAL_TABLE)))[0]
    warehouse = bench.connection.sql(DUCKDB_TOTALS).fetchall()[0]
    if tuple(destination) != tuple(warehouse):
        raise SystemExit(f"THE DESTINATION IS STALE: {destination} in PostgreSQL, {warehouse}")
    console.print("verified: the PostgreSQL table matches the warehouse")


def measure_incremental(bench: Bench, rounds: int, state_changed: bool) -> dict[str, Any]:
    """`state_changed`: the variant of the changed users that the planner state holds."""
    console.rule("incremental: 1% of users changed, against a full resend")
    pair = Pair()
    runs: dict[str, list[dict[str, float]]] = {"incremental": [], "full": []}

    def incremental() -> None:
        nonlocal state_changed
        set_users(bench, changed=not state_changed)
        settle_postgres(bench)
        report, seconds = checked_run(bench, changed=bench.changed_users)
        state_changed = bench.users_changed
        pair.corral.append(seconds)
        runs["incremental"].append({k: round(v, 3) for k, v in report.timings.items()})

    def full() -> None:
        nonlocal state_changed
        bench.planner.drop_all()
        settle_postgres(bench)
        report, seconds = checked_run(bench, added=bench.users)
        state_changed = bench.users_changed
        pair.reference.append(seconds)
        runs["full"].append({k: round(v, 3) for k, v in report.timings.items()})

    for round_no in alternate(rounds, {"incremental": incremental, "full": full}):
        console.print(
            f"  round {round_no + 1}: incremental {pair.corral[-1]:.1f}s "
            f"({_phases(runs['incremental'][-1])}), "
            f"full resend {pair.reference[-1]:.1f}s ({_phases(runs['full'][-1])})"
        )
    verify_destination(bench)
    return {
        **pair.to_dict(),
        "speedup": round(1 / pair.time_ratio, 2),
        "paired_speedup": round(
            statistics.median(r / c for c, r in zip(pair.corral, pair.reference, strict=True)), 2
        ),
        "changed_rows": bench.changed_users,
        "run_timings_s": runs,
    }


def settle_postgres(bench: Bench) -> None:
    """VACUUM the Corral table and CHECKPOINT before a run, outside the timing.

    A full resend leaves 10 million dead rows, and a bulk load pages whose rows were never
    read; PostgreSQL's autovacuum then works through them for a minute or more, on the
    same two cores, under whichever run comes next. The gigabytes of write-ahead log a
    full resend writes are still being checkpointed (written to the table's files and
    flushed) while the next run starts. Syncs that run hours apart never meet either:
    each side starts from a settled table instead. After the checkpoint, the first change
    to each page writes the whole page to the log, so the settled table is the expensive
    case for a run that changes rows all over it, as the incremental run does.
    """
    bench.pg(sql.SQL("VACUUM (ANALYZE) {}").format(bench.pg_table(CORRAL_TABLE)))
    bench.pg(sql.SQL("CHECKPOINT"))


def _phases(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())


# -- report ----------------------------------------------------------------------------------


def summary(results: dict[str, Any], users: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "planning" in results:
        ratio = results["planning"]["ratio"]
        found["planning_ratio"] = {"value": ratio, "target": f"<= {TARGET_PLAN}"}
        found["planning_ratio"]["met"] = ratio <= TARGET_PLAN
    if "delivery" in results:
        ratio = results["delivery"]["ratio"]
        found["delivery_ratio"] = {"value": ratio, "target": f">= {TARGET_DELIVERY}"}
        found["delivery_ratio"]["met"] = ratio >= TARGET_DELIVERY
    if "incremental" in results:
        speedup = results["incremental"]["speedup"]
        found["incremental_speedup"] = {
            "value": speedup,
            "target": f">= {TARGET_INCREMENTAL} (at 10M users)",
            "met": speedup >= TARGET_INCREMENTAL,
            "applies": users >= 10_000_000,
        }
    return found


def print_table(results: dict[str, Any], totals: dict[str, Any], users: int) -> None:
    table = Table(title=f"Syncs at {users:,} users: Corral against the hand-written reference")
    for heading in ("comparison", "Corral", "reference", "ratio", "per round", "target", ""):
        table.add_column(heading, justify="left" if heading == "comparison" else "right")

    def verdict(key: str) -> str:
        met = totals[key]["met"]
        if not totals[key].get("applies", True):
            return "(pass)" if met else "(miss)"
        return "[green]PASS[/green]" if met else "[red]MISS[/red]"

    if "planning" in results:
        p = results["planning"]
        table.add_row(
            "planning, 1% changed (s)",
            f"{p['corral_median_s']:.2f}",
            f"{p['reference_median_s']:.2f}",
            f"{p['ratio']:.2f}",
            f"{p['paired_ratio']:.2f}",
            f"<= {TARGET_PLAN}",
            verdict("planning_ratio"),
        )
    if "delivery" in results:
        d = results["delivery"]
        table.add_row(
            "delivery, baseline (rows/s)",
            f"{d['corral_rows_per_s']:,}",
            f"{d['raw_rows_per_s']:,}",
            f"{d['ratio']:.2f}",
            f"{d['paired_ratio']:.2f}",
            f">= {TARGET_DELIVERY}",
            verdict("delivery_ratio"),
        )
    if "incremental" in results:
        i = results["incremental"]
        table.add_row(
            "incremental vs full resend (s)",
            f"{i['corral_median_s']:.1f}",
            f"{i['reference_median_s']:.1f}",
            f"{i['speedup']:.1f}x",
            f"{i['paired_speedup']:.1f}x",
            f">= {TARGET_INCREMENTAL:.0f}x at 10M",
            verdict("incremental_speedup"),
        )
    console.print(table)


def code_fingerprint() -> str:
    """A hash of the modules measured, so a result can be matched to the code it timed."""
    digest = hashlib.sha256()
    for module in MEASURED:
        source = Path(importlib.import_module(module).__file__ or "")
        digest.update(module.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def postgres_version(bench: Bench) -> str:
    return str(bench.pg(sql.SQL("SHOW server_version"))[0][0])


# -- main ------------------------------------------------------------------------------------

PHASES = ("delivery", "planning", "incremental")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of delivery, incremental")
    parser.add_argument("--plan-rounds", type=int, default=7, help="rounds of planning")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CORRAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only", nargs="*", choices=PHASES, default=[], help="phases to run (no results file)"
    )
    parser.add_argument("--debug", action="store_true", help="log Corral's SQL and timings")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("corral").setLevel(logging.DEBUG)
    for users in args.users:
        run_scale(users, args, argv)
    return 0


def run_scale(users: int, args: argparse.Namespace, argv: list[str] | None) -> None:
    path, built = copy_warehouse(args.data_dir, users, args.seed)
    bench = open_bench(path, users, args)
    phases = args.only or list(PHASES)
    load_before = os.getloadavg()
    code = code_fingerprint()
    results: dict[str, Any] = {}
    reset_postgres(bench)
    try:
        if "delivery" in phases:
            results["delivery"] = measure_delivery(bench, args.rounds)
        else:
            set_users(bench, changed=False)
            baseline_run(bench)
        state_changed = bench.users_changed
        if "planning" in phases:
            results["planning"] = measure_planning(bench, args.plan_rounds)
        if "incremental" in phases:
            results["incremental"] = measure_incremental(bench, args.rounds, state_changed)
        server = postgres_version(bench)
    finally:
        drop_postgres(bench)
        set_users(bench, changed=False)

    totals = summary(results, users)
    print_table(results, totals, users)
    if code_fingerprint() != code:
        console.print("[red]the measured modules changed during the run: the numbers mix them[/]")
        code += " (changed during the run)"
    if args.only:
        console.print("a partial run (--only): no results file written")
        return
    threads = bench.connection.sql("SELECT current_setting('threads')").fetchall()[0][0]
    payload = {
        "benchmark": "syncs: planning, PostgreSQL delivery and incremental runs",
        "date": date.today().isoformat(),
        "command": "python bench/syncs.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            **machine(),
            "psycopg": psycopg.__version__,
            "psycopg_impl": psycopg.pq.__impl__,
            "postgres": server,
        },
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "users": users,
        "seed": args.seed,
        "rounds": args.rounds,
        "plan_rounds": args.plan_rounds,
        "threads": threads,
        "sync": {"model": "users", "mode": "mirror", "fields": list(FIELDS)},
        "changed_users": bench.changed_users,
        "warehouse": {"tables": built["tables"], "generator": built["generator"]},
        "code": code,
        **results,
        "summary": totals,
    }
    path = args.results_dir / f"syncs-{users}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"results written to {path}")


if __name__ == "__main__":
    sys.exit(main())
