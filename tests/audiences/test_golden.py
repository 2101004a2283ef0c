"""Golden SQL: every demo audience rendered for every dialect, kept under tests/golden/.

Run with UPDATE_GOLDEN=1 to rewrite the files after an intended change, then read the
diff. Every golden file must re-parse in its own dialect; the executed dialects also run
on real engines in test_engines.py and the differential tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

from corral.audiences.compiler import AudienceCompiler
from corral.sql import ALL_DIALECTS, render, sqlglot_dialect
from tests.helpers.demo_schema import AS_OF, demo_schema, demo_workspace

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
WORKSPACE = demo_workspace()
CASES = [
    (dialect, path.stem, name)
    for dialect in ALL_DIALECTS
    for name, path in sorted(WORKSPACE.audience_files.items())
]


def compiled(name: str, dialect: str) -> str:
    compiler = AudienceCompiler(demo_schema(), AS_OF, WORKSPACE.audiences)
    return render(compiler.members(WORKSPACE.audiences[name]), dialect, pretty=True) + "\n"


@pytest.mark.parametrize(("dialect", "stem", "name"), CASES)
def test_golden_sql(dialect: str, stem: str, name: str) -> None:
    path = GOLDEN / dialect / f"{stem}.sql"
    sql = compiled(name, dialect)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    assert path.is_file(), f"missing {path}; run with UPDATE_GOLDEN=1 to create it"
    assert sql == path.read_text(), f"{path} differs; UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize(("dialect", "stem", "name"), CASES)
def test_golden_sql_reparses(dialect: str, stem: str, name: str) -> None:
    sql = (GOLDEN / dialect / f"{stem}.sql").read_text()
    tree = sqlglot.parse_one(sql, dialect=sqlglot_dialect(dialect))
    assert isinstance(tree, sqlglot.exp.Select)
    # Every table and the parent key survive the round trip.
    assert tree.find(sqlglot.exp.Table) is not None
    assert [c.name for c in tree.selects] == ["user_id"]


def test_every_dialect_has_every_audience() -> None:
    for dialect in ALL_DIALECTS:
        files = {p.stem for p in (GOLDEN / dialect).glob("*.sql")}
        assert files == {p.stem for p in WORKSPACE.audience_files.values()}, dialect
