"""Vendor adapters that cannot connect here, tested against a fake driver.

What is checked: the URL becomes the driver's connect arguments, queries reach the driver
rendered in the vendor's dialect, results become Arrow, planner tables are written as
inert literals, errors become WarehouseError, and a missing driver names its extra.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType, SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from corral.errors import ConfigurationError, WarehouseError
from corral.sql import render, sqlglot_dialect
from corral.warehouse import BigQueryWarehouse, TableRef, connect
from tests.warehouse.fake_dbapi import Answer, FakeDriver


@dataclass(frozen=True)
class Vendor:
    url: str
    driver: str
    stubs: tuple[str, ...]
    extra: str
    dialect: str
    connect_kwargs: dict[str, Any] = field(default_factory=dict)


VENDORS = [
    Vendor(
        "snowflake://ada:s%40cret@acme-xy123/SHOP/PUBLIC?warehouse=WH&role=ANALYST",
        "snowflake.connector",
        ("snowflake", "snowflake.connector.constants"),
        "snowflake",
        "snowflake",
        {"account": "acme-xy123", "user": "ada", "password": "s@cret", "database": "SHOP",
         "schema": "PUBLIC", "warehouse": "WH", "role": "ANALYST"},
    ),
    Vendor(
        "redshift://ada:pw@cluster.example.com:5439/shop",
        "redshift_connector",
        (),
        "redshift",
        "redshift",
        {"host": "cluster.example.com", "port": 5439, "database": "shop", "user": "ada",
         "password": "pw"},
    ),
    Vendor(
        "athena://eu-west-1/shop?s3_staging_dir=s3://bucket/results/&work_group=primary",
        "pyathena",
        (),
        "athena",
        "athena",
        {"region_name": "eu-west-1", "schema_name": "shop",
         "s3_staging_dir": "s3://bucket/results/", "work_group": "primary"},
    ),
    Vendor(
        "trino://ada@trino.example.com:8443/hive/shop",
        "trino.dbapi",
        ("trino", "trino.auth"),
        "trino",
        "trino",
        {"host": "trino.example.com", "port": 8443, "user": "ada", "catalog": "hive",
         "schema": "shop"},
    ),
    Vendor(
        "mssql://sa:pw@sql.example.com:1433/shop",
        "pymssql",
        (),
        "mssql",
        "tsql",
        {"server": "sql.example.com", "port": 1433, "database": "shop", "user": "sa",
         "password": "pw"},
    ),
    Vendor(
        "databricks://token:dapi123@adb-1.azuredatabricks.net/sql/1.0/warehouses/abc"
        "?catalog=main&schema=shop",
        "databricks.sql",
        ("databricks",),
        "databricks",
        "spark",
        {"server_hostname": "adb-1.azuredatabricks.net", "http_path": "/sql/1.0/warehouses/abc",
         "access_token": "dapi123", "catalog": "main", "schema": "shop"},
    ),
]  # fmt: skip


@pytest.fixture(params=VENDORS, ids=lambda v: v.extra)
def vendor(request: pytest.FixtureRequest) -> Vendor:
    vendor: Vendor = request.param
    return vendor


@pytest.fixture
def driver(vendor: Vendor, monkeypatch: pytest.MonkeyPatch) -> FakeDriver:
    """The fake driver, installed under the vendor driver's module name."""
    fake = FakeDriver()
    monkeypatch.setitem(sys.modules, vendor.driver, fake.module(vendor.driver))
    for name in vendor.stubs:
        monkeypatch.setitem(sys.modules, name, ModuleType(name))
    sys.modules["trino.auth"].BasicAuthentication = lambda *a: ("basic", *a)  # type: ignore[attr-defined]
    sys.modules["snowflake.connector.constants"].FIELD_ID_TO_NAME = {0: "FIXED", 2: "TEXT"}  # type: ignore[attr-defined]
    return fake


