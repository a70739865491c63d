"""Alembic environment: run by :mod:`msgbus.store.migrate`, never by the alembic CLI.

Online, the caller passes its connection in ``config.attributes["connection"]``;
offline (SQL output for a DBA), ``config.attributes["dialect_name"]``.
"""

from __future__ import annotations

from alembic import context

from msgbus.store.migrate import VERSION_TABLE
from msgbus.store.tables import metadata

config = context.config

if context.is_offline_mode():
    context.configure(
        dialect_name=config.attributes["dialect_name"],
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
else:
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=metadata,
        version_table=VERSION_TABLE,
    )

with context.begin_transaction():
    context.run_migrations()
