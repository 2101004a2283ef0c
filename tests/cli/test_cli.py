"""The `corral` command line, run in-process with typer's CliRunner on a small demo."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from corral.cli.main import app
from corral.governance import Governance
from corral.sql import ALL_DIALECTS, parse_one
from corral.store import SizeSource, Store
from corral.store.sizes import AudienceSizes
from corral.workspace import load_workspace
from tests.helpers.demo_schema import demo_workspace as packaged_workspace

USERS = 2_000
AUDIENCES = sorted(packaged_workspace().audiences)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`corral demo` with a tiny warehouse, run once for the module."""
    directory = tmp_path_factory.mktemp("cli") / "demo"
    result = run("demo", "--users", str(USERS), "--dir", str(directory))
    assert result.exit_code == 0, result.output
    return directory


def workspace(directory: Path) -> list[str]:
    return ["--workspace", str(directory)]


# -- demo --------------------------------------------------------------------------------------


def test_demo_builds_a_warehouse_and_workspace_and_previews_every_audience(
    demo_dir: Path,
) -> None:
    assert (demo_dir / "warehouse.duckdb").is_file()
    assert (demo_dir / "corral.yaml").is_file() and (demo_dir / "schema.yaml").is_file()
    assert len(list((demo_dir / "audiences").glob("*.yaml"))) == len(AUDIENCES)
    marker = json.loads((demo_dir / ".corral-demo.json").read_text())
    assert marker["users"] == USERS and marker["tables"]["users"] == USERS


def test_demo_is_reused_when_users_and_seed_match(demo_dir: Path) -> None:
    # The warehouse file changes with every sync run (planner tables); the marker only
    # when the data is generated again.
    marker = demo_dir / ".corral-demo.json"
    before = marker.read_text()
    result = run("demo", "--users", str(USERS), "--dir", str(demo_dir))
    assert result.exit_code == 0, result.output
    assert "Reusing the demo warehouse" in result.stdout
    assert marker.read_text() == before
    for name in packaged_workspace().audiences:
        assert name in result.stdout
    assert "corral audience preview" in result.stdout