@pytest.fixture(autouse=True)
def _stub_parents(monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver fixture sets attributes on these; give every vendor somewhere to set them.
    for name in ("trino.auth", "snowflake.connector.constants"):
        monkeypatch.setitem(sys.modules, name, ModuleType(name))


def _customers_query() -> exp.Select:
    return (
        exp.select("id", "name")
        .from_(exp.table_("customers", quoted=True))
        .where(exp.column("name").ilike(exp.Literal.string("a%")))
        .limit(5)
    )


def test_the_url_becomes_the_drivers_connect_arguments(vendor: Vendor, driver: FakeDriver) -> None:
    warehouse = connect(vendor.url)
    warehouse.query(_customers_query())

    assert driver.connects == [vendor.connect_kwargs]
    assert warehouse.dialect == vendor.dialect


def test_queries_reach_the_driver_in_the_vendors_dialect(
    vendor: Vendor, driver: FakeDriver
) -> None:
    statement = _customers_query()

    connect(vendor.url).query(statement)

    sent = driver.executed[-1]
    assert sent == render(statement, vendor.dialect)
    assert sqlglot.parse_one(sent, dialect=sqlglot_dialect(vendor.dialect))
    if vendor.dialect == "tsql":
        assert "TOP 5" in sent and "ILIKE" not in sent


def test_results_become_arrow(vendor: Vendor, driver: FakeDriver) -> None:
    result = connect(vendor.url).query(_customers_query())

    assert result.to_pylist() == [{"id": 1, "name": "Ada"}, {"id": 2, "name": None}]
    assert result.schema.field("id").type == pa.int64()
    assert result.schema.field("name").type == pa.string()


def test_stream_respects_batch_size(vendor: Vendor, driver: FakeDriver) -> None:
    rows = [(i, f"n{i}") for i in range(25)]
    driver.answer = lambda sql: Answer([("id", "bigint"), ("name", "varchar")], rows)

    batches = list(connect(vendor.url).stream(_customers_query(), batch_size=10))

    assert all(b.num_rows <= 10 for b in batches)
    assert [i for b in batches for i in b.column("id").to_pylist()] == list(range(25))


def test_create_table_writes_inert_literals(vendor: Vendor, driver: FakeDriver) -> None:
    data = pa.table(
        {
            "name": ["O'Brien", "'; DROP TABLE x; --", None],
            "amount": pa.array([Decimal("1.50"), None, Decimal("-2.00")], pa.decimal128(10, 2)),
            "seen_at": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), None, None],
                pa.timestamp("us", tz="UTC"),
            ),
            "active": [True, None, False],
        }
    )

    connect(vendor.url).create_table(TableRef("planner", schema="corral"), data)

    inserts = [s for s in driver.executed if s.upper().startswith("INSERT")]
    assert any(s.upper().startswith("CREATE TABLE") for s in driver.executed)
    assert len(inserts) == 1
    parsed = sqlglot.parse_one(inserts[0], dialect=sqlglot_dialect(vendor.dialect))
    strings = {lit.this for lit in parsed.find_all(exp.Literal) if lit.is_string}
    assert {"O'Brien", "'; DROP TABLE x; --"} <= strings
    assert driver.commits >= 1


def test_a_missing_table_raises_a_warehouse_error(vendor: Vendor, driver: FakeDriver) -> None:
    warehouse = connect(vendor.url)

    with pytest.raises(WarehouseError, match="no_such_table") as caught:
        warehouse.query(exp.select("*").from_("no_such_table"))

    assert caught.value.hint and "table" in caught.value.hint
    # The failed statement did not cost the pool its connection.
    warehouse.query(_customers_query())
    assert len(driver.connects) == 1


def test_the_pool_reuses_connections_and_caps_them(vendor: Vendor, driver: FakeDriver) -> None:
    warehouse = connect(vendor.url)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: warehouse.query(_customers_query()), range(64)))

    assert driver.most_open <= 8
    warehouse.close()
    assert driver.open_connections == 0


