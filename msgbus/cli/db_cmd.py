"""``msgbus db init``: create or migrate the store's tables."""

from __future__ import annotations

from pathlib import Path

import click

from msgbus.cli.options import config_option

__all__ = ["db"]

_DIALECTS = ("postgresql", "mysql", "oracle", "sqlite")


@click.group()
def db() -> None:
    """The relational store the consumer writes to."""


@db.command("init")
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="SQLAlchemy URL (default: store_url, sqlite:///msgbus.db).",
)
@config_option
@click.option(
    "--sql",
    "dialect",
    type=click.Choice(_DIALECTS),
    default=None,
    help="Print the SQL for this database instead of running it (for a DBA).",
)
def init(store_url: str | None, config_file: Path | None, dialect: str | None) -> None:
    """Create the tables, or migrate them to this msgbus version; safe to repeat."""
    # Imported here: `msgbus db --help` does not load SQLAlchemy and Alembic.
    from msgbus.config import load_config
    from msgbus.store.database import Store
    from msgbus.store.migrate import upgrade_sql

    if dialect is not None:
        click.echo(upgrade_sql(dialect), nl=False)
        return
    config = load_config(config_file, {"store_url": store_url})
    store = Store(config.store_url)
    try:
        revision = store.init()
    finally:
        store.close()
    click.echo(f"store {store.display_url} is at revision {revision}")
