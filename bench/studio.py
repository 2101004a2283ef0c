"""Audience previews through the studio's API under concurrent users: Corral's overhead.

    python bench/studio.py --users 1000000 [--clients 20] [--seconds 120] [--data-dir bench/data]

The script

1. makes a demo workspace at the requested scale in `--data-dir`
   (`studio-<users>-seed<seed>/`): the demo YAML files (without the demo syncs, whose
   schedules are not part of this load), and a copy of the warehouse that
   `bench/audiences.py` built there when it is current, else a new one;
2. creates one viewer per client in the workspace's metadata store, and starts
   `corral serve` on that workspace as a subprocess, as users run it;
3. signs every client in (a session cookie and CSRF token each: 20 clients are 20 signed-in
   users, not one shared token), and previews every demo audience once to warm up;
4. runs the clients at once, each in its own thread with its own HTTP connection, for
   `--seconds`: each POSTs /api/v1/audiences/{name}/preview (size and every top-level
   condition's size, as the builder asks) over the demo audiences in turn, starting at a
   different one, and waits for the answer before sending the next;
5. prints p50 and p95 of the latency seen by the client, of the warehouse's time, and of
   the rest (Corral's overhead), and writes `bench/results/studio-<users>.json`.

What is measured. The latency is the wall time of the HTTP request at the client. The
warehouse's time is the sum of the `warehouse_ms` of the preview's timings in the response:
the time spent inside the warehouse adapter's `query`, which runs the SQL and reads the
result into Arrow (rendering the SQL text is a fraction of a millisecond and is counted
with it). Everything else is Corral's overhead: HTTP, sign-in check, reading the workspace,
compiling the audience, JSON, and waiting for the server's worker threads and the GIL. The
target is an overhead under 10% of request time, over all requests (the sum of overheads
over the sum of latencies). The clients run on the same machine as the server, so their
own CPU use slows the server a little and counts as overhead; the figure is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from rich.console import Console
from rich.table import Table

import corral.demo.generate as demo_generate
from audiences import generator_fingerprint, machine  # a module beside this script
from corral.demo import generate_warehouse
from corral.governance import VIEWER, Governance
from corral.store import Store
from corral.workspace import load_workspace

console = Console()

BENCH = Path(__file__).resolve().parent
DEMO_WORKSPACE = Path(demo_generate.__file__).resolve().parent / "workspace"
TARGET_OVERHEAD = 0.10
PASSWORD = "bench passphrase for the studio"
START_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Sample:
    """One preview as one client saw it."""

    client: int
    audience: str
    started: float  # seconds since the run began
    total_ms: float  # at the client
    warehouse_ms: float  # from the response's timings, waiting for a query slot included
    queued_ms: float  # of which waiting for a query slot
    preview_ms: float  # the preview's own total (compile + warehouse steps), server side
    size: int

    @property
    def overhead_ms(self) -> float:
        return self.total_ms - self.warehouse_ms


# -- the workspace and the server -------------------------------------------------------------


def ensure_workspace(data_dir: Path, users: int, seed: int) -> Path:
    """The demo workspace at this scale; its warehouse copied or built when not current."""
    folder = data_dir / f"studio-{users}-seed{seed}"
    shutil.copytree(
        DEMO_WORKSPACE, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("syncs")
    )
    warehouse, sidecar = folder / "warehouse.duckdb", folder / "warehouse.json"
    wanted = {"users": users, "seed": seed, "generator": generator_fingerprint()}
    if warehouse.is_file() and _matches(sidecar, wanted):
        console.print(f"reusing {warehouse}")
        return folder

    # bench/audiences.py keeps the same warehouse beside us: copy it rather than share it,
    # since the server opens its file read-write.
    built = data_dir / f"demo-{users}-seed{seed}.duckdb"
    started = time.perf_counter()
    warehouse.unlink(missing_ok=True)
    if built.is_file() and _matches(built.with_suffix(".json"), wanted):
        console.print(f"copying {built} -> {warehouse}")
        shutil.copyfile(built, warehouse)
    else:
        console.print(f"building the demo warehouse: {users:,} users, seed {seed} -> {warehouse}")
        generate_warehouse(warehouse, users=users, seed=seed)
    seconds = round(time.perf_counter() - started, 1)
    sidecar.write_text(json.dumps({**wanted, "seconds": seconds}, indent=2) + "\n")
    return folder


def set_query_slots(workspace: Path, max_queries: int | None) -> None:
    """Point corral.yaml at the warehouse with `max_queries` slots (None: the default)."""
    settings_file = workspace / "corral.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    url = "duckdb:///warehouse.duckdb"
    settings["warehouse"] = url if max_queries is None else f"{url}?max_queries={max_queries}"
    settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))


def _matches(sidecar: Path, wanted: dict[str, Any]) -> bool:
    if not sidecar.is_file():
        return False
    found = json.loads(sidecar.read_text())
    return {key: found.get(key) for key in wanted} == wanted


def ensure_viewers(workspace: Path, clients: int) -> list[str]:
    """One viewer per client (created once; the password is the same for all)."""
    store = Store(load_workspace(workspace).metadata_url())
    store.upgrade()
    governance = Governance(store, workspace=workspace)
    emails = [f"bench-{i:02d}@example.com" for i in range(1, clients + 1)]
    for email in emails:
        if governance.users.by_email(email) is None:
            governance.users.create(email, email.split("@")[0], PASSWORD, [VIEWER])
    store.close()
    return emails


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(workspace: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    corral = Path(sys.executable).with_name("corral")
    command = [str(corral), "serve", "--workspace", str(workspace), "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"corral serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise SystemExit(f"corral serve did not answer in {START_TIMEOUT_SECONDS}s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the clients ------------------------------------------------------------------------------


def sign_in(url: str, email: str) -> httpx.Client:
    """A client with its own session cookie, sending its CSRF token on every POST."""
    client = httpx.Client(base_url=url, timeout=httpx.Timeout(600.0))
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    answer.raise_for_status()
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def preview(client: httpx.Client, audience: str) -> dict[str, Any]:
    answer = client.post(
        f"/api/v1/audiences/{quote(audience, safe='')}/preview", json={"blocks": True}
    )
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def run_client(
    index: int,
    client: httpx.Client,
    audiences: list[str],
    began: float,
    until: float,
    samples: list[Sample],
    errors: list[str],
) -> None:
    turn = index
    while time.perf_counter() < until:
        audience = audiences[turn % len(audiences)]
        turn += 1
        started = time.perf_counter()
        try:
            body = preview(client, audience)
        except httpx.HTTPError as error:
            errors.append(f"{audience}: {error}")
            continue
        total_ms = (time.perf_counter() - started) * 1000
        warehouse_ms = sum(step["warehouse_ms"] for step in body["timings"])
        queued_ms = sum(step.get("queued_ms", 0.0) for step in body["timings"])
        sample = Sample(
            index,
            audience,
            started - began,
            total_ms,
            warehouse_ms,
            queued_ms,
            body["total_ms"],
            body["size"],
        )
        samples.append(sample)  # list.append is atomic


def load(
    clients: list[httpx.Client], audiences: list[str], seconds: float
) -> tuple[list[Sample], list[str], float]:
    """Every client at once for `seconds`; requests still open then are waited for."""
    samples: list[Sample] = []
    errors: list[str] = []
    began = time.perf_counter()
    until = began + seconds
    threads = [
        threading.Thread(
            target=run_client, args=(i, client, audiences, began, until, samples, errors)
        )
        for i, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, errors, time.perf_counter() - began


# -- the numbers ------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (p50 is the median's upper neighbour on even counts)."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def stats(samples: list[Sample]) -> dict[str, Any]:
    totals = [s.total_ms for s in samples]
    warehouse = [s.warehouse_ms for s in samples]
    running = [s.warehouse_ms - s.queued_ms for s in samples]
    queued = [s.queued_ms for s in samples]
    overhead = [s.overhead_ms for s in samples]
    preview_corral = [s.preview_ms - s.warehouse_ms for s in samples]
    outside = [s.total_ms - s.preview_ms for s in samples]
    share = sum(overhead) / sum(totals)
    return {
        "requests": len(samples),
        "total_ms": _spread(totals),
        "warehouse_ms": _spread(warehouse),
        "warehouse_running_ms": _spread(running),
        "warehouse_queued_ms": _spread(queued),
        "queued_share": round(sum(queued) / sum(totals), 4),
        "overhead_ms": _spread(overhead),
        "overhead_in_preview_ms": _spread(preview_corral),
        "overhead_outside_preview_ms": _spread(outside),
        "overhead_share": round(share, 4),
        "overhead_share_median": round(
            statistics.median(o / t for o, t in zip(overhead, totals, strict=True)), 4
        ),
        "verdict": "PASS" if share < TARGET_OVERHEAD else "MISS",
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.50), 1),
        "p95": round(percentile(values, 0.95), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def print_tables(
    overall: dict[str, Any], by_audience: dict[str, dict[str, Any]], args: Any
) -> None:
    table = Table(
        title=f"Studio previews: {args.clients} users, {args.users:,}-user demo warehouse, "
        f"{overall['requests']} requests"
    )
    for heading in ("", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(heading, justify="right" if heading else "left")
    rows = [
        ("request (client)", overall["total_ms"]),
        ("warehouse", overall["warehouse_ms"]),
        ("  running the queries", overall["warehouse_running_ms"]),
        ("  waiting for a query slot", overall["warehouse_queued_ms"]),
        ("Corral overhead", overall["overhead_ms"]),
        ("  compile etc. (in preview)", overall["overhead_in_preview_ms"]),
        ("  HTTP, auth, queueing", overall["overhead_outside_preview_ms"]),
    ]
    for label, spread in rows:
        table.add_row(
            label, f"{spread['p50']:,.1f}", f"{spread['p95']:,.1f}", f"{spread['mean']:,.1f}"
        )
    console.print(table)

    share = overall["overhead_share"]
    colour = "green" if overall["verdict"] == "PASS" else "red"
    console.print(
        f"Corral's overhead: {share:.1%} of request time (median per request "
        f"{overall['overhead_share_median']:.1%}); target < {TARGET_OVERHEAD:.0%}: "
        f"[{colour}]{overall['verdict']}[/{colour}]"
    )
    console.print(
        f"Waiting for one of the warehouse's query slots: {overall['queued_share']:.1%} of "
        "request time (counted as warehouse time)"
    )

    per = Table(title="By audience")
    for heading in ("audience", "requests", "p50 ms", "p95 ms", "warehouse p50", "overhead"):
        per.add_column(heading, justify="left" if heading == "audience" else "right")
    for name, found in by_audience.items():
        per.add_row(
            name,
            str(found["requests"]),
            f"{found['total_ms']['p50']:,.0f}",
            f"{found['total_ms']['p95']:,.0f}",
            f"{found['warehouse_ms']['p50']:,.0f}",
            f"{found['overhead_share']:.1%}",
        )
    console.print(per)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000, help="demo warehouse size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clients", type=int, default=20, help="concurrent signed-in users")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the load runs")
    parser.add_argument(
        "--max-queries",
        type=int,
        default=None,
        help="the DuckDB warehouse's query slots (default: as many as DuckDB has threads)",
    )
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workspace = ensure_workspace(args.data_dir, args.users, args.seed)
    set_query_slots(workspace, args.max_queries)
    emails = ensure_viewers(workspace, args.clients)
    audiences = sorted(load_workspace(workspace).audiences)
    port = free_port()
    log = args.data_dir / f"studio-{args.users}-serve.log"
    console.print(f"starting corral serve on port {port} (log: {log})")
    started = time.perf_counter()
    server = start_server(workspace, port, log)
    console.print(f"up in {time.perf_counter() - started:.0f}s")
    load_before = os.getloadavg()
    try:
        url = f"http://127.0.0.1:{port}"
        clients = [sign_in(url, email) for email in emails]
        console.print(f"warming up: {len(audiences)} audiences once each")
        sizes = {name: preview(clients[0], name)["size"] for name in audiences}
        console.print(f"{args.clients} clients for {args.seconds:.0f}s")
        samples, errors, elapsed = load(clients, audiences, args.seconds)
    finally:
        stop_server(server)
    load_after = os.getloadavg()

    if errors:
        console.print(f"[red]{len(errors)} requests failed[/red], e.g. {errors[0]}")
    wrong = [s for s in samples if s.size != sizes[s.audience]]
    if wrong or not samples:
        console.print(f"[red]{len(wrong)} previews disagreed with the warm-up's size[/red]")
        return 1
    overall = stats(samples)
    by_audience = {
        name: stats([s for s in samples if s.audience == name])
        for name in audiences
        if any(s.audience == name for s in samples)
    }
    print_tables(overall, by_audience, args)

    payload = {
        "benchmark": "studio",
        "date": date.today().isoformat(),
        "command": "python bench/studio.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
        "users": args.users,
        "seed": args.seed,
        "clients": args.clients,
        "max_queries": args.max_queries or "DuckDB's threads",
        "auth": "one signed-in viewer per client (session cookie + CSRF token)",
        "endpoint": 'POST /api/v1/audiences/{name}/preview {"blocks": true}',
        "seconds": round(elapsed, 1),
        "throughput_per_second": round(len(samples) / elapsed, 2),
        "errors": len(errors),
        "target_overhead_share": TARGET_OVERHEAD,
        "overall": overall,
        "audiences": {name: {"size": sizes[name], **found} for name, found in by_audience.items()},
    }
    path = args.results_dir / f"studio-{args.users}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
