"""Governance fixtures: a migrated store on SQLite and on PostgreSQL, a clock that tests
move by hand, and argon2 parameters cheap enough for hundreds of sign-ins.

Tests that take `store` (or anything built on it) run once per database. The PostgreSQL
database is created once per session and emptied before each test; when the server is
not reachable the PostgreSQL cases skip locally and fail in CI (`require_or_skip`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from corral.governance import Governance, Passwords, SecretBox
from corral.governance.models import (
    ApiTokenRow,
    AuditRow,
    LoginFailureRow,
    RoleGrantRow,
    RoleRow,
    SecretRow,
    SessionRow,
    UserRoleRow,
    UserRow,
)
from corral.store import Store, default_store_url
from tests.store.databases import fresh_postgres_database

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

# Children before parents.
GOVERNANCE_ROWS = (
    LoginFailureRow,
    AuditRow,
    SecretRow,
    ApiTokenRow,
    SessionRow,
    UserRoleRow,
    RoleGrantRow,
    UserRow,
)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def fast_passwords() -> Passwords:
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def postgres_governance_url(postgres_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_url) as url:
        store = Store(url)
        store.upgrade()
        store.close()
        yield url


def empty(store: Store) -> None:
    with store.engine.begin() as connection:
        for table in GOVERNANCE_ROWS:
            connection.execute(sa.delete(table))
        connection.execute(sa.delete(RoleRow).where(RoleRow.builtin.is_(False)))


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store = Store(default_store_url(tmp_path / "workspace"))
        store.upgrade()
    else:
        store = Store(request.getfixturevalue("postgres_governance_url"))
        empty(store)
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secret_key() -> str:
    return SecretBox.generate_key()


@pytest.fixture
def governance(store: Store, clock: Clock, secret_key: str) -> Governance:
    return Governance(store, passwords=fast_passwords(), secret_key=secret_key, clock=clock)
