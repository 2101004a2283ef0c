"""The store conformance suite on SQLite and PostgreSQL, and the migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import corral.store
from corral.errors import ConfigurationError
from corral.store import Store, default_store_url, normalize_url
from tests.store.conformance import StoreConformance
from tests.store.databases import fresh_postgres_database

TABLES = {"sync_runs", "sync_run_logs", "sync_schedule_state", "workers"}


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
                sa.text("TRUNCATE sync_run_logs, sync_runs, sync_schedule_state, workers")
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


def test_urls() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert default_store_url(Path("/w")) == "sqlite:////w/.corral/metadata.db"
    with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL"):
        Store("mysql://u@h/db")
    with pytest.raises(ConfigurationError, match="does not parse"):
        Store("not a url")
