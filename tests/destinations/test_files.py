"""The file destination: formats read back, part files, idempotence, threads, S3 (moto)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from corral.destinations import Batch, Destination, Mode, Operation, Outcome, Record, create
from corral.destinations.files import FileConfig, FileDestination
from corral.errors import ConfigurationError, DefinitionError, DestinationError

FIELDS = ["email", "name", "note", "orders", "score", "vip", "joined", "birthday"]

RECORDS = [
    Record(
        "u1",
        {
            "email": "ana@example.com",
            "name": "Ana Müller",
            "note": 'says "hi", then\nleaves',
            "orders": 3,
            "score": 1.5,
            "vip": True,
            "joined": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "birthday": date(1990, 5, 17),
        },
    ),
    Record(
        "u2",
        {
            "email": None,
            "name": "Zoë 🐄 Ōsaka",
            "note": "",
            "orders": None,
            "score": None,
            "vip": False,
            "joined": None,
            "birthday": None,
        },
    ),
    Record(
        "u,3",
        {
            "email": "comma@example.com",
            "name": "O'Neil, Jr.",
            "note": "tab\there; semi;colon",
            "orders": 0,
            "score": -2.25,
            "vip": None,
            "joined": datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            "birthday": date(2000, 2, 29),
        },
    ),
]


def folder_destination(root: Path, format: str = "csv") -> FileDestination:
    return FileDestination(FileConfig(path=str(root), format=format))  # type: ignore[arg-type]


def deliver(destination: FileDestination, *batches: Batch, mode: Mode = Mode.MIRROR) -> None:
    destination.begin_run("run-1", "VIPs to CRM")
    destination.open(mode, FIELDS)
    for batch in batches:
        results = destination.send(batch)
        assert isinstance(results, list)
        assert [r.key for r in results] == [r.key for r in batch.records]
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
    destination.close()


def run_folder(root: Path) -> Path:
    return root / "vips-to-crm" / "run-1"


def parts(folder: Path, prefix: str) -> list[Path]:
    return sorted(folder.glob(f"{prefix}-*"))


def test_is_a_destination_built_from_the_registry(tmp_path: Path) -> None:
    destination = create("file", {"path": str(tmp_path), "format": "jsonl"})
    assert isinstance(destination, FileDestination)
    assert isinstance(destination, Destination)
    assert FileDestination.catalog.name == "file"
    assert Mode.MEMBERSHIP in FileDestination.catalog.modes
    assert Mode.UPDATE not in FileDestination.catalog.modes


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"path": "out", "url": "s3://bucket/x"},
        {"url": "https://bucket/x"},
        {"url": "s3:///prefix"},
        {"path": "out", "format": "xlsx"},
        {"url": "s3://bucket", "access_key_id": "AKIA"},
    ],
)
def test_bad_settings_are_named(config: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError, match="file destination's settings are wrong"):
        create("file", config)


def test_secret_is_write_only_in_the_schema() -> None:
    schema = FileDestination.catalog.config_schema()
    secret = schema["properties"]["secret_access_key"]["anyOf"][0]
    assert secret["writeOnly"] is True


def test_csv_round_trip(tmp_path: Path) -> None:
    deliver(
        folder_destination(tmp_path, "csv"),
        Batch(Operation.ADD, RECORDS[:2]),
        Batch(Operation.CHANGE, RECORDS[2:]),
        Batch(Operation.REMOVE, RECORDS[1:2]),
    )
    folder = run_folder(tmp_path)

    [added] = parts(folder, "added")
    assert added.suffix == ".csv"
    with added.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["_key", *FIELDS]
    assert rows[1] == [
        "u1",
        "ana@example.com",
        "Ana Müller",
        'says "hi", then\nleaves',
        "3",
        "1.5",
        "true",
        "2026-01-02T03:04:05+00:00",
        "1990-05-17",
    ]
    assert rows[2] == ["u2", "", "Zoë 🐄 Ōsaka", "", "", "", "false", "", ""]

    [changed] = parts(folder, "changed")
    with changed.open(newline="", encoding="utf-8") as file:
        [row] = list(csv.DictReader(file))
    assert row["_key"] == "u,3"
    assert row["name"] == "O'Neil, Jr."
    assert row["note"] == "tab\there; semi;colon"
    [removed] = parts(folder, "removed")
    assert removed.read_bytes().startswith(b"_key,email,")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    deliver(folder_destination(tmp_path, "jsonl"), Batch(Operation.ADD, RECORDS))
    [added] = parts(run_folder(tmp_path), "added")
    lines = [json.loads(line) for line in added.read_text(encoding="utf-8").splitlines()]
    assert [list(line) for line in lines] == [["_key", *FIELDS]] * 3
    assert lines[0] == {
        "_key": "u1",
        "email": "ana@example.com",
        "name": "Ana Müller",
        "note": 'says "hi", then\nleaves',
        "orders": 3,
        "score": 1.5,
        "vip": True,
        "joined": "2026-01-02T03:04:05+00:00",
        "birthday": "1990-05-17",
    }
    assert lines[1]["email"] is None
    assert lines[1]["name"] == "Zoë 🐄 Ōsaka"
    assert "Zoë 🐄" in added.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_parquet_round_trip_keeps_types(tmp_path: Path) -> None:
    deliver(folder_destination(tmp_path, "parquet"), Batch(Operation.ADD, RECORDS))
    [added] = parts(run_folder(tmp_path), "added")
    table = pq.read_table(added)

    assert table.column_names == ["_key", *FIELDS]
    assert table.schema.field("orders").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("vip").type == pa.bool_()
    assert table.schema.field("joined").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("birthday").type == pa.date32()
    expected = [{"_key": r.key, **r.fields} for r in RECORDS]
    assert table.to_pylist() == expected


def test_parquet_parts_of_a_run_share_their_types(tmp_path: Path) -> None:
    destination = folder_destination(tmp_path, "parquet")
    destination.begin_run("run-1", "VIPs to CRM")
    destination.open(Mode.UPSERT, ["amount", "mixed", "empty"])
    destination.send(
        Batch(Operation.ADD, [Record("a", {"amount": Decimal("1.50"), "mixed": 1, "empty": None})])
    )
    destination.send(
        Batch(
            Operation.ADD, [Record("b", {"amount": Decimal("2.25"), "mixed": "x", "empty": None})]
        )
    )
    destination.close()

    tables = [pq.read_table(p) for p in parts(run_folder(tmp_path), "added")]
    assert {t.schema.field("amount").type for t in tables} == {pa.decimal128(38, 2)}
    assert {t.schema.field("empty").type for t in tables} == {pa.string()}
    values = sorted((t.column("_key")[0].as_py(), t.column("mixed")[0].as_py()) for t in tables)
    assert values == [("a", 1), ("b", "x")]  # "x" does not fit int64: that part has text


def test_part_names_say_the_operation_and_the_manifest_counts_rows(tmp_path: Path) -> None:
    deliver(
        folder_destination(tmp_path, "csv"),
        Batch(Operation.ADD, RECORDS[:2]),
        Batch(Operation.ADD, RECORDS[2:]),
        Batch(Operation.REMOVE, RECORDS[:1]),
    )
    folder = run_folder(tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "_manifest.json"
    assert [n.split("-")[0] for n in names[1:]] == ["added", "added", "removed"]

    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest["sync"] == "vips-to-crm"
    assert manifest["run"] == "run-1"
    assert manifest["mode"] == "mirror"
    assert manifest["columns"] == ["_key", *FIELDS]
    assert manifest["rows"] == {"add": 3, "change": 0, "remove": 1}
    assert sorted(p["rows"] for p in manifest["parts"]) == [1, 1, 2]
    assert {p["file"] for p in manifest["parts"]} == set(names[1:])


def test_resent_batch_overwrites_its_own_part(tmp_path: Path) -> None:
    batch = Batch(Operation.ADD, RECORDS)
    deliver(folder_destination(tmp_path, "parquet"), batch, batch)
    folder = run_folder(tmp_path)
    [added] = parts(folder, "added")
    assert pq.read_table(added).num_rows == 3
    assert json.loads((folder / "_manifest.json").read_text())["rows"]["add"] == 3

    # A resumed run (a new process, the same run id) lands on the same part again.
    before = added.read_bytes()
    deliver(folder_destination(tmp_path, "parquet"), batch)
    assert parts(folder, "added") == [added]
    assert pq.read_table(added).to_pylist() == pq.read_table(io.BytesIO(before)).to_pylist()


def test_concurrent_batches_from_threads(tmp_path: Path) -> None:
    destination = folder_destination(tmp_path, "jsonl")
    destination.begin_run("run-1", "VIPs to CRM")
    destination.open(Mode.UPSERT, ["n"])
    batches = [
        Batch(Operation.ADD, [Record(f"k{b}-{i}", {"n": i}) for i in range(200)]) for b in range(24)
    ]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(destination.send, batches))
    destination.close()

    assert sum(len(r) for r in results if isinstance(r, list)) == 24 * 200
    folder = run_folder(tmp_path)
    files = parts(folder, "added")
    assert len(files) == 24
    keys = [json.loads(line)["_key"] for f in files for line in f.read_text().splitlines()]
    assert sorted(keys) == sorted(r.key for b in batches for r in b.records)
    assert not list(folder.glob(".*"))  # no temporary files left behind
    assert len(json.loads((folder / "_manifest.json").read_text())["parts"]) == 24


def test_without_begin_run_the_folder_is_a_timestamp(tmp_path: Path) -> None:
    destination = folder_destination(tmp_path, "csv")
    destination.open(Mode.INSERT, ["email"])
    destination.send(Batch(Operation.ADD, [Record("a", {"email": "a@example.com"})]))
    destination.close()
    [run] = (tmp_path / "unnamed-sync").iterdir()
    assert run.name.startswith(str(datetime.now(UTC).year)) and run.name.endswith("Z")
    assert len(parts(run, "added")) == 1


def test_fields_not_listed_in_open_are_appended(tmp_path: Path) -> None:
    destination = folder_destination(tmp_path, "csv")
    destination.begin_run("run-1", "VIPs to CRM")
    destination.open(Mode.UPSERT, ["b", "a"])
    destination.send(Batch(Operation.ADD, [Record("k", {"a": 1, "extra": "x"})]))
    destination.close()
    [added] = parts(run_folder(tmp_path), "added")
    assert added.read_text().splitlines() == ["_key,b,a,extra", "k,,1,x"]


def test_a_field_named_like_the_key_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="_key"):
        folder_destination(tmp_path).open(Mode.UPSERT, ["_key"])


def test_check_a_folder(tmp_path: Path) -> None:
    assert folder_destination(tmp_path / "new" / "folder").check().ok
    assert list((tmp_path / "new" / "folder").iterdir()) == []  # the probe is removed
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = folder_destination(blocker).check()
    assert not result.ok
    assert str(blocker) in result.message


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    destination = FileDestination(FileConfig(url="s3://bucket/prefix"))
    destination.open(Mode.UPSERT, FIELDS)
    with pytest.raises(ConfigurationError, match="boto3") as raised:
        destination.send(Batch(Operation.ADD, RECORDS))
    assert raised.value.hint == "pip install 'corral[s3]'"
    assert "boto3" in destination.check().message


# --- S3, against moto's server over real HTTP --------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """A client with a fresh bucket `exports` (the server's buckets outlive one test)."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in client.list_buckets().get("Buckets", []):
        objects = client.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])
        for item in objects:
            client.delete_object(Bucket=bucket["Name"], Key=item["Key"])
        client.delete_bucket(Bucket=bucket["Name"])
    client.create_bucket(Bucket="exports")
    return client


