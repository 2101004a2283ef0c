"""Crash tests: sync runs SIGKILLed at random points, then resumed, must leave the
destination holding exactly the audience, with nothing lost and nothing duplicated.

Each test keeps a DuckDB file warehouse with a `people` table and syncs an audience of it
in mirror mode, in small batches, from child processes (tests/activation/crash_main.py).
Between kills the source changes: people enter and leave the audience, change, change
back to values delivered before, disappear, and appear. Some kills land at a random time,
others wait for a phase (planning, delivery, the fold of acknowledgements into the state)
and strike inside it. Then two runs go to the end, and the destination, the audience and
the planner's state must all agree, the second run having found nothing to do.

Only one process may open the DuckDB file at a time: the test touches it only while no
child runs, and closes it before starting the next.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from corral.activation.mapping import KEY
from corral.activation.planner import Planner
from corral.warehouse import DuckDBWarehouse
from tests.activation.crash_main import MAPPING, PEOPLE, PEOPLE_SCHEMA, SYNC, THRESHOLD
from tests.conftest import require_or_skip
from tests.helpers.fake_server import FakeServer, RecordedRequest, Reply

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("CORRAL_CRASH_SEED", "20260601"))
PEOPLE_ROWS = 2000
BATCH_SIZE = 50
PLANNER_SCHEMA = "corral_planner"
KILLED = -signal.SIGKILL
# Where a kill is aimed: a random moment of the run, or a random moment inside a phase
# (with the longest delay after the phase begins).
TARGETS: dict[str, float] = {"time": 0.0, "plan": 0.03, "deliver": 0.08, "fold": 0.02}
ROTATION = ["time", "deliver", "plan", "time", "fold", "deliver"]
Row = dict[str, Any]


# The source


def original(person: int) -> Row:
    return {
        "id": person,
        "email": f"person{person}@example.com",
        "name": None if person % 7 == 0 else f"Person {person}",
        "score": (person * 37) % 100,
    }


def write_people(path: Path, rows: list[Row]) -> None:
    warehouse = DuckDBWarehouse(str(path))
    try:
        data = pa.Table.from_pylist(rows, schema=PEOPLE_SCHEMA)
        warehouse.create_table(PEOPLE, data, replace=True)
    finally:
        warehouse.close()


def read_people(path: Path) -> list[Row]:
    warehouse = DuckDBWarehouse(str(path))
    try:
        rows: list[Row] = warehouse.query(
            exp.select(exp.Star()).from_(PEOPLE.to_expression())
        ).to_pylist()
    finally:
        warehouse.close()
    return rows


def mutate(path: Path, rng: random.Random, round_: int) -> Counter[str]:
    """Change a few percent of the people in every way a source changes; the kinds made."""
    made: Counter[str] = Counter()
    rows = []
    for row in read_people(path):
        roll = rng.random()
        if roll < 0.01:
            made["deleted"] += 1
            continue
        if roll < 0.05:
            row["score"] = rng.randrange(100)  # enters, leaves, or changes inside
            made["rescored"] += 1
        elif roll < 0.09:
            row["name"] = f"Renamed in round {round_}"
            made["renamed"] += 1
        elif roll < 0.12:
            # Back to the first values: often what the state holds as delivered.
            row.update({k: v for k, v in original(row["id"]).items() if k != "score"})
            made["reverted"] += 1
        elif roll < 0.13:
            row["email"] = f"moved{round_}.{row['id']}@example.com"
            made["moved"] += 1
        rows.append(row)
    first_new = max(row["id"] for row in rows) + 1
    rows += [original(person) for person in range(first_new, first_new + 20)]
    made["inserted"] = 20
    write_people(path, rows)
    return made


def audience(path: Path) -> dict[str, Row]:
    """What the destination must hold: each member's mapped fields, by key."""
    return {
        str(row["id"]): {name: row[source] for name, source in MAPPING.items()}
        for row in read_people(path)
        if row["score"] >= THRESHOLD
    }


def planner_state(path: Path) -> tuple[dict[str, Row], int, int]:
    """The planner's delivered state by key, its row count, and the acks left over."""
    warehouse = DuckDBWarehouse(str(path))
    try:
        planner = Planner(warehouse, SYNC, schema=PLANNER_SCHEMA)
        rows = warehouse.query(exp.select(exp.Star()).from_(planner.state.to_expression()))
        acks = planner._count(planner.acks)
    finally:
        warehouse.close()
    state = {
        str(row[KEY]): {name: row[f"f_{name}"] for name in MAPPING} for row in rows.to_pylist()
    }
    return state, rows.num_rows, acks


