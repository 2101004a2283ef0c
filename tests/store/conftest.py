from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.databases import fresh_postgres_database


@pytest.fixture(scope="session")
def postgres_store_url(postgres_url: str) -> Iterator[str]:
    """One empty PostgreSQL database for the session's store tests; dropped at the end."""
    with fresh_postgres_database(postgres_url) as url:
        yield url