def s3_destination(endpoint: str, format: str, url: str = "s3://exports/corral/") -> Destination:
    return create(
        "file",
        {
            "url": url,
            "format": format,
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
    )


def s3_keys(client: Any, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket="exports", Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
def test_s3_round_trip(s3_endpoint: str, s3: Any, format: str) -> None:
    destination = s3_destination(s3_endpoint, format)
    assert isinstance(destination, FileDestination)
    deliver(destination, Batch(Operation.ADD, RECORDS), Batch(Operation.REMOVE, RECORDS[:1]))

    prefix = "corral/vips-to-crm/run-1/"
    keys = s3_keys(s3, prefix)
    assert [k.removeprefix(prefix).split("-")[0] for k in keys] == [
        "_manifest.json",
        "added",
        "removed",
    ]
    added = next(k for k in keys if "added-" in k)
    obj = s3.get_object(Bucket="exports", Key=added)
    body = obj["Body"].read()
    if format == "parquet":
        assert pq.read_table(io.BytesIO(body)).to_pylist()[1] == {"_key": "u2", **RECORDS[1].fields}
    elif format == "jsonl":
        assert json.loads(body.decode().splitlines()[2])["name"] == "O'Neil, Jr."
    else:
        assert obj["ContentType"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
        assert rows[1][3] == 'says "hi", then\nleaves'
    manifest = json.loads(s3.get_object(Bucket="exports", Key=keys[0])["Body"].read())
    assert manifest["rows"] == {"add": 3, "change": 0, "remove": 1}


def test_s3_resend_and_threads(s3_endpoint: str, s3: Any) -> None:
    destination = s3_destination(s3_endpoint, "parquet", url="s3://exports")
    assert isinstance(destination, FileDestination)
    destination.begin_run("run-7", "Threads")
    destination.open(Mode.MEMBERSHIP, ["n"])
    batches = [
        Batch(Operation.ADD, [Record(f"{b}-{i}", {"n": i}) for i in range(50)]) for b in range(8)
    ]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(destination.send, batches + batches[:3]))  # three batches sent twice
    destination.close()

    keys = s3_keys(s3, "threads/run-7/")
    assert len(keys) == 8 + 1
    rows = sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket="exports", Key=k)["Body"].read())).num_rows
        for k in keys
        if "added-" in k
    )
    assert rows == 8 * 50


def test_s3_check(s3_endpoint: str, s3: Any) -> None:
    assert s3_destination(s3_endpoint, "csv").check().ok
    assert s3_keys(s3, "corral/") == []  # the probe object is removed
    result = s3_destination(s3_endpoint, "csv", url="s3://no-such-bucket/x").check()
    assert not result.ok
    assert "NoSuchBucket" in result.message
