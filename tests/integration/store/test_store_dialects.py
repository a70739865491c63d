"""The store on live PostgreSQL and MariaDB (and Oracle when MSGBUS_ORACLE_URL is set):
migrations match the tables, batches deduplicate natively, the read API answers."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from msgbus.schema.models import ProbeResult
from msgbus.store.database import (
    DeadLetter,
    RawMessage,
    Store,
    StoredMessage,
    StoreUnavailable,
)
from msgbus.store.migrate import VERSION_TABLE, head_revision
from msgbus.store.queries import latest_results, metric_history
from msgbus.store.tables import dead_letters, foreign_messages, metadata, table_for


def _probe(site: str, minute: int, status: str = "OK") -> ProbeResult:
    return ProbeResult.model_validate(
        {
            "serviceURI": "https://ce.example.org",
            "hostName": "ce.example.org",
            "serviceFlavour": "CE",
            "siteName": site,
            "metricStatus": status,
            "metricName": "org.sam.CE-JobSubmit",
            "summaryData": "OK: ✓ 4-byte 🚀 fine",
            "timestamp": f"2026-01-01T00:{minute:02d}:00Z",
            "detailsData": "d" * 70_000,
        }
    )


@pytest.fixture(params=["postgres_url", "mariadb_url", "oracle"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "oracle":
        url = os.environ.get("MSGBUS_ORACLE_URL")
        if not url:
            pytest.skip(
                "set MSGBUS_ORACLE_URL (oracle+oracledb://user:pass@host/service) "
                "to run the store against a live Oracle"
            )
        request.applymarker(pytest.mark.oracle)
    else:
        url = request.getfixturevalue(request.param)
    s = Store(url)
    s.init()
    yield s
    if request.param == "oracle":  # a shared schema: leave it as found
        with s.engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    s.close()


def test_migrations_match_the_tables_and_repeat_safely(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    assert store.init() == head_revision()
    store.check()


def test_batches_deduplicate_and_keep_everything(store: Store) -> None:
    run = uuid.uuid4().hex
    batch = [StoredMessage(f"{run}-{i}", 1, _probe(f"S{i % 2}", i)) for i in range(6)]
    body = b"\xff\x00\x80 raw" * 1000
    letter = DeadLetter(f"{run}-bad", 0, "not UTF-8", {"msgbus-id": f"{run}-bad"}, body)
    # A foreign payload (e.g. APEL records or Avro): the same bytes back, stored once.
    foreign = RawMessage(f"{run}-apel", {"empa-id": "e1"}, body + b"%%\n", "/CN=probe")
    first = store.write(batch + batch[:2], [letter], foreign=[foreign])
    assert (first.stored, first.duplicates, first.dead_lettered) == (7, 2, 1)
    again = store.write(batch[3:], [letter], foreign=[foreign])
    assert (again.stored, again.duplicates, again.dead_lettered) == (0, 4, 0)
    probes = table_for("ProbeResult")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(probes).order_by(probes.c.timestamp)).all()
        raw = conn.execute(sa.select(dead_letters.c.body)).scalar_one()
        kept = conn.execute(sa.select(foreign_messages.c.body, foreign_messages.c.signer)).one()
    assert (kept.body, kept.signer) == (body + b"%%\n", "/CN=probe")
    assert len(rows) == 6
    assert json.loads(rows[0].message)["summaryData"] == "OK: ✓ 4-byte 🚀 fine"
    assert len(json.loads(rows[0].message)["detailsData"]) == 70_000
    assert raw == body
    latest = latest_results(store)
    assert [(r.site, r.timestamp.minute) for r in latest] == [("S0", 4), ("S1", 5)]
    assert [r.timestamp.minute for r in metric_history(store, "S1", "org.sam.CE-JobSubmit")] == [
        1,
        3,
        5,
    ]
    # Stored keys first, new ones after (a redelivery run): only the new ones are added.
    fresh = [StoredMessage(f"{run}-new{i}", 1, _probe("S2", i)) for i in range(2)]
    mixed = store.write(batch[4:] + fresh)
    assert (mixed.stored, mixed.duplicates) == (2, 2)
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(probes)) == 8


def test_postgres_connection_lost_during_copy_is_store_unavailable(postgres_url: str) -> None:
    """The server ends the session between the savepoint and COPY (a real fault,
    injected with pg_terminate_backend): retryable, and the next write succeeds."""
    store = Store(postgres_url)
    store.init()
    armed = [True]

    @sa.event.listens_for(store.engine, "after_cursor_execute")
    def kill_session(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if armed[0] and statement.startswith("SAVEPOINT"):
            armed[0] = False
            pid = cursor.connection.info.backend_pid
            admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()

    message = StoredMessage("lost-1", 1, _probe("S", 1))
    with pytest.raises(StoreUnavailable, match="unavailable while writing a batch"):
        store.write([message])
    assert store.write([message]).stored == 1
    store.close()
