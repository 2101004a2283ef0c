"""Migration 0002 on both databases: up, down to 0001, up again; and the governance models
match what it creates (autogenerate finds nothing to change)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from corral.governance.models import RoleRow
from corral.store import Store, default_store_url
from corral.store.models import Base
from tests.store.databases import fresh_postgres_database

GOVERNANCE_TABLES = {
    "users",
    "roles",
    "role_grants",
    "user_roles",
    "sessions",
    "api_tokens",
    "secrets",
    "audit_log",
    "login_failures",
}
STORE_TABLES = {"sync_runs", "sync_run_logs", "sync_schedule_state", "workers"}


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def governance_differences(connection: sa.Connection) -> list[Any]:
    """What autogenerate would change in the governance tables to match the models."""
    context = MigrationContext.configure(connection)
    return [
        difference
        for difference in compare_metadata(context, Base.metadata)
        if _table_of(difference) in GOVERNANCE_TABLES
    ]


def _table_of(difference: Any) -> str | None:
    if isinstance(difference, list):  # modify_* changes of one column come as a list
        return _table_of(difference[0])
    for part in difference[1:]:
        if isinstance(part, str) and part in GOVERNANCE_TABLES:
            return part
        name = getattr(getattr(part, "table", part), "name", None)
        if isinstance(name, str):
            return name
    return None


def check(store: Store) -> None:
    # Later revisions build on 0002, so it is checked by id, not as the head.
    store.upgrade("0002")
    assert store.revision() == "0002"
    assert tables(store) >= GOVERNANCE_TABLES | STORE_TABLES
    with store.engine.connect() as connection:
        roles = connection.execute(sa.select(RoleRow.name).order_by(RoleRow.name)).scalars()
        assert list(roles) == ["admin", "editor", "viewer"]

    store.upgrade()
    with store.engine.connect() as connection:
        assert governance_differences(connection) == []

    store.downgrade("0001")
    assert store.revision() == "0001"
    assert not tables(store) & GOVERNANCE_TABLES
    assert tables(store) >= STORE_TABLES

    store.upgrade()
    store.upgrade()
    assert tables(store) >= GOVERNANCE_TABLES


def test_sqlite(tmp_path: Path) -> None:
    store = Store(default_store_url(tmp_path))
    check(store)
    store.close()


def test_postgres(postgres_url: str) -> None:
    with fresh_postgres_database(postgres_url) as url:
        store = Store(url)
        check(store)
        store.close()
