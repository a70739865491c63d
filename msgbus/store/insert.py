"""INSERT that skips rows whose unique key already exists, in each dialect's native form.

PostgreSQL ``ON CONFLICT DO NOTHING``, SQLite ``INSERT OR IGNORE``, MariaDB/MySQL
``INSERT IGNORE``, Oracle ``MERGE ... WHEN NOT MATCHED``. The statements take one
parameter dict per row (executemany).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from msgbus.errors import StoreError

__all__ = ["MergeIgnore", "insert_ignore"]


class MergeIgnore(Executable, ClauseElement):
    """Oracle: ``MERGE INTO t USING (SELECT :a AS a, ... FROM DUAL) s ON (key match)
    WHEN NOT MATCHED THEN INSERT``; Oracle has no INSERT ... ON CONFLICT."""

    inherit_cache = False

    def __init__(self, table: sa.Table, key: Sequence[str]) -> None:
        self.table = table
        self.key = tuple(key)
        # Identity columns are filled by the database.
        self.columns = [c for c in table.columns if c.identity is None]


@compiles(MergeIgnore)
def _compile_merge(element: MergeIgnore, compiler: SQLCompiler, **kw: Any) -> str:
    quote = compiler.preparer.format_column
    table = compiler.preparer.format_table(element.table)
    source = ", ".join(
        f"{compiler.process(sa.bindparam(c.key, type_=c.type), **kw)} AS {quote(c)}"
        for c in element.columns
    )
    match = " AND ".join(
        f"t.{quote(element.table.c[k])} = s.{quote(element.table.c[k])}" for k in element.key
    )
    names = ", ".join(quote(c) for c in element.columns)
    values = ", ".join(f"s.{quote(c)}" for c in element.columns)
    return (
        f"MERGE INTO {table} t USING (SELECT {source} FROM DUAL) s ON ({match}) "
        f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


def insert_ignore(table: sa.Table, key: Sequence[str], dialect_name: str) -> Executable:
    """The insert-or-skip statement for ``table`` whose unique key is ``key``."""
    if dialect_name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing(index_elements=list(key))
    if dialect_name == "sqlite":
        return sa.insert(table).prefix_with("OR IGNORE")
    if dialect_name in ("mysql", "mariadb"):
        return sa.insert(table).prefix_with("IGNORE")
    if dialect_name == "oracle":
        return MergeIgnore(table, key)
    raise StoreError(
        f"the {dialect_name} database is not supported by the store; use PostgreSQL, "
        "MariaDB/MySQL, Oracle or SQLite"
    )
