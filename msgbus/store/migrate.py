"""Create or migrate the store's tables with Alembic, programmatically.

The migration scripts ship inside the package (``msgbus/store/migrations``); no
alembic.ini is needed. ``upgrade`` runs them on a live database, ``upgrade_sql``
prints the SQL instead (for sites where a DBA applies DDL, e.g. Oracle). Alembic is
imported only to migrate: checking the revision at every consumer's start is two queries,
where importing Alembic and reading its scripts cost ~0.2 s of the start-up.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "VERSION_TABLE",
    "current_revision",
    "head_revision",
    "upgrade",
    "upgrade_sql",
]

VERSION_TABLE = "msgbus_alembic_version"
"""Not Alembic's default name, so the store can share a database with another Alembic app."""

HEAD_REVISION = "0004"
"""The newest migration in ``migrations/versions``, what this msgbus needs (a unit test
holds it to Alembic's own head)."""


def _config(output: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    config = Config(output_buffer=output)
    config.set_main_option("script_location", "msgbus.store:migrations")
    return config


def head_revision() -> str:
    """The head of the migration scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at; None when it was never initialised."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    table = sa.table(VERSION_TABLE, sa.column("version_num"))
    return connection.execute(sa.select(table.c.version_num)).scalar_one_or_none()


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Migrate the database on ``connection`` to ``revision`` (commits on success)."""
    from alembic import command

    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade_sql(dialect_name: str, revision: str = "head") -> str:
    """The SQL that migrates an empty database of ``dialect_name`` to ``revision``."""
    from alembic import command

    out = io.StringIO()
    config = _config(out)
    config.attributes["dialect_name"] = dialect_name
    command.upgrade(config, revision, sql=True)
    return out.getvalue()