def test_demo_runs_every_sync_and_a_second_demo_sends_nothing_new(demo_dir: Path) -> None:
    syncs = packaged_workspace().syncs
    assert len(syncs) >= 3
    exports = demo_dir / "exports"
    assert {p.name for p in exports.iterdir()} >= {"vips-to-csv", "lapsed-high-spenders-to-parquet"}

    result = run("sync", "status", *workspace(demo_dir), "--json")
    assert result.exit_code == 0, result.output
    latest = {r["sync"]: r for r in json.loads(result.stdout)}
    assert set(latest) == set(syncs)
    assert all(r["status"] == "succeeded" for r in latest.values())

    again = run("sync", "run", "VIPs to CSV", *workspace(demo_dir), "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["counts"]["members"] > 0
    assert report["counts"]["added"] == report["counts"]["changed"] == 0


# -- audience ----------------------------------------------------------------------------------


def test_audience_list(demo_dir: Path) -> None:
    result = run("audience", "list", *workspace(demo_dir))
    assert result.exit_code == 0, result.output
    assert "Lapsed high spenders" in result.stdout

    listed = json.loads(run("audience", "list", "--json", *workspace(demo_dir)).stdout)
    assert sorted(a["name"] for a in listed) == AUDIENCES


def test_workspace_comes_from_the_environment(demo_dir: Path) -> None:
    result = run("audience", "list", "--json", env={"CORRAL_WORKSPACE": str(demo_dir)})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == len(AUDIENCES)


def test_audience_preview_json(demo_dir: Path) -> None:
    result = run(
        "audience",
        "preview",
        "lapsed_high_spenders",
        "--json",
        "--breakdown",
        "country",
        "--breakdown",
        "order_count,signup_at",
        "--sample",
        "3",
        "--columns",
        "plan,value_tier",
        *workspace(demo_dir),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["audience"] == "Lapsed high spenders"
    assert isinstance(data["size"], int) and data["parent_rows"] == USERS
    assert data["as_of"] == "2026-12-01T00:00:00"
    assert data["sql"].startswith("SELECT")
    assert [b["size"] for b in data["blocks"]] and len(data["blocks"]) == 3
    assert [b["name"] for b in data["breakdowns"]] == ["country", "order_count", "signup_at"]
    assert data["sample"]["columns"][-2:] == ["plan", "value_tier"]
    assert {t["step"] for t in data["timings"]} >= {"compile", "size and blocks", "sample"}


def test_audience_preview_for_people(demo_dir: Path) -> None:
    result = run(
        "audience",
        "preview",
        "VIPs",
        "-b",
        "country",
        "-n",
        "3",
        "--as-of",
        "2026-11-01",
        *workspace(demo_dir),
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "VIPs:" in text and f"of {USERS:,} users" in text
    assert "as of 2026-11-01" in text
    for heading in ("Each top-level condition", "Members by column country", "Sample", "Timings"):
        assert heading in text
    assert "••••" in text


def test_audience_preview_as_of_changes_relative_windows(demo_dir: Path) -> None:
    sizes = []
    for as_of in ("2026-12-01", "2025-06-01"):
        result = run(
            "audience",
            "preview",
            "new_signups_without_order",
            "--json",
            "--as-of",
            as_of,
            *workspace(demo_dir),
        )
        assert result.exit_code == 0, result.output
        sizes.append(json.loads(result.stdout)["size"])
    assert sizes[0] != sizes[1]


def sizes_of(directory: Path) -> Store:
    store = Store(load_workspace(directory).metadata_url())
    store.upgrade()
    return store


def test_demo_keeps_the_size_of_every_audience(demo_dir: Path) -> None:
    store = sizes_of(demo_dir)
    sizes = AudienceSizes(store)
    try:
        latest = sizes.latest()
        assert sorted(latest) == AUDIENCES
        demo = sizes.history("VIPs")[-1]  # the first: later tests add their own
        assert demo.source == SizeSource.DEMO and demo.parent_rows == USERS
    finally:
        store.close()


def test_audience_preview_keeps_its_size_unless_at_another_moment(
    demo_dir: Path, tmp_path: Path
) -> None:
    store = sizes_of(demo_dir)
    sizes = AudienceSizes(store)
    try:
        before = len(sizes.history("Lapsed high spenders"))
        asked = datetime.now(UTC)
        result = run("audience", "preview", "lapsed_high_spenders", "--json", *workspace(demo_dir))
        assert result.exit_code == 0, result.output
        history = sizes.history("Lapsed high spenders")
        # The demo measured the same size minutes ago: its entry moves rather than repeats.
        assert len(history) == before
        assert history[0].source == SizeSource.CLI and history[0].measured_at >= asked
        assert history[0].size == json.loads(result.stdout)["size"]

        elsewhere = run(
            "audience",
            "preview",
            "lapsed_high_spenders",
            "--as-of",
            "2025-06-01",
            *workspace(demo_dir),
        )
        assert elsewhere.exit_code == 0, elsewhere.output
        outside = tmp_path / "draft.yaml"
        outside.write_text("name: Lapsed high spenders\nconditions: []\n")
        drafted = run("audience", "preview", str(outside), *workspace(demo_dir))
        assert drafted.exit_code == 0, drafted.output
        assert len(sizes.history("Lapsed high spenders")) == before
        assert sizes.history("Lapsed high spenders")[0].measured_at == history[0].measured_at
    finally:
        store.close()


def test_audience_preview_still_answers_when_the_store_is_unreachable(
    demo_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(demo_dir, copy, ignore=shutil.ignore_patterns("exports", ".corral"))
    settings = copy / "corral.yaml"
    unreachable = "metadata: postgresql://nobody@127.0.0.1:1/none\n"
    settings.write_text(settings.read_text() + unreachable)

    result = run("audience", "preview", "vips", "--json", *workspace(copy))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["size"] > 0
    assert "Sizes not kept in the metadata store" in result.stderr


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_audience_sql_renders_and_reparses_in_every_dialect(demo_dir: Path, dialect: str) -> None:
    result = run("audience", "sql", "vips", "--dialect", dialect, *workspace(demo_dir))
    assert result.exit_code == 0, result.output
    parsed = parse_one(result.stdout, dialect)
    assert parsed.find_all  # a tree came back
    assert "users" in result.stdout


def test_audience_sql_defaults_to_the_warehouse_dialect(demo_dir: Path) -> None:
    default = run("audience", "sql", "winback", *workspace(demo_dir))
    duckdb = run("audience", "sql", "winback", "--dialect", "duckdb", *workspace(demo_dir))
    assert default.exit_code == 0, default.output
    assert default.stdout == duckdb.stdout


def test_audience_json_schema() -> None:
    result = run("audience", "schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert "conditions" in schema["properties"]


# -- schema ------------------------------------------------------------------------------------


def test_schema_check_passes_on_the_demo(demo_dir: Path) -> None:
    result = run("schema", "check", *workspace(demo_dir))
    assert result.exit_code == 0, result.output
    # The console wraps long lines (the workspace's path varies in length).
    assert "matches the warehouse" in " ".join(result.stdout.split())
    data = json.loads(run("schema", "check", "--json", *workspace(demo_dir)).stdout)
    assert data == {"ok": True, "problems": []}


def test_schema_check_fails_clearly_on_a_broken_schema(demo_dir: Path, tmp_path: Path) -> None:
    broken = _copy_workspace(demo_dir, tmp_path)
    schema_file = broken / "schema.yaml"
    text = schema_file.read_text()
    schema_file.write_text(text.replace("[first_name, last_name, email]", "[first_name, emial]"))

    result = run("schema", "check", *workspace(broken))
    assert result.exit_code == 2
    assert "emial" in result.stderr and "label_columns" in result.stderr
    data = json.loads(run("schema", "check", "--json", *workspace(broken)).stdout)
    assert data["ok"] is False and "emial" in data["problems"][0]["message"]


def test_schema_check_compiles_every_audience(demo_dir: Path, tmp_path: Path) -> None:
    broken = _copy_workspace(demo_dir, tmp_path)
    vips = broken / "audiences" / "vips.yaml"
    vips.write_text(vips.read_text().replace("trait: order_count", "trait: order_cnt"))

    result = run("schema", "check", *workspace(broken))
    assert result.exit_code == 2
    data = json.loads(run("schema", "check", "--json", *workspace(broken)).stdout)
    where = {p["where"].split(" > ")[0] for p in data["problems"]}
    # VIPs is broken, and so are the two audiences that include it.
    assert where == {"audience VIPs", "audience VIPs without email consent", "audience Win-back"}
    assert all("no trait 'order_cnt'" in p["message"] for p in data["problems"])


def test_schema_suggest(demo_dir: Path) -> None:
    result = run("schema", "suggest", "users", "country", "--prefix", "u", *workspace(demo_dir))
    assert result.exit_code == 0, result.output
    assert "US" in result.stdout
    values = json.loads(
        run("schema", "suggest", "products", "category", "--json", *workspace(demo_dir)).stdout
    )
    assert values and all(v["count"] > 0 for v in values)


def test_schema_suggest_refuses_private_columns(demo_dir: Path) -> None:
    result = run("schema", "suggest", "users", "email", *workspace(demo_dir))
    assert result.exit_code == 2
    assert "'email'" in result.stderr and "pii" in result.stderr
    assert "Traceback" not in result.output


def test_schema_suggest_refuses_hidden_and_unknown_columns(demo_dir: Path) -> None:
    hidden = run("schema", "suggest", "users", "household_id", *workspace(demo_dir))
    assert hidden.exit_code == 2 and "hidden" in hidden.stderr
    unknown = run("schema", "suggest", "users", "colour", *workspace(demo_dir))
    assert unknown.exit_code == 2 and "no column 'colour'" in unknown.stderr
    model = run("schema", "suggest", "customers", "country", *workspace(demo_dir))
    assert model.exit_code == 2 and "no model 'customers'" in model.stderr


# -- errors ------------------------------------------------------------------------------------


def test_unknown_audience_errors_clearly(demo_dir: Path) -> None:
    result = run("audience", "preview", "nope", *workspace(demo_dir))
    assert result.exit_code == 2
    assert "there is no audience 'nope'" in result.stderr
    assert "VIPs" in result.stderr  # the hint lists the audiences there are
    assert "Traceback" not in result.output


def test_an_audience_with_a_wrong_value_type_errors_clearly(demo_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad\nconditions:\n  - property: lifetime_value\n    at_least: lots\n")
    result = run("audience", "preview", str(bad), *workspace(demo_dir))
    assert result.exit_code == 2
    assert "lifetime_value" in result.stderr
    assert "lots" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_workspace_errors_clearly(tmp_path: Path) -> None:
    result = run("audience", "list", *workspace(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "schema.yaml" in result.stderr


def test_a_bad_as_of_is_a_usage_error(demo_dir: Path) -> None:
    result = run("audience", "preview", "vips", "--as-of", "yesterday", *workspace(demo_dir))
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_debug_shows_the_sql_and_the_traceback(demo_dir: Path) -> None:
    result = run("--debug", "audience", "preview", "vips", "--json", *workspace(demo_dir))
    assert result.exit_code == 0, result.output
    assert "SELECT" in result.stderr and "preview size and blocks" in result.stderr

    failed = run("--debug", "audience", "preview", "nope", *workspace(demo_dir))
    assert failed.exit_code == 1
    assert type(failed.exception).__name__ == "UnknownReferenceError"


def _copy_workspace(source: Path, target: Path) -> Path:
    """The YAML of a workspace in a new folder, pointing at the same warehouse file."""
    copy = target / "workspace"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.duckdb*", ".corral-demo*"))
    settings = copy / "corral.yaml"
    warehouse = (source / "warehouse.duckdb").resolve()
    settings.write_text(
        settings.read_text().replace("duckdb:///warehouse.duckdb", f"duckdb:///{warehouse}")
    )
    return copy


# -- syncs ---------------------------------------------------------------------------------------


def test_sync_list_names_every_sync_with_its_destination(demo_dir: Path) -> None:
    result = run("sync", "list", *workspace(demo_dir), "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["VIPs to CSV"] == {
        "name": "VIPs to CSV",
        "source": "audience VIPs",
        "destination": "CSV exports",
        "type": "file",
        "mode": "mirror",
        "schedule": "every 1 day",
    }


def test_sync_dry_run_plans_without_sending(demo_dir: Path) -> None:
    csv_runs = demo_dir / "exports" / "vips-to-csv"
    folders_before = sorted(csv_runs.iterdir())
    result = run(
        "sync", "run", "VIPs to CSV", *workspace(demo_dir), "--dry-run",
        "--as-of", "2027-06-01", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    counts = report["counts"]
    # Six months later some VIPs have lapsed: the plan sees changes, nothing is sent.
    assert counts["planned_added"] + counts["planned_changed"] + counts["planned_removed"] > 0
    assert counts["added"] == counts["changed"] == counts["removed"] == 0
    assert sorted(csv_runs.iterdir()) == folders_before


def test_sync_history_and_log(demo_dir: Path) -> None:
    run("sync", "run", "VIPs to CSV", *workspace(demo_dir))
    result = run("sync", "runs", "vips_to_csv", *workspace(demo_dir), "--json")
    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)
    assert len(history) >= 2 and history[0]["sync"] == "VIPs to CSV"

    log = run("sync", "runs", "VIPs to CSV", *workspace(demo_dir), "--log", history[0]["run_id"])
    assert log.exit_code == 0, log.output
    assert "planned:" in log.stdout


def test_sync_errors_name_the_problem(demo_dir: Path, tmp_path: Path) -> None:
    unknown = run("sync", "run", "No such sync", *workspace(demo_dir))
    assert unknown.exit_code == 2
    assert "there is no sync 'No such sync'" in unknown.output

    broken = tmp_path / "broken"
    shutil.copytree(demo_dir, broken, ignore=shutil.ignore_patterns("warehouse.duckdb"))
    (broken / "syncs" / "vips_to_csv.yaml").write_text(
        "name: VIPs to CSV\naudience: VIPs\ndestination: Nowhere\nmode: mirror\n"
        "mapping: {email: email}\n"
    )
    result = run("sync", "list", *workspace(broken))
    assert result.exit_code == 2
    assert "destination 'Nowhere', which does not exist" in result.output


def test_sync_run_reads_secrets_the_studio_stored(demo_dir: Path, tmp_path: Path) -> None:
    """A destination setting `{secret: NAME}` resolves from the metadata store's encrypted
    secrets when the CLI runs the sync, as it does in the studio."""
    copy = tmp_path / "with-secret"
    shutil.copytree(demo_dir, copy)
    target = tmp_path / "secret-exports"
    store = Store(load_workspace(copy).metadata_url())
    store.upgrade()
    Governance(store, workspace=copy).secrets.put("export_folder", str(target))
    store.close()
    (copy / "destinations" / "hidden.yaml").write_text(
        "name: Hidden exports\ntype: file\nconfig:\n  path: {secret: export_folder}\n"
        "  format: csv\n"
    )
    (copy / "syncs" / "vips_hidden.yaml").write_text(
        "name: VIPs to hidden\naudience: VIPs\ndestination: Hidden exports\nmode: mirror\n"
        "mapping: {email: email}\n"
    )

    result = run("sync", "run", "VIPs to hidden", *workspace(copy), "--json")

    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout)["counts"]["added"]
    written = list(target.glob("*/*/added-*.csv"))
    assert added > 0 and written