# The child processes


class RunServer:
    """crash_main in `--serve` mode: it imports Corral once and forks a process per run."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.activation.crash_main", "--serve"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )

    def start(self, request: dict[str, Any]) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        word, pid = self._line().split()
        assert word == "pid"
        return int(pid)

    def wait(self, pid: int) -> int:
        word, ended, code = self._line().split()
        assert (word, int(ended)) == ("exit", pid)
        return int(code)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the run server died; see {self._log.name}")
        return line.strip()


@dataclass
class CrashLoop:
    """Runs the sync again and again, killing most runs; remembers where each kill landed."""

    folder: Path
    destination: dict[str, Any]
    rng: random.Random
    kills: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    runs: int = 0
    duration: float = 1.0  # seconds a whole run takes; measured on runs that finish

    @property
    def warehouse(self) -> Path:
        return self.folder / "warehouse.duckdb"

    def request(self) -> dict[str, Any]:
        self.runs += 1
        return {
            "warehouse": str(self.warehouse),
            "planner_schema": PLANNER_SCHEMA,
            "destination": self.destination,
            "batch_size": BATCH_SIZE,
            "ack_every": BATCH_SIZE,
            "statement_pause": 0.002,
            "phase_file": str(self.folder / f"phases{self.runs}"),
            "report_file": str(self.folder / f"report{self.runs}.json"),
        }

    def kill_one(self, server: RunServer, target: str) -> None:
        request = self.request()
        started = time.monotonic()
        pid = server.start(request)
        if target == "time":
            # From the first step that touches the warehouse: before it nothing can break.
            if _wait_for_phase(request, "prepare"):
                time.sleep(self.rng.uniform(0.0, self.duration))
        elif _wait_for_phase(request, target):
            time.sleep(self.rng.uniform(0.0, TARGETS[target]))
        with contextlib.suppress(ProcessLookupError):  # it had ended and was reaped
            os.kill(pid, signal.SIGKILL)
        code = server.wait(pid)
        if code == KILLED:
            self.kills[_phases(request)[-1]] += 1
            return
        self._check_finished(request, code)
        self.completed += 1
        self.duration = time.monotonic() - started

    def finish(self, server: RunServer) -> dict[str, Any]:
        """A run left alone to the end; its report."""
        request = self.request()
        pid = server.start(request)
        return self._check_finished(request, server.wait(pid))

    def _check_finished(self, request: dict[str, Any], code: int) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(Path(request["report_file"]).read_text())
        assert code == 0, report.get("crash")
        assert report["status"] == "succeeded", report
        return report


def _wait_for_phase(request: dict[str, Any], phase: str, timeout: float = 20.0) -> bool:
    """Wait until the child enters `phase`; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _phases(request)
        if phase in seen or (phase == "fold" and "recovery" in seen):
            return True
        if Path(request["report_file"]).exists():
            return False
        time.sleep(0.001)
    raise AssertionError(f"the run never reached {phase!r}: {seen}")


def _phases(request: dict[str, Any]) -> list[str]:
    path = Path(request["phase_file"])
    return (path.read_text().split() if path.exists() else []) or ["not started"]


def crash_and_resume(
    folder: Path, destination: dict[str, Any], kills: int, seed: int
) -> tuple[CrashLoop, list[dict[str, Any]]]:
    """Runs until `kills` of them were killed, the source changing between; then two runs
    to the end."""
    rng = random.Random(seed)
    loop = CrashLoop(folder, destination, rng)
    write_people(loop.warehouse, [original(p) for p in range(1, PEOPLE_ROWS + 1)])
    server = RunServer(folder / "children.log")
    try:
        # A bound: most runs are killed, though a short run may end before its kill lands.
        for round_ in range(4 * kills):
            if sum(loop.kills.values()) >= kills:
                break
            if round_ and rng.random() < 0.6:
                mutate(loop.warehouse, rng, round_)
            loop.kill_one(server, ROTATION[round_ % len(ROTATION)])
        reports = [loop.finish(server), loop.finish(server)]
    finally:
        server.close()
    logger.info(
        "seed %d: %d runs, kills by phase %s, %d finished unharmed",
        seed,
        loop.runs,
        dict(loop.kills),
        loop.completed,
    )
    return loop, reports