@pytest.mark.parametrize(
    "vendor", [v for v in VENDORS if v.extra != "databricks"], indirect=True, ids=lambda v: v.extra
)
def test_columns_come_from_information_schema(vendor: Vendor, driver: FakeDriver) -> None:
    def answer(sql: str) -> Answer:
        if "information_schema" in sql.lower():
            rows = [("id", "NUMBER(38,0)", "NO"), ("name", "VARCHAR", "YES")]
            if "numeric_scale" in sql.lower():  # Snowflake asks for the scale of NUMBER
                rows = [("id", "NUMBER", "NO", 38, 0), ("name", "TEXT", "YES", None, None)]
            labels = ("COLUMN_NAME", "DATA_TYPE", "IS_NULLABLE", "P", "S")[: len(rows[0])]
            return Answer([(label,) for label in labels], rows)
        return Answer([("id", "bigint"), ("name", "string")], [])

    driver.answer = answer

    columns = connect(vendor.url).columns(TableRef("customers"))

    assert [(c.name, c.type, c.nullable) for c in columns] == [
        ("id", "integer", False),
        ("name", "string", True),
    ]
    assert "'customers'" in driver.executed[-1]


def test_databricks_lists_columns_from_a_limit_zero_query(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDriver()
    monkeypatch.setitem(sys.modules, "databricks", ModuleType("databricks"))
    monkeypatch.setitem(sys.modules, "databricks.sql", fake.module("databricks.sql"))

    columns = connect(VENDORS[-1].url).columns(TableRef("customers", schema="shop"))

    assert [c.name for c in columns] == ["id", "name"]
    assert fake.executed[-1].endswith("LIMIT 0")


def test_a_missing_driver_names_the_extra_to_install(
    vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, vendor.driver, None)

    with pytest.raises(ConfigurationError) as caught:
        connect(vendor.url)

    assert f"pip install 'corral[{vendor.extra}]'" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "missing"),
    [
        ("snowflake://acme-xy123/SHOP", "user"),
        ("redshift://ada@cluster.example.com", "database"),
        ("trino://ada@trino.example.com", "catalog"),
        ("mssql://sa@sql.example.com", "database"),
        ("databricks://adb-1.azuredatabricks.net/sql/1.0/warehouses/abc", "access token"),
        ("databricks://token:dapi@adb-1.azuredatabricks.net", "HTTP path"),
        ("bigquery://", "project"),
    ],
)
def test_an_incomplete_url_says_what_is_missing(url: str, missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        connect(url)


def test_passwords_are_redacted_from_url_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connect("nosuchdb://ada:hunter2@host/db")

    assert "hunter2" not in str(caught.value)
    assert "snowflake://" in str(caught.value)


# BigQuery goes through its client library, not DB-API: a fake client stands in for it.


class _Field(SimpleNamespace):
    pass


class _Job:
    def __init__(self, client: _FakeBigQueryClient, sql: str, config: Any) -> None:
        self.client, self.sql, self.config = client, sql, config
        self.schema = [
            _Field(name="id", field_type="INT64", mode="REQUIRED"),
            _Field(name="amount", field_type="NUMERIC", mode="NULLABLE", precision=10, scale=2),
        ]

    def to_arrow(self) -> pa.Table:
        return pa.table({"id": list(range(25))})

    def result(self, page_size: int | None = None) -> Any:
        table = self.to_arrow()
        return SimpleNamespace(to_arrow_iterable=lambda: iter(table.to_batches(max_chunksize=12)))


class _FakeBigQueryClient:
    def __init__(self) -> None:
        self.jobs: list[_Job] = []
        self.calls: list[tuple[str, Any]] = []

    def query(self, sql: str, job_config: Any = None, location: Any = None) -> _Job:
        if "no_such_table" in sql:
            raise _NotFound("Not found: Table p:shop.no_such_table")
        job = _Job(self, sql, job_config)
        self.jobs.append(job)
        return job

    def get_table(self, table_id: str) -> Any:
        self.calls.append(("get_table", table_id))
        return SimpleNamespace(schema=_Job(self, "", None).schema)

    def load_table_from_file(self, buffer: Any, table_id: str, job_config: Any) -> Any:
        self.calls.append(("load", (table_id, job_config.write_disposition)))
        return SimpleNamespace(result=lambda: None)

    def delete_table(self, table_id: str, not_found_ok: bool) -> None:
        self.calls.append(("delete", (table_id, not_found_ok)))

    def create_dataset(self, dataset: Any, exists_ok: bool) -> None:
        self.calls.append(("create_dataset", dataset.dataset_id))

    def close(self) -> None:
        self.calls.append(("close", None))


class _GoogleAPIError(Exception):
    pass


class _NotFound(_GoogleAPIError):
    pass


_NotFound.__name__ = "NotFound"


@pytest.fixture
def bigquery(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeBigQueryClient]:
    module = ModuleType("google.cloud.bigquery")
    module.QueryJobConfig = lambda **kw: SimpleNamespace(default_dataset=None, **kw)  # type: ignore[attr-defined]
    module.LoadJobConfig = lambda **kw: SimpleNamespace(**kw)  # type: ignore[attr-defined]
    module.SourceFormat = SimpleNamespace(PARQUET="PARQUET")  # type: ignore[attr-defined]
    module.Dataset = lambda dataset_id: SimpleNamespace(dataset_id=dataset_id)  # type: ignore[attr-defined]
    exceptions = ModuleType("google.api_core.exceptions")
    exceptions.GoogleAPIError = _GoogleAPIError  # type: ignore[attr-defined]
    for name, stub in (
        ("google", ModuleType("google")),
        ("google.cloud", ModuleType("google.cloud")),
        ("google.cloud.bigquery", module),
        ("google.api_core", ModuleType("google.api_core")),
        ("google.api_core.exceptions", exceptions),
    ):
        monkeypatch.setitem(sys.modules, name, stub)
    yield _FakeBigQueryClient()


def test_bigquery_queries_run_as_jobs_in_the_default_dataset(
    bigquery: _FakeBigQueryClient,
) -> None:
    warehouse = BigQueryWarehouse("my-project", "shop", client=bigquery)

    result = warehouse.query(_customers_query())

    assert result.num_rows == 25
    job = bigquery.jobs[-1]
    assert job.sql == render(_customers_query(), "bigquery")
    assert job.config.default_dataset == "my-project.shop"


def test_bigquery_stream_columns_and_tables(bigquery: _FakeBigQueryClient) -> None:
    warehouse = BigQueryWarehouse("my-project", "shop", client=bigquery)

    batches = list(warehouse.stream(_customers_query(), batch_size=10))
    columns = warehouse.columns(TableRef("customers"))
    warehouse.create_table(TableRef("planner", schema="corral"), pa.table({"id": [1]}))
    warehouse.drop_table(TableRef("planner", schema="corral"))
    warehouse.ensure_schema("corral")

    assert all(b.num_rows <= 10 for b in batches) and sum(b.num_rows for b in batches) == 25
    assert [(c.name, c.type, c.native_type, c.nullable) for c in columns] == [
        ("id", "integer", "INT64", False),
        ("amount", "decimal", "NUMERIC(10,2)", True),
    ]
    assert ("load", ("my-project.corral.planner", "WRITE_EMPTY")) in bigquery.calls
    assert ("delete", ("my-project.corral.planner", True)) in bigquery.calls
    assert ("create_dataset", "my-project.corral") in bigquery.calls


def test_bigquery_query_columns_is_a_dry_run(bigquery: _FakeBigQueryClient) -> None:
    warehouse = BigQueryWarehouse("my-project", "shop", client=bigquery)

    columns = warehouse.query_columns(_customers_query())

    assert [c.name for c in columns] == ["id", "amount"]
    assert bigquery.jobs[-1].config.dry_run is True


def test_bigquery_errors_become_warehouse_errors(bigquery: _FakeBigQueryClient) -> None:
    warehouse = BigQueryWarehouse("my-project", "shop", client=bigquery)

    with pytest.raises(WarehouseError, match="no_such_table") as caught:
        warehouse.query(exp.select("*").from_("no_such_table"))

    assert caught.value.hint and "table" in caught.value.hint


def test_bigquery_needs_a_dataset_for_unqualified_tables(bigquery: _FakeBigQueryClient) -> None:
    warehouse = BigQueryWarehouse("my-project", client=bigquery)

    with pytest.raises(ConfigurationError, match="no dataset"):
        warehouse.columns(TableRef("customers"))


def test_bigquery_without_its_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)

    with pytest.raises(ConfigurationError, match=r"corral\[bigquery\]"):
        connect("bigquery://my-project/shop")
