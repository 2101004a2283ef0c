"""The `corral` command: `corral demo`, `corral audience ...`, `corral schema ...`,
`corral sync ...`.

    $ corral demo --users 10000
    $ corral audience preview vips --breakdown country --sample 5

Every command takes `--workspace DIR`; `--debug` (before the command) shows tracebacks
and DEBUG logs: the SQL Corral runs and how long each step took.
"""

from __future__ import annotations

from typing import Annotated

import typer

from corral.cli import audience, demo, schema, serve, sync
from corral.cli.common import configure_logging

app = typer.Typer(
    name="corral",
    help="Corral: audiences compiled to SQL and previewed in your own warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(audience.app, name="audience")
app.add_typer(schema.app, name="schema")
app.add_typer(sync.app, name="sync")
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and DEBUG logs (SQL, timings).")
    ] = False,
) -> None:
    configure_logging(debug)


if __name__ == "__main__":
    app()
