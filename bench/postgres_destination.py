"""The PostgreSQL destination against one raw COPY of the same rows.

    python bench/postgres_destination.py [--rows 1000000] [--rounds 3] [--batch-size 50000]
        [--concurrency 2] [--url postgresql://postgres@127.0.0.1:5432/test]
        [--results bench/results/postgres-destination.json | --no-results]

Both sides load the same rows (key, email, first_name, last_name, country,
lifetime_value) into an empty table with a text primary key, in a schema of their own
that is dropped at the end:

- destination: `PostgresDestination` in upsert mode, one `send` per batch of ADD records,
  `--concurrency` batches in flight from a thread pool, as the sync engine sends them;
  the first batch creates the table;
- raw: what one would write by hand: create the table, then one COPY of every row in
  one transaction, each row a tuple streamed to psycopg's `write_row`.

Both start from the same `Record` objects in memory, as the sync engine hands them to a
destination, and the timing covers turning them into rows, creating the table and
loading it, up to the commit. For the raw side, streaming the tuples is the fastest way
measured: as fast as tuples built before the timer starts (the building overlaps the
server's work), faster than building a list of them first (about 10%), and as fast as
binary COPY with `set_types`. The destination answers `ALL_ACCEPTED` when every row was
accepted; the timing includes building one `RowResult` a row when it does not.

The two sides run alternately (the order flips each round) in one process; the script
prints rows per second for each and the ratio destination / raw, both of the medians
and as the median of the per-round ratios, which cancels load on the machine that
drifts between rounds, and records them in the results file, one entry per setting. The
target is a ratio of at least 0.7.
"""

from __future__ import annotations

import argparse
import datetime
import json
import operator
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from corral.destinations import Batch, Mode, Operation, Record
from corral.destinations.postgres import PostgresConfig, PostgresDestination

FIELDS = ("email", "first_name", "last_name", "country", "lifetime_value")
FIRST = ("Ana", "Bjørn", "Chloé", "Dmitri", "Eve", "Farah", "Göran", "Hana", "Ivo", "Jun")
LAST = ("Smith", "Müller", "O'Neil", "García", "Kowalski", "Nakamura", "Dubois", "Rossi")
COUNTRIES = ("US", "DE", "FR", "GB", "ES", "IT", "PL", "JP", "BR", "IN")
TARGET = 0.7
RESULTS = Path(__file__).parent / "results" / "postgres-destination.json"


def make_records(rows: int, seed: int = 7) -> list[Record]:
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        records.append(
            Record(
                f"user-{i:08d}",
                {
                    "email": f"{first.lower()}.{i}@example.com",
                    "first_name": first,
                    "last_name": last,
                    "country": rng.choice(COUNTRIES),
                    "lifetime_value": Decimal(rng.randrange(0, 1_000_000)) / 100,
                },
            )
        )
    return records


def run_destination(
    url: str, schema: str, records: list[Record], batch_size: int, concurrency: int
) -> float:
    config = PostgresConfig.model_validate(
        {"url": url, "schema": schema, "table": "via_destination", "concurrency": concurrency}
    )
    destination = PostgresDestination(config)
    batches = [
        Batch(Operation.ADD, records[i : i + batch_size])
        for i in range(0, len(records), batch_size)
    ]
    started = time.perf_counter()
    destination.open(Mode.UPSERT, FIELDS)
    answers = [destination.send(batches[0])]  # the first batch creates the table
    with ThreadPoolExecutor(concurrency) as pool:
        answers += pool.map(destination.send, batches[1:])
    elapsed = time.perf_counter() - started
    destination.close()

    rejected = sum(
        1 for answer in answers if isinstance(answer, list) for r in answer if r.reason is not None
    )
    if rejected:
        sys.exit(f"the destination rejected {rejected} rows; the timing is meaningless")
    return elapsed


def run_raw(url: str, schema: str, records: list[Record]) -> float:
    table = sql.Identifier(schema, "via_copy")
    columns = sql.SQL(", ").join(map(sql.Identifier, ("key", *FIELDS)))
    started = time.perf_counter()
    getter = operator.itemgetter(*FIELDS)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "CREATE TABLE {} (key text PRIMARY KEY, email text, first_name text,"
                " last_name text, country text, lifetime_value numeric)"
            ).format(table)
        )
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy:
            for row in ((r.key, *getter(r.fields)) for r in records):
                copy.write_row(row)
    return time.perf_counter() - started


def reset(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def machine(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as connection:
        server = connection.execute("SHOW server_version").fetchone()
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "postgresql": server[0] if server else "unknown",
    }


def record_results(path: Path, run: dict[str, Any]) -> None:
    """Keep the last run of each setting (rows, batch size, concurrency) in the results file."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("benchmark", "PostgreSQL destination vs one raw COPY")
    results.setdefault("command", "python bench/postgres_destination.py --rows N --rounds R")
    results["target_ratio"] = TARGET
    setting = operator.itemgetter("rows", "batch_size", "concurrency")
    runs = {setting(r): r for r in results.get("runs", [])}
    runs[setting(run)] = run
    results["runs"] = sorted(runs.values(), key=setting)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=PostgresDestination.catalog.batch_size)
    parser.add_argument("--concurrency", type=int, default=PostgresDestination.catalog.concurrency)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "CORRAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-results", dest="results", action="store_const", const=None)
    args = parser.parse_args()

    schema = f"corral_bench_{os.getpid()}"
    records = make_records(args.rows)
    sides: dict[str, Callable[[], float]] = {
        "destination": lambda: run_destination(
            args.url, schema, records, args.batch_size, args.concurrency
        ),
        "raw": lambda: run_raw(args.url, schema, records),
    }
    times: dict[str, list[float]] = {"destination": [], "raw": []}
    load_before = os.getloadavg()
    try:
        for round_ in range(args.rounds):
            order = ["destination", "raw"] if round_ % 2 == 0 else ["raw", "destination"]
            for side in order:
                reset(args.url, schema)
                times[side].append(sides[side]())
            speeds = {side: args.rows / spent[-1] for side, spent in times.items()}
            print(
                f"round {round_ + 1}: destination {speeds['destination']:,.0f} rows/s,"
                f" raw COPY {speeds['raw']:,.0f} rows/s"
            )
    finally:
        with psycopg.connect(args.url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )

    destination, raw = statistics.median(times["destination"]), statistics.median(times["raw"])
    per_round = statistics.median(
        r / d for d, r in zip(times["destination"], times["raw"], strict=True)
    )
    print(
        f"{args.rows:,} rows, batches of {args.batch_size:,}, concurrency {args.concurrency}:\n"
        f"  destination {args.rows / destination:,.0f} rows/s (median {destination:.2f}s)\n"
        f"  raw COPY    {args.rows / raw:,.0f} rows/s (median {raw:.2f}s)\n"
        f"  ratio destination / raw: {raw / destination:.2f} (median per round {per_round:.2f})"
        f", target >= {TARGET}"
    )
    if args.results is not None:
        run = {
            "rows": args.rows,
            "rounds": args.rounds,
            "batch_size": args.batch_size,
            "concurrency": args.concurrency,
            "date": datetime.date.today().isoformat(),
            "machine": machine(args.url),
            "load_average": {"start": load_before, "end": os.getloadavg()},
            "destination_rows_per_second": round(args.rows / destination),
            "raw_copy_rows_per_second": round(args.rows / raw),
            "ratio": round(raw / destination, 3),
            "ratio_median_per_round": round(per_round, 3),
            "seconds": {side: [round(t, 3) for t in spent] for side, spent in times.items()},
        }
        record_results(args.results, run)


if __name__ == "__main__":
    main()
