"""Compiled audience SQL against the best hand-written SQL, on the demo warehouse in DuckDB.

    python bench/audiences.py --users 1000000 [--rounds 7] [--data-dir bench/data] [--threads N]

For every demo audience with a baseline below, the script

1. builds the demo warehouse at the requested scale into `--data-dir` (or reuses the file
   there when it was built with the same users, seed and generator source);
2. checks that the compiled query and the hand-written one select exactly the same
   members, and stops with the differences if they do not (one of them has a bug);
3. times both in turns after a warm-up, and reports the median of each and their ratio;
4. times compiling (condition tree to SQL text) and `corral.audiences.preview` (size
   and block sizes), and checks that the preview's size is the number of members;
5. prints a table and writes `bench/results/audiences-<users>.json`.

What is timed. Each run executes the members query and fetches every member key into
an Arrow table, as a sync does. Wrapping the query in `SELECT count(*)` would let the
optimizer drop the key projection and, for some shapes, the work feeding it; fetching
the keys cannot be skipped, and it costs the same for both queries (at most a few
milliseconds for a million keys). The two queries run alternately, and the order flips
each round (A B, B A, A B, ...), so neither always runs on a cache warmed by the other.
Fast queries get extra rounds (`--min-seconds`). The machines this runs on are shared
and noisy: the load average at the start and the end is recorded with the results, and
next to the ratio of the medians the table shows the median of the per-round ratios,
which cancels load that drifts slower than one round.

The baselines are SQL text on purpose: they are what a strong analyst writes by hand
for the same question under the same semantics (docs/semantics.md): case-insensitive
strings, two-valued logic, windows as literal bounds computed from the demo's as-of time
(2026-12-01 00:00), events only up to the as-of time, zero-row aggregates. Where several
shapes were possible, the fastest one measured is kept (see the note on each).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from baselines import BASELINE_AS_OF, BASELINES  # a module beside this script
from rich.console import Console
from rich.table import Table

import corral.demo.generate as demo_generate
from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import AudienceDefinition
from corral.audiences.preview import preview
from corral.demo import DEMO_AS_OF, generate_warehouse
from corral.schema import Schema, bind_schema
from corral.sql import render
from corral.warehouse.duckdb import DuckDBWarehouse
from corral.workspace import Workspace, load_workspace

BENCH = Path(__file__).resolve().parent
WORKSPACE = Path(demo_generate.__file__).resolve().parent / "workspace"
TARGET_MEDIAN = 1.10
TARGET_MAX = 1.5

console = Console()
if not console.is_terminal:
    # Piped to a file or a CI log: wide enough for the table without wrapping.
    console = Console(width=150)


# -- results ----------------------------------------------------------------------------------


@dataclass
class AudienceResult:
    stem: str
    audience: str
    members: int
    compiled_ms: list[float] = field(default_factory=list)
    hand_ms: list[float] = field(default_factory=list)
    compile_ms: float = 0.0
    preview_ms: float = 0.0
    preview_size: int = 0
    block_sizes: list[int] = field(default_factory=list)

    @property
    def compiled_median(self) -> float:
        return statistics.median(self.compiled_ms)

    @property
    def hand_median(self) -> float:
        return statistics.median(self.hand_ms)

    @property
    def ratio(self) -> float:
        return self.compiled_median / self.hand_median

    @property
    def paired_ratio(self) -> float:
        """The median of each round's ratio: runs side by side share the machine's load."""
        return statistics.median(c / h for c, h in zip(self.compiled_ms, self.hand_ms, strict=True))

    def to_dict(self) -> dict[str, Any]:
        numbers = {
            "compiled_median_ms": round(self.compiled_median, 2),
            "hand_median_ms": round(self.hand_median, 2),
            "ratio": round(self.ratio, 3),
            "paired_ratio": round(self.paired_ratio, 3),
            "rounds": len(self.compiled_ms),
        }
        data = asdict(self)
        data["compiled_ms"] = [round(t, 2) for t in self.compiled_ms]
        data["hand_ms"] = [round(t, 2) for t in self.hand_ms]
        return {**data, **numbers, "compile_ms": round(self.compile_ms, 3)}


@dataclass
class Bench:
    """Everything one run needs: the warehouse, its schema and the demo audiences."""

    path: Path
    connection: duckdb.DuckDBPyConnection
    warehouse: DuckDBWarehouse
    workspace: Workspace
    schema: Schema

    def compiled_sql(self, audience: AudienceDefinition) -> str:
        compiler = AudienceCompiler(
            self.schema, DEMO_AS_OF, audiences=self.workspace.audiences, source_dialect="duckdb"
        )
        return render(compiler.members(audience), "duckdb")

    def keys(self, sql: str) -> set[int]:
        return set(self.connection.sql(sql).to_arrow_table().column(0).to_pylist())

    def run(self, sql: str) -> float:
        """Milliseconds to run `sql` and fetch every member key into Arrow."""
        started = time.perf_counter()
        self.connection.sql(sql).to_arrow_table()
        return (time.perf_counter() - started) * 1000


# -- the warehouse ----------------------------------------------------------------------------


def generator_fingerprint() -> str:
    """A hash of the generator's modules: data built by another version is rebuilt."""
    digest = hashlib.sha256()
    for module in sorted(Path(demo_generate.__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()[:16]


def ensure_warehouse(data_dir: Path, users: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The demo warehouse at this scale, built unless an identical one is already there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"demo-{users}-seed{seed}.duckdb"
    sidecar = path.with_suffix(".json")
    wanted = {"users": users, "seed": seed, "generator": generator_fingerprint()}
    if path.is_file() and sidecar.is_file():
        built = json.loads(sidecar.read_text())
        if {k: built.get(k) for k in wanted} == wanted:
            console.print(f"reusing {path} (built in {built['seconds']:.0f}s)")
            return path, built

    console.print(f"building the demo warehouse: {users:,} users, seed {seed} -> {path}")
    sidecar.unlink(missing_ok=True)
    stats = generate_warehouse(path, users=users, seed=seed, progress=_progress)
    built = {**wanted, "tables": stats.tables, "seconds": round(stats.seconds, 1)}
    sidecar.write_text(json.dumps(built, indent=2) + "\n")
    console.print(f"built in {stats.seconds:.0f}s: {stats.tables}")
    return path, built


def _progress(step: str, done: int, total: int) -> None:
    if step != "done":
        console.print(f"  [{done + 1}/{total}] {step}")


def open_bench(path: Path, threads: int | None) -> Bench:
    warehouse = DuckDBWarehouse(str(path), read_only=True)
    # The same database instance as the warehouse's: SET GLOBAL applies to both.
    connection = duckdb.connect(str(path), read_only=True)
    connection.execute("SET enable_progress_bar = false")
    if threads is not None:
        connection.execute("SET GLOBAL threads = ?", [threads])
    workspace = load_workspace(WORKSPACE)
    schema = bind_schema(workspace.schema, warehouse)
    return Bench(path, connection, warehouse, workspace, schema)


# -- checking and timing ----------------------------------------------------------------------


def audiences_to_run(bench: Bench, only: list[str]) -> list[tuple[str, AudienceDefinition]]:
    """(file stem, audience) of each demo audience with a baseline, in file order."""
    chosen = []
    for name, path in bench.workspace.audience_files.items():
        if only and path.stem not in only:
            continue
        if path.stem not in BASELINES:
            console.print(f"[yellow]no baseline for {path.name}: skipped[/yellow]")
            continue
        chosen.append((path.stem, bench.workspace.audiences[name]))
    return chosen


def verify(bench: Bench, chosen: list[tuple[str, AudienceDefinition]]) -> dict[str, int]:
    """Member counts; stops the run if a baseline and its compiled query disagree."""
    counts: dict[str, int] = {}
    problems: list[str] = []
    for stem, audience in chosen:
        compiled = bench.keys(bench.compiled_sql(audience))
        hand = bench.keys(BASELINES[stem])
        counts[stem] = len(compiled)
        if compiled != hand:
            only_compiled = sorted(compiled - hand)[:5]
            only_hand = sorted(hand - compiled)[:5]
            problems.append(
                f"{stem}: compiled {len(compiled):,} members, hand-written {len(hand):,}; "
                f"only compiled (first 5): {only_compiled}; only hand-written: {only_hand}"
            )
    if problems:
        console.print("[bold red]MEMBER SETS DIFFER: a bug in the compiler or a baseline[/]")
        for problem in problems:
            console.print(f"[red]  {problem}[/red]")
        raise SystemExit(1)
    console.print(f"verified: {len(chosen)} audiences, identical member sets")
    return counts


def time_queries(
    bench: Bench, compiled: str, hand: str, rounds: int, min_seconds: float
) -> tuple[list[float], list[float]]:
    """Both queries in turns after a warm-up of each; the order flips every round.

    At least `rounds` rounds, and more (two at a time, up to ten times as many) until the
    timed runs add up to `min_seconds`: a query of a few milliseconds needs many samples
    for its median to stand out of the machine's noise.
    """
    bench.run(compiled)
    bench.run(hand)
    compiled_ms: list[float] = []
    hand_ms: list[float] = []
    round_no = 0
    while round_no < rounds or (
        sum(compiled_ms) + sum(hand_ms) < min_seconds * 1000 and round_no < 10 * rounds
    ):
        for _ in range(2 if round_no >= rounds else 1):
            pair = [(compiled, compiled_ms), (hand, hand_ms)]
            for sql, samples in pair if round_no % 2 == 0 else reversed(pair):
                samples.append(bench.run(sql))
            round_no += 1
    return compiled_ms, hand_ms


def compile_ms(bench: Bench, audience: AudienceDefinition, compiles: int) -> float:
    """Median milliseconds from condition tree to SQL text, over `compiles` compiles."""
    samples = []
    for _ in range(compiles):
        started = time.perf_counter()
        bench.compiled_sql(audience)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def preview_of(
    bench: Bench, audience: AudienceDefinition, rounds: int
) -> tuple[float, int, list[int]]:
    """Median wall milliseconds of a preview (size and block sizes), its size and blocks."""

    def measure() -> tuple[int, list[int]]:
        found = preview(
            audience,
            bench.schema,
            bench.warehouse,
            audiences=bench.workspace.audiences,
            as_of=DEMO_AS_OF,
        )
        return found.size, [block.size for block in found.blocks]

    measure()
    samples: list[float] = []
    size, blocks = 0, list[int]()
    for _ in range(rounds):
        started = time.perf_counter()
        size, blocks = measure()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), size, blocks


# -- report -----------------------------------------------------------------------------------


def summary(results: list[AudienceResult]) -> dict[str, Any]:
    ratios = [r.ratio for r in results]
    worst = max(results, key=lambda r: r.ratio)
    median_ratio = statistics.median(ratios)
    return {
        "median_ratio": round(median_ratio, 3),
        "max_ratio": round(worst.ratio, 3),
        "max_ratio_audience": worst.stem,
        "target_median_ratio": TARGET_MEDIAN,
        "target_max_ratio": TARGET_MAX,
        "meets_targets": median_ratio <= TARGET_MEDIAN and worst.ratio <= TARGET_MAX,
    }


def print_table(results: list[AudienceResult], users: int, totals: dict[str, Any]) -> None:
    table = Table(title=f"Audiences at {users:,} users: compiled vs hand-written SQL (DuckDB)")
    for heading in ("audience", "members", "compiled ms", "hand ms", "ratio", "paired"):
        table.add_column(heading, justify="left" if heading == "audience" else "right")
    for heading in ("compile ms", "preview ms", "blocks"):
        table.add_column(heading, justify="right")
    for r in results:
        colour = "red" if r.ratio > TARGET_MAX else "yellow" if r.ratio > TARGET_MEDIAN else ""
        table.add_row(
            r.stem,
            f"{r.members:,}",
            f"{r.compiled_median:,.1f}",
            f"{r.hand_median:,.1f}",
            f"[{colour}]{r.ratio:.2f}[/{colour}]" if colour else f"{r.ratio:.2f}",
            f"{r.paired_ratio:.2f}",
            f"{r.compile_ms:.2f}",
            f"{r.preview_ms:,.1f}",
            " / ".join(f"{n:,}" for n in r.block_sizes),
        )
    console.print(table)
    verdict = "[green]met[/green]" if totals["meets_targets"] else "[red]not met[/red]"
    console.print(
        f"median ratio {totals['median_ratio']:.2f} (target <= {TARGET_MEDIAN}), "
        f"max {totals['max_ratio']:.2f} in {totals['max_ratio_audience']} "
        f"(target <= {TARGET_MAX}): {verdict}"
    )


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = [x for x in cpuinfo.read_text().splitlines() if x.startswith("model name")]
        model = lines[0].split(":", 1)[1].strip() if lines else model
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "sqlglot": importlib.metadata.version("sqlglot"),
    }


def write_results(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"results written to {path}")


def explain(bench: Bench, chosen: list[tuple[str, AudienceDefinition]]) -> None:
    """EXPLAIN ANALYZE of both queries of each chosen audience, for finding what is slow."""
    for stem, audience in chosen:
        for label, sql in (("compiled", bench.compiled_sql(audience)), ("hand", BASELINES[stem])):
            plan = bench.connection.sql("EXPLAIN ANALYZE " + sql).fetchall()
            console.rule(f"{stem}: {label}")
            print(plan[0][1])


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7, help="timed runs of each query")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="add rounds until each audience's timed runs take this long (at most 10x rounds)",
    )
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compiles", type=int, default=200, help="compiles timed per audience")
    parser.add_argument("--previews", type=int, default=3, help="previews timed per audience")
    parser.add_argument("--only", nargs="*", default=[], help="audience file stems to run")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE plans instead of timing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if DEMO_AS_OF != BASELINE_AS_OF:
        raise SystemExit(f"the baselines are written for as-of {BASELINE_AS_OF}, not {DEMO_AS_OF}")
    path, built = ensure_warehouse(args.data_dir, args.users, args.seed)
    bench = open_bench(path, args.threads)
    chosen = audiences_to_run(bench, args.only)
    counts = verify(bench, chosen)
    if args.explain:
        explain(bench, chosen)
        return 0

    load_before = os.getloadavg()
    results = [measure(bench, stem, audience, counts[stem], args) for stem, audience in chosen]
    totals = summary(results)
    print_table(results, args.users, totals)

    if args.only:
        console.print("a partial run (--only): no results file written")
        return 0
    payload = {
        "benchmark": "audiences: compiled vs hand-written SQL",
        "date": date.today().isoformat(),
        "command": "python bench/audiences.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "load_average": {"start": load_before, "end": os.getloadavg()},
        **run_settings(bench, args),
        "warehouse": {"tables": built["tables"], "generator": built["generator"]},
        "timing": "median ms to run the members query and fetch every key into Arrow",
        "audiences": [r.to_dict() for r in results],
        "summary": totals,
    }
    write_results(args.results_dir / f"audiences-{args.users}.json", payload)
    return 0


def measure(
    bench: Bench, stem: str, audience: AudienceDefinition, members: int, args: argparse.Namespace
) -> AudienceResult:
    """Every number of one audience: both queries, compiling, and a preview."""
    console.print(f"timing {stem} ...")
    result = AudienceResult(stem, audience.name, members)
    compiled = bench.compiled_sql(audience)
    result.compiled_ms, result.hand_ms = time_queries(
        bench, compiled, BASELINES[stem], args.rounds, args.min_seconds
    )
    result.compile_ms = compile_ms(bench, audience, args.compiles)
    result.preview_ms, result.preview_size, result.block_sizes = preview_of(
        bench, audience, args.previews
    )
    if result.preview_size != members:
        console.print(
            f"[red]{stem}: the preview counts {result.preview_size:,} members, "
            f"the members query {members:,}[/red]"
        )
    return result


def run_settings(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    threads = bench.connection.sql("SELECT current_setting('threads')").fetchall()[0][0]
    return {
        "users": args.users,
        "seed": args.seed,
        "as_of": DEMO_AS_OF.isoformat(),
        "rounds": args.rounds,
        "min_seconds": args.min_seconds,
        "threads": threads,
    }


if __name__ == "__main__":
    sys.exit(main())
