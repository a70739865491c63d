"""The store on SQLite: migrations, batches, duplicates, dead letters, errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from msgbus.errors import StoreError
from msgbus.store import migrate
from msgbus.store.database import (
    DeadLetter,
    RawMessage,
    Store,
    StoredMessage,
    StoreUnavailable,
    dedup_key,
)
from msgbus.store.migrate import HEAD_REVISION, VERSION_TABLE, head_revision
from msgbus.store.tables import dead_letters, foreign_messages, metadata, table_for
from tests.unit.store.conftest import ProbeFactory, make_probe

PROBES = table_for("ProbeResult")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.init()
    return s


def _count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_migrated_database_matches_the_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


def test_check_refuses_a_database_without_tables(tmp_path: Path) -> None:
    fresh = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match=r"has no msgbus tables.*msgbus db init"):
        fresh.check()
    assert fresh.init() == head_revision()
    fresh.check()
    assert fresh.init() == head_revision()  # idempotent


def test_the_revision_checked_at_start_is_alembics_head() -> None:
    # check() compares with the constant so that consumers start without Alembic.
    assert head_revision() == HEAD_REVISION


def test_check_refuses_a_store_at_an_older_revision(tmp_path: Path) -> None:
    old = Store(f"sqlite:///{tmp_path / 'old.db'}")
    with old.engine.begin() as conn:
        migrate.upgrade(conn, "0003")
    with pytest.raises(
        StoreError, match=rf"is at revision 0003, this msgbus needs {HEAD_REVISION}"
    ):
        old.check()


def test_write_stores_indexed_columns_and_the_whole_message(
    store: Store, probe: ProbeFactory
) -> None:
    message = probe(siteName="S1", metricStatus="CRITICAL", customKey="kept")
    result = store.write([StoredMessage("id-1", 1, message)])
    assert (result.stored, result.duplicates, result.dead_lettered) == (1, 0, 0)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(PROBES)).one()
    assert (row.site, row.host, row.metric, row.status) == (
        "S1",
        "ce01.example.org",
        "org.sam.CE-JobSubmit",
        "CRITICAL",
    )
    assert row.timestamp.isoformat() == "2026-01-01T00:00:00+00:00"
    assert json.loads(row.message)["customKey"] == "kept"
    assert row.message == message.model_dump_json()


def test_duplicates_in_and_across_batches_are_dropped(store: Store, probe: ProbeFactory) -> None:
    m = probe()
    first = store.write(
        [StoredMessage("a", 1, m), StoredMessage("a", 1, m), StoredMessage("a", 2, m)]
    )
    assert (first.stored, first.duplicates) == (2, 1)
    again = store.write([StoredMessage("a", 2, m), StoredMessage("b", 1, m)])
    assert (again.stored, again.duplicates) == (1, 1)
    assert _count(store, PROBES) == 3


def test_dead_letters_keep_headers_raw_body_and_reason(store: Store) -> None:
    body = b"\xff\xfe not utf-8"
    letter = DeadLetter("x", 0, "not UTF-8", {"message-id": "x", "h": "v"}, body, "/topic/t")
    assert store.write([], [letter]).dead_lettered == 1
    assert store.write([], [letter]).dead_lettered == 0
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(dead_letters)).one()
    assert row.body == body
    assert row.reason == "not UTF-8"
    assert json.loads(row.headers) == {"message-id": "x", "h": "v"}
    assert row.destination == "/topic/t"


def test_long_values_fit_their_columns(store: Store, probe: ProbeFactory) -> None:
    long_id = "m" * 1000
    key = dedup_key(long_id)
    assert key.startswith("sha256:") and len(key) < 255
    assert dedup_key("short") == "short"
    store.write([StoredMessage(key, 1, probe(siteName="S" * 400))])
    with store.engine.connect() as conn:
        assert len(conn.execute(sa.select(PROBES.c.site)).scalar_one()) == 255


def test_an_unreachable_database_is_store_unavailable(tmp_path: Path) -> None:
    missing = Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    with pytest.raises(StoreUnavailable, match="unavailable while writing a batch"):
        missing.write([StoredMessage("a", 1, make_probe())])


def test_missing_tables_say_how_to_create_them(tmp_path: Path) -> None:
    bare = Store(f"sqlite:///{tmp_path / 'bare.db'}")
    with pytest.raises(StoreError, match="msgbus db init"):
        bare.write([StoredMessage("a", 1, make_probe())])


_keys = st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 3)), max_size=40)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('prop') / 's.db'}")
    s.init()
    return s


@settings(max_examples=50, deadline=None)
@given(keys=_keys, cut=st.integers(1, 10))
def test_rows_equal_distinct_keys_however_batches_are_cut(
    shared_store: Store, keys: list[tuple[str, int]], cut: int
) -> None:
    run = uuid.uuid4().hex  # each example writes its own keys into the shared store
    m = make_probe()
    stored = duplicates = 0
    for start in range(0, len(keys), cut):
        batch = [StoredMessage(run + k, p, m) for k, p in keys[start : start + cut]]
        result = shared_store.write(batch)
        stored += result.stored
        duplicates += result.duplicates
    with shared_store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sa.func.count()).where(PROBES.c.msg_id.startswith(run))
        ).scalar_one()
    assert rows == stored == len(set(keys))
    assert duplicates == len(keys) - len(set(keys))


def test_foreign_bodies_are_kept_byte_for_byte_and_never_twice(store: Store) -> None:
    body = b"APEL-summary-job-message: v0.2\nSite: X\n%%\n\x00\xff"
    item = RawMessage("ID:apel-1", {"empa-id": "e/1"}, body, "/CN=probe", "/queue/apel")
    first = store.write([], foreign=[item, item])
    again = store.write([], foreign=[item])  # a redelivery after a crash before the ack
    assert (first.stored, first.duplicates, first.per_type) == (1, 1, {"foreign": 1})
    assert (again.stored, again.duplicates) == (0, 1)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(foreign_messages)).one()
    assert (bytes(row.body), row.signer, row.destination) == (body, "/CN=probe", "/queue/apel")
    assert json.loads(row.headers) == {"empa-id": "e/1"}
