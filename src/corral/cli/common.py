"""What every command shares: finding the workspace, opening the warehouse, errors, logging.

A `CorralError` ends a command with a short red message, its hint and exit code 2; with
`--debug` it ends with the traceback instead, and DEBUG logs (generated SQL, timings)
go to stderr. Logging is configured here and nowhere else.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from corral.errors import ConfigurationError, CorralError
from corral.schema import Schema, bind_schema
from corral.warehouse import Warehouse, connect
from corral.workspace import Workspace, load_workspace

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
ERROR_EXIT = 2
DEFAULT_WORKSPACE = Path("corral-demo")


@dataclass
class _State:
    debug: bool = False
    handler: logging.Handler | None = None


STATE = _State()

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="CORRAL_WORKSPACE",
        help="Workspace folder (default: $CORRAL_WORKSPACE, else the current folder if it "
        "holds schema.yaml, else ./corral-demo).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Evaluate relative time as of this ISO date or timestamp "
        "(default: the workspace's as_of, else now).",
        show_default=False,
    ),
]


def out() -> Console:
    """The console for a command's own output (stdout)."""
    return Console(highlight=False)


def err() -> Console:
    """The console for progress, spinners and errors (stderr), so stdout stays clean."""
    return Console(stderr=True, highlight=False)


def configure_logging(debug: bool) -> None:
    """DEBUG logs of the `corral` logger to stderr with --debug; otherwise warnings only.

    Plain lines rather than rich's handler, so logged SQL stays whole and copyable.
    """
    STATE.debug = debug
    root = logging.getLogger("corral")
    if STATE.handler is not None:
        root.removeHandler(STATE.handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logging.DEBUG if debug else logging.WARNING
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    STATE.handler = handler


def handles_errors(command: F) -> F:
    """End the command cleanly on a CorralError: message, hint, exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CorralError as error:
            if STATE.debug:
                raise
            report_error(error)
            raise typer.Exit(ERROR_EXIT) from None

    return wrapper  # type: ignore[return-value]


def report_error(error: CorralError) -> None:
    console = err()
    where = f"{error.where}: " if error.where else ""
    console.print(f"[bold red]error:[/] {where}{error.message}", markup=True, soft_wrap=True)
    if error.hint:
        console.print(f"[dim]hint:[/] {error.hint}", soft_wrap=True)


# -- workspace, warehouse, schema --------------------------------------------------------------


def workspace_dir(option: Path | None) -> Path:
    """--workspace, else $CORRAL_WORKSPACE (typer reads it), else . with schema.yaml, else demo."""
    if option is not None:
        return option
    if Path("schema.yaml").is_file():
        return Path(".")
    return DEFAULT_WORKSPACE


def open_workspace(option: Path | None) -> Workspace:
    return load_workspace(workspace_dir(option))


def open_warehouse(workspace: Workspace, *, writable: bool = False) -> Warehouse:
    """The workspace's warehouse; a DuckDB file is opened read-only unless a sync must
    write its planner tables, so previews can run beside another process."""
    url = workspace.warehouse_url()
    if url.startswith("duckdb://") and "?" not in url:
        path = url.split("://", 1)[1]
        if path not in ("", ":memory:"):
            if not Path(path).exists():
                raise ConfigurationError(
                    f"the warehouse file {Path(path)} does not exist",
                    where=str(workspace.root / "corral.yaml"),
                    hint="run 'corral demo' to build the demo warehouse, or fix 'warehouse' "
                    "in corral.yaml",
                )
            if not writable:
                url += "?read_only=true"
    return connect(url)


@contextmanager
def connected(workspace: Workspace, *, writable: bool = False) -> Iterator[Warehouse]:
    warehouse = open_warehouse(workspace, writable=writable)
    try:
        yield warehouse
    finally:
        warehouse.close()


def bound_schema(workspace: Workspace, warehouse: Warehouse) -> tuple[Schema, float]:
    """The workspace's schema with column types from the warehouse, and the ms it took."""
    started = time.perf_counter()
    schema = bind_schema(workspace.schema, warehouse)
    return schema, (time.perf_counter() - started) * 1000


def resolve_as_of(workspace: Workspace, text: str | None) -> datetime:
    """--as-of, else the workspace's `as_of`, else now (in UTC)."""
    if text is not None:
        return parse_as_of(text)
    if workspace.settings.as_of is not None:
        return workspace.settings.as_of
    return datetime.now(UTC)


def parse_as_of(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"cannot read {text!r} as a date or timestamp; write ISO 8601 like "
            "2026-12-01 or 2026-12-01T09:30:00",
            param_hint="'--as-of'",
        ) from None


def split_names(values: list[str] | None) -> list[str]:
    """Names from repeated options and comma-separated lists alike."""
    names = [n.strip() for v in values or [] for n in v.split(",")]
    return list(dict.fromkeys(n for n in names if n))
