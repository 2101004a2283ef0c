"""`corral audience ...`: list, preview, show the SQL of, and describe audiences."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from corral.audiences.compiler import AudienceCompiler
from corral.audiences.conditions import AudienceDefinition
from corral.audiences.preview import Preview
from corral.audiences.preview import preview as preview_audience
from corral.cli import output
from corral.cli.common import (
    AsOfOption,
    JsonOption,
    WorkspaceOption,
    bound_schema,
    connected,
    err,
    handles_errors,
    open_workspace,
    out,
    resolve_as_of,
    split_names,
)
from corral.errors import CorralError
from corral.sql import canonical_dialect, render
from corral.store import SizeSource
from corral.store.execution import open_store
from corral.store.sizes import AudienceSizes, definition_hash, measured_size
from corral.workspace import Workspace

app = typer.Typer(help="List, preview and compile audiences.", no_args_is_help=True)

AudienceArgument = Annotated[
    str, typer.Argument(help="An audience's name, its file name without .yaml, or a YAML path.")
]


@app.command("list")
@handles_errors
def list_audiences(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """List the workspace's audiences."""
    ws = open_workspace(workspace)
    if as_json:
        rows = [
            {
                "name": a.name,
                "file": str(ws.audience_files.get(a.name, "")),
                "conditions": len(a.conditions),
                "description": a.description,
            }
            for a in ws.audiences.values()
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    out().print(output.audiences_table(ws.audiences, ws.audience_files))


@app.command("preview")
@handles_errors
def preview(
    audience: AudienceArgument,
    workspace: WorkspaceOption = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    breakdown: Annotated[
        list[str] | None,
        typer.Option("--breakdown", "-b", help="A parent column or trait; repeat or use commas."),
    ] = None,
    sample: Annotated[int, typer.Option("--sample", "-n", min=0, help="Show N members.")] = 0,
    columns: Annotated[
        str | None,
        typer.Option("--columns", help="Columns or traits to add to the sample: a,b,c."),
    ] = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Show pii and sensitive values unredacted.")
    ] = False,
) -> None:
    """Size, block sizes, breakdowns and a sample of an audience, computed in the warehouse.

    The size of a workspace audience is kept in its metadata store (the studio lists it),
    unless --as-of asks for another moment."""
    ws = open_workspace(workspace)
    definition = ws.audience(audience)
    moment = resolve_as_of(ws, as_of)
    with connected(ws) as warehouse, err().status(f"Previewing {definition.name}..."):
        schema, schema_ms = bound_schema(ws, warehouse)
        result = preview_audience(
            definition,
            schema,
            warehouse,
            audiences=_with(ws.audiences, definition),
            as_of=moment,
            time_zone=ws.settings.time_zone,
            breakdowns=split_names(breakdown),
            sample=sample,
            sample_columns=split_names([columns] if columns else []),
            reveal=reveal,
        )
    if as_of is None:
        record_sizes(ws, [(definition, result)], SizeSource.CLI)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    report = output.preview_report(result, parent=schema.parent.name, schema_ms=schema_ms)
    out().print(report)


@app.command("sql")
@handles_errors
def sql(
    audience: AudienceArgument,
    workspace: WorkspaceOption = None,
    dialect: Annotated[
        str | None,
        typer.Option("--dialect", "-d", help="Target dialect (default: the warehouse's)."),
    ] = None,
    as_of: AsOfOption = None,
) -> None:
    """Print the SQL that selects the audience's members."""
    ws = open_workspace(workspace)
    definition = ws.audience(audience)
    moment = resolve_as_of(ws, as_of)
    target = canonical_dialect(dialect) if dialect else None
    with connected(ws) as warehouse:
        schema, _ = bound_schema(ws, warehouse)
        compiler = AudienceCompiler(
            schema,
            moment,
            audiences=_with(ws.audiences, definition),
            time_zone=ws.settings.time_zone,
            source_dialect=warehouse.dialect,
        )
        members = compiler.members(definition)
        typer.echo(render(members, target or warehouse.dialect, pretty=True))


@app.command("schema")
def json_schema() -> None:
    """Print the JSON Schema of an audience definition (the condition tree)."""
    typer.echo(json.dumps(AudienceDefinition.model_json_schema(), indent=2))


def record_sizes(
    ws: Workspace, measured: Iterable[tuple[AudienceDefinition, Preview]], source: SizeSource
) -> int:
    """Keep the sizes of workspace audiences in the metadata store, where the studio's list
    of audiences reads them. A definition read from a file outside the workspace, or one
    that differs from the workspace's audience of that name, is not kept. Returns how many
    were kept; a store that cannot be opened or written only warns."""
    kept = []
    for definition, result in measured:
        if definition.name not in ws.audiences:
            continue
        measured_on = definition_hash(definition, ws.audiences)
        if measured_on == definition_hash(ws.audiences[definition.name], ws.audiences):
            kept.append(measured_size(definition.name, result, measured_on, source))
    if not kept:
        return 0
    try:
        store = open_store(ws)
        try:
            sizes = AudienceSizes(store)
            for size in kept:
                sizes.record(size)
        finally:
            store.close()
    except (CorralError, SQLAlchemyError, OSError) as error:
        message = f"Sizes not kept in the metadata store: {error}"
        err().print(message, style="yellow", markup=False)
        return 0
    return len(kept)


def _with(
    audiences: Mapping[str, AudienceDefinition], definition: AudienceDefinition
) -> dict[str, AudienceDefinition]:
    """The workspace's audiences plus one read from a file outside it, for references."""
    known = dict(audiences)
    known.setdefault(definition.name, definition)
    return known
