"""The store conformance suite on SQLite and PostgreSQL, and the migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import corral.store
from corral.errors import ConfigurationError
from corral.store import Store, default_store_url, normalize_url
from corral.store.sizes import AudienceSizes
from corral.store.versions import AudienceVersions
from tests.store.conformance import StoreConformance, measured
from tests.store.databases import fresh_postgres_database

TABLES = {"sync_runs", "sync_run_logs", "sync_schedule_state", "workers", "audience_sizes"}


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = Store(default_store_url(tmp_path))
        store.upgrade()
        yield store
        store.close()


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, postgres_store_url: str) -> Iterator[Store]:
        store = Store(postgres_store_url)
        store.upgrade()
        with store.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "TRUNCATE sync_run_logs, sync_runs, sync_schedule_state, workers, "
                    "audience_sizes"
                )
            )
        yield store
        store.close()


def head_revision() -> str:
    """The newest migration in the package: upgrade() must reach it."""
    versions = Path(corral.store.__file__).parent / "migrations" / "versions"
    return max(p.name.split("_", 1)[0] for p in versions.glob("[0-9]*_*.py"))


def check_migrations(store: Store) -> None:
    assert store.revision() is None
    store.upgrade()
    assert store.revision() == head_revision()
    assert set(sa.inspect(store.engine).get_table_names()) >= TABLES

    store.downgrade()
    assert store.revision() is None
    assert not TABLES & set(sa.inspect(store.engine).get_table_names())

    store.upgrade()
    store.upgrade()  # a second upgrade is a no-op
    assert store.revision() == head_revision()
    assert store.run(store.enqueue_run("a")) is not None


def check_sizes_migration(store: Store) -> None:
    """0004 adds the sizes table to a store at 0003 and keeps what it held."""
    store.upgrade("0003")
    assert "audience_sizes" not in sa.inspect(store.engine).get_table_names()
    versions = AudienceVersions(store)
    versions.append("VIPs", "name: VIPs\n", author=None, action="create")
    run_id = store.enqueue_run("VIPs to CSV")

    store.upgrade()
    assert store.revision() == head_revision()
    assert [v.version for v in versions.list("VIPs")] == [1]
    assert store.run(run_id) is not None
    sizes = AudienceSizes(store)
    sizes.record(measured("VIPs", "v1", 10, 0))
    assert sizes.latest()["VIPs"].size == 10

    store.downgrade("0003")
    assert "audience_sizes" not in sa.inspect(store.engine).get_table_names()
    assert [v.version for v in versions.list("VIPs")] == [1]


def test_sqlite_migrations(tmp_path: Path) -> None:
    store = Store(default_store_url(tmp_path / "workspace"))
    assert (tmp_path / "workspace" / ".corral").is_dir()
    check_migrations(store)
    store.close()


def test_postgres_migrations(postgres_url: str) -> None:
    with fresh_postgres_database(postgres_url) as url:
        store = Store(url)
        check_migrations(store)
        store.close()


def test_sqlite_upgrade_from_0003(tmp_path: Path) -> None:
    store = Store(default_store_url(tmp_path))
    check_sizes_migration(store)
    store.close()


def test_postgres_upgrade_from_0003(postgres_url: str) -> None:
    with fresh_postgres_database(postgres_url) as url:
        store = Store(url)
        check_sizes_migration(store)
        store.close()


def test_urls() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert default_store_url(Path("/w")) == "sqlite:////w/.corral/metadata.db"
    with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL"):
        Store("mysql://u@h/db")
    with pytest.raises(ConfigurationError, match="does not parse"):
        Store("not a url")
