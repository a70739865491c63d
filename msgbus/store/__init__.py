"""The relational store: one table per message type plus dead_letters, on SQLAlchemy Core.

``Store(url).init()`` creates or migrates the tables (Alembic scripts shipped in the
package); ``Store.write`` inserts a batch in one transaction and drops duplicates;
:mod:`msgbus.store.queries` reads results back.
"""

from msgbus.store.database import (
    DEFAULT_STORE_URL,
    DeadLetter,
    Store,
    StoredMessage,
    StoreUnavailable,
    WriteResult,
    dedup_key,
)
from msgbus.store.queries import ResultRow, latest_results, metric_history
from msgbus.store.tables import dead_letters, metadata, table_for, table_name

__all__ = [
    "DEFAULT_STORE_URL",
    "DeadLetter",
    "ResultRow",
    "Store",
    "StoreUnavailable",
    "StoredMessage",
    "WriteResult",
    "dead_letters",
    "dedup_key",
    "latest_results",
    "metadata",
    "metric_history",
    "table_for",
    "table_name",
]
