"""A real `corral serve` on a small demo warehouse, and Debian's Chromium driven by Playwright.

One server for the whole session: `make studio` first when the web app is not built, a
demo workspace of a few thousand users, an admin made with `bootstrap_admin`, then
`corral serve` as a subprocess (what users run) on a free port, stopped at the end.
Playwright drives /usr/bin/chromium headless; it never downloads a browser. Without
Chromium the tests skip locally and fail in CI (`require_or_skip`).

`cli_workspace` is a copy of the workspace taken before the server opened the warehouse:
an embedded DuckDB file can be opened by one process only, so the CLI checks the sizes the
studio shows against this twin.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from corral.api.spa import STATIC
from corral.governance import bootstrap_admin
from corral.store import Store
from corral.workspace import load_workspace
from tests.conftest import require_or_skip
from tests.helpers.demo import build_demo_workspace

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
USERS = 3_000
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long and correct passphrase"
# The machines the tests run on are shared: the server can take half a minute to start.
START_TIMEOUT_SECONDS = 180
UI_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class RunningStudio:
    url: str
    workspace: Path
    cli_workspace: Path
    log: Path

    def cli_preview(self, audience: str) -> dict[str, Any]:
        """`corral audience preview <audience> --json` on the twin workspace, after copying
        the audience's file there from the server's workspace."""
        source = load_workspace(self.workspace).audience_files[audience]
        shutil.copy2(source, self.cli_workspace / "audiences" / source.name)
        done = subprocess.run(
            [_corral(), "audience", "preview", audience, "--json", "-w", str(self.cli_workspace)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"corral audience preview failed:\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def _corral() -> str:
    """The `corral` script of the environment running the tests (.venv/bin/corral)."""
    beside = Path(sys.executable).with_name("corral")
    found = str(beside) if beside.exists() else shutil.which("corral")
    if found is None:
        pytest.fail("the corral command is not installed: run `make setup`", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _build_studio() -> None:
    """`make studio` when the web app is not built; a clear failure when that fails."""
    if (STATIC / "index.html").is_file():
        return
    try:
        done = subprocess.run(
            ["make", "studio"], cwd=REPO, capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"`make studio` could not build the web app: {error}", pytrace=False)
    if done.returncode != 0 or not (STATIC / "index.html").is_file():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        pytest.fail(f"`make studio` did not build {STATIC / 'index.html'}:\n{tail}", pytrace=False)


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"corral serve exited early:\n{log.read_text()}", pytrace=False)
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"corral serve did not answer within {START_TIMEOUT_SECONDS}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        require_or_skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def studio(
    tmp_path_factory: pytest.TempPathFactory, chromium_path: Path
) -> Iterator[RunningStudio]:
    """`corral serve` on a fresh demo workspace, with an admin; stopped at the end."""
    _build_studio()
    root = tmp_path_factory.mktemp("studio")
    workspace = build_demo_workspace(root / "workspace", users=USERS)
    cli_workspace = root / "cli-workspace"
    shutil.copytree(workspace, cli_workspace)

    store = Store(load_workspace(workspace).metadata_url())
    store.upgrade()
    assert bootstrap_admin(store, ADMIN_EMAIL, ADMIN_PASSWORD, name="Ada Admin")
    store.close()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "serve.log"
    command = [_corral(), "serve", "--workspace", str(workspace), "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_ADMIN_")}
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_healthy(url, process, log)
        yield RunningStudio(url, workspace, cli_workspace, log)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def studio_browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_path), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(studio_browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page, 1440x900, English, UTC; it replaces
    pytest-playwright's `page`, which would launch a browser of its own."""
    context = studio_browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-US", timezone_id="UTC"
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
