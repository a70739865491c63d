"""Create or migrate the store's tables with Alembic, programmatically.

The migration scripts ship inside the package (``msgbus/store/migrations``); no
alembic.ini is needed. ``upgrade`` runs them on a live database, ``upgrade_sql``
prints the SQL instead (for sites where a DBA applies DDL, e.g. Oracle).
"""

from __future__ import annotations

import io

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "upgrade", "upgrade_sql"]

VERSION_TABLE = "msgbus_alembic_version"
"""Not Alembic's default name, so the store can share a database with another Alembic app."""


def _config(output: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output)
    config.set_main_option("script_location", "msgbus.store:migrations")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at; None when it was never initialised."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Migrate the database on ``connection`` to ``revision`` (commits on success)."""
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade_sql(dialect_name: str, revision: str = "head") -> str:
    """The SQL that migrates an empty database of ``dialect_name`` to ``revision``."""
    out = io.StringIO()
    config = _config(out)
    config.attributes["dialect_name"] = dialect_name
    command.upgrade(config, revision, sql=True)
    return out.getvalue()