def check_converged(
    loop: CrashLoop, destination: dict[str, Row], reports: list[Any], *, kills: int
) -> None:
    """The destination is the audience, the state is the destination, nothing is left;
    and at least `kills` runs died, some in each phase that writes."""
    expected = audience(loop.warehouse)
    assert set(destination) == set(expected), (
        f"missing {sorted(set(expected) - set(destination))[:10]}, "
        f"extra {sorted(set(destination) - set(expected))[:10]}"
    )
    wrong = {k: (destination[k], v) for k, v in expected.items() if destination[k] != v}
    assert not wrong, f"{len(wrong)} rows differ (destination, audience): {list(wrong.items())[:5]}"

    state, state_rows, acks = planner_state(loop.warehouse)
    assert state_rows == len(state) == len(expected)
    assert state == destination
    assert acks == 0

    last = reports[-1]["counts"]
    assert last["planned_added"] + last["planned_changed"] + last["planned_removed"] == 0
    assert last["members"] == len(expected)

    assert sum(loop.kills.values()) >= kills, loop.kills
    for phase in ("plan", "deliver"):
        assert loop.kills[phase], f"no kill landed in {phase}: {loop.kills}"
    assert loop.kills["fold"] + loop.kills["recovery"], f"no kill in a fold: {loop.kills}"


# PostgreSQL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    try:
        import psycopg
    except ImportError:
        require_or_skip("psycopg is not installed: pip install 'corral[postgres]'")
    try:
        psycopg.connect(postgres_url, connect_timeout=3).close()
    except psycopg.Error as error:
        require_or_skip(f"PostgreSQL is not reachable (CORRAL_TEST_POSTGRES_URL): {error}")
    schema = f"corral_crash_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def postgres_rows(url: str, schema: str) -> tuple[dict[str, Row], int]:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            f'SELECT key, email, name, score FROM "{schema}".people'
        ).fetchall()
    held = {key: {"email": email, "name": name, "score": score} for key, email, name, score in rows}
    return held, len(rows)


def test_postgres_destination_survives_kills(
    tmp_path: Path, postgres_url: str, postgres_schema: str
) -> None:
    destination = {
        "type": "postgres",
        "config": {"url": postgres_url, "schema": postgres_schema, "table": "people"},
    }

    loop, reports = crash_and_resume(tmp_path, destination, kills=20, seed=SEED)

    held, count = postgres_rows(postgres_url, postgres_schema)
    assert count == len(held)  # the key is the primary key; the count says so again
    check_converged(loop, held, reports, kills=20)


# A webhook receiver


class Receiver:
    """Applies webhook batches to a dict by key, as an idempotent receiver would."""

    def __init__(self) -> None:
        self.held: dict[str, Row] = {}
        self.received: Counter[str] = Counter()  # each (operation, key, fields) delivery
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        try:
            body = request.json()
        except ValueError:  # the sender died while sending: nothing to apply
            return Reply(400)
        operation = body["operation"]
        with self._lock:
            for record in body["records"]:
                key, fields = record["key"], record["fields"]
                self.received[json.dumps([operation, key, fields], sort_keys=True)] += 1
                if operation == "remove":
                    self.held.pop(key, None)
                else:
                    self.held[key] = fields
        # A short pause between applying and answering: the window in which a kill loses
        # the acknowledgement of rows that did arrive.
        return Reply(200, delay=0.005)

    @property
    def resends(self) -> int:
        return sum(n - 1 for n in self.received.values())


def test_webhook_destination_survives_kills(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    receiver = Receiver()
    with FakeServer(receiver) as server:
        destination = {"type": "webhook", "config": {"url": f"{server.url}/hook", "timeout": 5}}
        loop, reports = crash_and_resume(tmp_path, destination, kills=10, seed=SEED + 1)

    # At least once: rows whose acknowledgement died with a run arrive again. Never twice
    # in the final state, which is keyed like the audience.
    record_property("resends", receiver.resends)
    logger.info("webhook: %d records resent", receiver.resends)
    assert receiver.resends < sum(receiver.received.values())
    check_converged(loop, receiver.held, reports, kills=10)
