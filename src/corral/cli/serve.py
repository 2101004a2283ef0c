"""`corral serve`: the studio's API and web app over HTTP, with uvicorn.

    $ CORRAL_ADMIN_EMAIL=ada@example.com CORRAL_ADMIN_PASSWORD=... corral serve -w corral-demo

On a store without that user, the admin is created first (the only way in on a new
store); afterwards the variables may stay set, they change nothing. `corral demo --serve`
comes here too, with a demo admin whose password is made once and kept in the demo folder.

The server also runs a sync worker (`corral worker`) in its own process, on the studio's
warehouse connection, so scheduled syncs run while the studio is up: an embedded DuckDB
warehouse can be opened by one process only. `--no-worker` leaves runs to separate
`corral worker` processes (with a warehouse they can share, such as PostgreSQL).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from corral.cli.common import WorkspaceOption, err, handles_errors, out, workspace_dir

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port.")]
WorkerOption = Annotated[
    bool,
    typer.Option(
        "--worker/--no-worker",
        help="Run scheduled and queued syncs in this process (on by default).",
    ),
]
DEMO_ADMIN_EMAIL = "admin@example.com"
# Inside the workspace's private folder, beside the secrets key; readable by its owner only.
DEMO_LOGIN_FILE = Path(".corral") / "demo-login.json"


@handles_errors
def serve(
    workspace: WorkspaceOption = None, host: HostOption = "127.0.0.1", port: PortOption = 8000
) -> None:
    """Serve the studio: the JSON API under /api/v1 and the web app at /."""
    folder = workspace_dir(workspace)
    email = os.environ.get("CORRAL_ADMIN_EMAIL")
    password = os.environ.get("CORRAL_ADMIN_PASSWORD")
    serve_studio(folder, host, port, admin=Login(email, password) if email and password else None)


@dataclass(frozen=True)
class Login:
    email: str
    password: str


def serve_studio(
    folder: Path, host: str, port: int, *, admin: Login | None = None, worker: bool = True
) -> None:
    """Serve the workspace at `folder` until interrupted; create `admin` first if missing."""
    import uvicorn

    from corral.activation.schedules import validate_schedules
    from corral.activation.worker import Worker
    from corral.api import create_app, runs
    from corral.api.studio import Studio
    from corral.governance import bootstrap_admin

    app = create_app(folder)
    studio: Studio = app.state.studio
    if admin is not None and bootstrap_admin(studio.store, admin.email, admin.password):
        err().print(f"Created the admin user {admin.email}")
    runner = None
    if worker:
        validate_schedules(studio.workspace().syncs)
        runner = Worker(
            studio.store_url,
            runs.executor(studio),
            syncs=lambda: studio.workspace().syncs,
            worker_id=f"studio@{socket.gethostname()}-{os.getpid()}",
            concurrency=1,
        )
        runner.start()
    err().print(f"Corral studio for {folder} at http://{host}:{port}/ (API docs: /api/v1/docs)")
    if runner is not None:
        err().print(f"Sync worker {runner.worker_id}: scheduled syncs run while the studio is up")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if runner is not None:
            runner.stop()


def demo_login(folder: Path) -> Login:
    """The demo's admin: made with a random password on the first `corral demo --serve`,
    kept (owner-only) in the demo folder so later runs print the same login."""
    path = folder / DEMO_LOGIN_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        return Login(saved["email"], saved["password"])
    login = Login(DEMO_ADMIN_EMAIL, secrets.token_urlsafe(12))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"email": login.email, "password": login.password}, file)
    return login


def serve_demo(folder: Path, host: str, port: int) -> None:
    """`corral demo --serve`: print where to sign in, then serve."""
    login = demo_login(folder)
    console = out()
    console.print()
    console.print(f"[bold]Studio:[/] http://{host}:{port}/  (Ctrl+C stops it)")
    console.print(f"  sign in as [bold]{login.email}[/] with password [bold]{login.password}[/]")
    console.print(
        f"  (kept in {folder / DEMO_LOGIN_FILE}; a password changed in the studio is not "
        "written back there)"
    )
    serve_studio(folder, host, port, admin=login)
