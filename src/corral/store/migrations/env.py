"""Alembic environment for the metadata store.

`corral.store.Store.upgrade()` runs this with its own connection in
`config.attributes["connection"]`; no alembic.ini is needed. Maintainers can create a
revision with `alembic -c <ini pointing script_location here> revision -m "..."`.
"""

from __future__ import annotations

from alembic import context

import corral.governance.models  # noqa: F401  (registers the governance tables on Base)
from corral.store.models import VERSION_TABLE, Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the store's migrations through corral.store.Store.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
