"""`corral schema ...`: check schema.yaml against the warehouse, suggest column values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from corral.audiences.compiler import check_audiences
from corral.audiences.preview import jsonable
from corral.cli import output
from corral.cli.common import (
    ERROR_EXIT,
    JsonOption,
    WorkspaceOption,
    bound_schema,
    connected,
    err,
    handles_errors,
    open_workspace,
    out,
)
from corral.schema import bind_schema, check_schema
from corral.schema.suggestions import suggest_values

app = typer.Typer(help="Check the schema and explore column values.", no_args_is_help=True)


@app.command("check")
@handles_errors
def check(
    workspace: WorkspaceOption = None,
    unique_keys: Annotated[
        bool,
        typer.Option("--unique-keys", help="Also check that primary keys are unique (scans)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check schema.yaml against the warehouse, then compile every audience; exit 2 on problems."""
    ws = open_workspace(workspace)
    with connected(ws) as warehouse, err().status("Checking the schema and audiences..."):
        problems = check_schema(ws.schema, warehouse, unique_keys=unique_keys)
        if not problems:
            bound = bind_schema(ws.schema, warehouse)
            as_of = ws.settings.as_of or datetime.now()
            problems = check_audiences(
                bound, ws.audiences, as_of=as_of, source_dialect=warehouse.dialect
            )
    if as_json:
        found = [{"where": p.where, "message": p.message, "hint": p.hint} for p in problems]
        typer.echo(json.dumps({"ok": not problems, "problems": found}, indent=2))
    elif problems:
        err().print(output.problems_table(problems))
    else:
        definition = ws.schema
        out().print(
            f"[green]✓[/] {ws.root / 'schema.yaml'} matches the warehouse: "
            f"{1 + len(definition.models)} models, {len(definition.relationships)} "
            f"relationships, {len(definition.traits)} traits; "
            f"{len(ws.audiences)} audiences compile"
        )
    if problems:
        raise typer.Exit(ERROR_EXIT)


@app.command("suggest")
@handles_errors
def suggest(
    model: Annotated[str, typer.Argument(help="A model of the schema, such as users.")],
    column: Annotated[str, typer.Argument(help="One of its columns.")],
    workspace: WorkspaceOption = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", "-p", help="Only values starting with this.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """The most frequent values of a column, as the audience builder suggests them."""
    ws = open_workspace(workspace)
    with connected(ws) as warehouse:
        schema, _ = bound_schema(ws, warehouse)
        found = schema.model(model, where="corral schema suggest")
        values = suggest_values(found, column, warehouse, prefix=prefix, limit=limit)
    if as_json:
        rows = [{"value": jsonable(v), "count": n} for v, n in values]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    title = f"{model}.{column}" + (f" starting with {prefix!r}" if prefix else "")
    out().print(output.suggestions_table(title, values))
