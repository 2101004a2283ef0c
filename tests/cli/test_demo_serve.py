"""`corral demo --serve` (what `make demo` runs): a real server, and the login it prints."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.activation.syncs import IntervalSchedule
from tests.helpers.demo import build_demo_workspace
from tests.helpers.demo_schema import demo_workspace as packaged_workspace

USERS = 2_000
START_TIMEOUT_SECONDS = 240
PASS = "a long and correct passphrase"
LOGIN = re.compile(r"sign in as (\S+@\S+) with password (\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def corral() -> str:
    return str(Path(sys.executable).with_name("corral"))


def start_demo(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [corral(), "demo", "--users", str(USERS), "--dir", str(folder), "--serve"]
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, "--port", str(port)], stdout=output, stderr=subprocess.STDOUT
        )


def wait_for_login(url: str, process: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """Wait until the server answers, then read the login the demo printed."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"corral demo --serve exited:\n{log.read_text()}"
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                found = LOGIN.search(log.read_text())
                assert found, f"no login printed:\n{log.read_text()}"
                return found.group(1), found.group(2)
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the studio did not answer within {START_TIMEOUT_SECONDS}s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path, subprocess.Popen[bytes]]]:
    folder, log, port = tmp_path / "demo", tmp_path / "demo.log", free_port()
    process = start_demo(folder, port, log)
    try:
        yield f"http://127.0.0.1:{port}", folder, log, process
    finally:
        stop(process)


def test_demo_serve_prints_a_login_that_opens_the_studio_with_audiences_syncs_and_runs(
    served: tuple[str, Path, Path, subprocess.Popen[bytes]],
) -> None:
    url, folder, log, process = served
    email, password = wait_for_login(url, process, log)

    with httpx.Client(base_url=url, timeout=60) as browser:
        refused = browser.post("/api/v1/auth/login", json={"email": email, "password": "x" * 12})
        assert refused.status_code == 401
        signed_in = browser.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert signed_in.status_code == 200, signed_in.text

        audiences = browser.get("/api/v1/audiences", params={"limit": 100}).json()["items"]
        assert {a["name"] for a in audiences} == set(packaged_workspace().audiences)
        syncs = browser.get("/api/v1/syncs").json()["items"]
        assert {s["name"] for s in syncs} == set(packaged_workspace().syncs)
        # The demo ran every sync before serving: each shows a successful first run.
        assert all(s["latest_run"]["status"] == "succeeded" for s in syncs)
        assert all(s["latest_run"]["counts"]["added"] > 0 for s in syncs)
        page = browser.get("/")
        assert page.status_code == 200 and "<div id=" in page.text

    # The password is kept owner-only in the demo folder, and printed again next time.
    saved = folder / ".corral" / "demo-login.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert password in saved.read_text()


def test_serve_runs_scheduled_syncs_in_its_own_process(tmp_path: Path) -> None:
    """The embedded DuckDB warehouse is the server's alone, so the server's own worker
    runs due syncs: interval syncs that never ran are due at once."""
    folder = build_demo_workspace(tmp_path / "workspace", users=USERS)
    due = {
        n for n, s in packaged_workspace().syncs.items() if isinstance(s.schedule, IntervalSchedule)
    }
    assert due
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "CORRAL_ADMIN_EMAIL": "ada@example.com", "CORRAL_ADMIN_PASSWORD": PASS}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [corral(), "serve", "-w", str(folder), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        runs: dict[str, Any] = {}
        with httpx.Client(base_url=url, timeout=30) as browser:
            while time.monotonic() < deadline and not due <= set(runs):
                assert process.poll() is None, f"corral serve exited:\n{log.read_text()}"
                time.sleep(1)
                try:
                    browser.post(
                        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASS}
                    )
                    syncs = browser.get("/api/v1/syncs").json()["items"]
                except (httpx.TransportError, KeyError):
                    continue
                runs = {
                    s["name"]: s["latest_run"]
                    for s in syncs
                    if s["latest_run"] and s["latest_run"]["status"] == "succeeded"
                }
    finally:
        stop(process)

    assert due <= set(runs), f"scheduled syncs did not run:\n{log.read_text()}"
    assert {runs[n]["trigger"] for n in due} == {"schedule"}
    assert all(runs[n]["counts"]["added"] > 0 for n in due)
    assert "Sync worker studio@" in log.read_text()
