"""A small demo workspace on disk: the demo warehouse in DuckDB plus the demo YAML files."""

from __future__ import annotations

import shutil
from pathlib import Path

from corral.demo import generate_warehouse
from tests.helpers.demo_schema import DEMO_WORKSPACE

DEMO_USERS = 3_000


def build_demo_workspace(root: Path, users: int = DEMO_USERS, seed: int = 7) -> Path:
    """Generate `users` demo users into root/warehouse.duckdb and copy the workspace YAML."""
    shutil.copytree(DEMO_WORKSPACE, root, dirs_exist_ok=True)
    generate_warehouse(root / "warehouse.duckdb", users, seed=seed)
    return root
