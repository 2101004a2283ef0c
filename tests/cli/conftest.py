from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.demo import build_demo_workspace


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace folder with a 3,000-user warehouse, built once per session."""
    return build_demo_workspace(tmp_path_factory.mktemp("demo-workspace"))
