"""`corral demo`: build the synthetic retail warehouse and a workspace on it, then preview.

The folder ends up holding `warehouse.duckdb`, the demo workspace's YAML (`corral.yaml`
points at `warehouse.duckdb` next to it) and a marker recording how the warehouse was
built, so a second run with the same users and seed reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from corral.activation.engine import RunOptions
from corral.audiences.preview import Preview, preview
from corral.cli import output
from corral.cli.audience import record_sizes
from corral.cli.common import (
    DEFAULT_WORKSPACE,
    bound_schema,
    connected,
    err,
    handles_errors,
    out,
    resolve_as_of,
)
from corral.cli.serve import HostOption, PortOption, serve_demo
from corral.cli.sync import run_with_progress
from corral.demo import generate_warehouse
from corral.store import SizeSource
from corral.workspace import Workspace, load_workspace

WAREHOUSE_FILE = "warehouse.duckdb"
MARKER_FILE = ".corral-demo.json"


@handles_errors
def demo(
    users: Annotated[int, typer.Option("--users", min=1, help="Users to generate.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 7,
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the warehouse and the workspace.")
    ] = DEFAULT_WORKSPACE,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild the warehouse and rewrite the YAML files.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve the studio on it, with a demo admin.")
    ] = False,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
) -> None:
    """Build a demo warehouse and workspace, preview every demo audience, run the demo
    syncs; with --serve, then serve the studio."""
    directory.mkdir(parents=True, exist_ok=True)
    console = out()
    built = _reusable(directory, users, seed) if not force else None
    if built is None:
        built = _build(directory, users, seed)
        console.print(
            f"Built the demo warehouse in {built['seconds']:.1f} s: "
            f"{(directory / WAREHOUSE_FILE).resolve()}"
        )
    else:
        console.print(
            f"Reusing the demo warehouse built with {users:,} users and seed {seed} "
            f"in {directory.resolve()} (--force rebuilds it)"
        )
    console.print(_tables(built["tables"]))

    written = _copy_workspace(directory, overwrite=force)
    workspace = load_workspace(directory)
    console.print(_workspace_line(directory, len(workspace.audiences), written))

    previews = _preview_all(workspace)
    console.print(output.sizes_table(previews, workspace.schema.parent.name))

    reports = [run_with_progress(workspace, name, options=RunOptions()) for name in workspace.syncs]
    console.print(output.runs_table(reports, title="Demo syncs (each run sends what changed)"))
    output.print_lines(console, _next_steps(directory))
    if serve:
        serve_demo(directory, host, port)


# -- the warehouse -----------------------------------------------------------------------------


def _reusable(directory: Path, users: int, seed: int) -> dict[str, Any] | None:
    """The marker of an existing warehouse built with these users and seed, or None."""
    marker = directory / MARKER_FILE
    if not (directory / WAREHOUSE_FILE).is_file() or not marker.is_file():
        return None
    try:
        built: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return built if built.get("users") == users and built.get("seed") == seed else None


def _build(directory: Path, users: int, seed: int) -> dict[str, Any]:
    (directory / MARKER_FILE).unlink(missing_ok=True)
    columns = (TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task(f"Generating {users:,} users", total=None)

        def report(step: str, done: int, total: int) -> None:
            label = "Checkpointing" if step == "done" else f"Generating {step}"
            progress.update(task, description=label, completed=done, total=total)

        stats = generate_warehouse(directory / WAREHOUSE_FILE, users, seed=seed, progress=report)
    built = {
        "users": users,
        "seed": seed,
        "tables": stats.tables,
        "seconds": round(stats.seconds, 2),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (directory / MARKER_FILE).write_text(json.dumps(built, indent=2) + "\n", encoding="utf-8")
    return built


def _tables(counts: dict[str, int]) -> Table:
    table = Table(title="Demo tables", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, output.count(rows))
    return table


# -- the workspace -----------------------------------------------------------------------------


def _copy_workspace(directory: Path, *, overwrite: bool) -> int:
    """Copy the demo workspace's YAML into `directory`; returns how many files were written."""
    source = resources.files("corral.demo") / "workspace"
    return _copy_tree(source, directory, overwrite=overwrite)


def _copy_tree(source: Traversable, target: Path, *, overwrite: bool) -> int:
    written = 0
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            written += _copy_tree(entry, target / entry.name, overwrite=overwrite)
        elif entry.name.endswith((".yaml", ".yml")):
            destination = target / entry.name
            if overwrite or not destination.exists():
                with entry.open("rb") as reader, destination.open("wb") as writer:
                    shutil.copyfileobj(reader, writer)
                written += 1
    return written


def _workspace_line(directory: Path, audiences: int, written: int) -> str:
    files = (
        f"corral.yaml, schema.yaml, {audiences} audiences in audiences/, destinations/ and syncs/"
    )
    if written == 0:
        return f"Kept the workspace files in {directory.resolve()} (--force rewrites them)"
    return f"Wrote the demo workspace to {directory.resolve()}: {files}"


def _preview_all(workspace: Workspace) -> list[Preview]:
    """The size of every audience, one after the other, with a progress bar; the sizes are
    kept in the metadata store, so the studio lists them."""
    as_of = resolve_as_of(workspace, None)
    results = []
    with connected(workspace) as warehouse:
        schema, _ = bound_schema(workspace, warehouse)
        with Progress(console=err(), transient=True) as progress:
            task = progress.add_task("Previewing audiences", total=len(workspace.audiences))
            for audience in workspace.audiences.values():
                results.append(
                    preview(
                        audience,
                        schema,
                        warehouse,
                        audiences=workspace.audiences,
                        as_of=as_of,
                        time_zone=workspace.settings.time_zone,
                        blocks=False,
                    )
                )
                progress.advance(task)
    audiences = workspace.audiences.values()
    record_sizes(workspace, zip(audiences, results, strict=True), SizeSource.DEMO)
    return results


def _command_name() -> str:
    """How the user can call this CLI: `corral` when it is on the PATH, else its path."""
    if shutil.which("corral"):
        return "corral"
    here = Path(sys.argv[0])
    if here.name == "corral" and here.exists():
        return os.path.relpath(here) if here.is_absolute() else str(here)
    return "corral"


def _next_steps(directory: Path) -> list[str]:
    flag = "" if directory == DEFAULT_WORKSPACE else f" --workspace {directory}"
    corral = _command_name()
    return [
        "",
        "[bold]Try next:[/]",
        f"  {corral} audience list{flag}",
        f"  {corral} audience preview vips{flag} --breakdown country,order_count --sample 5",
        f"  {corral} audience sql lapsed_high_spenders{flag} --dialect snowflake",
        f"  {corral} schema suggest users country --prefix c{flag}",
        f"  {corral} schema check{flag}",
        f"  {corral} sync list{flag}",
        f"  {corral} sync run 'VIPs to CSV'{flag} --dry-run",
        f"  {corral} sync status{flag}",
        f"  {corral} demo --serve{'' if directory == DEFAULT_WORKSPACE else f' --dir {directory}'}"
        "   (the studio at http://127.0.0.1:8000)",
        "  (add --debug to any command to see the SQL it runs and its timings)",
    ]
