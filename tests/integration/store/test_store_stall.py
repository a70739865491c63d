"""A stalled path to a live database (bytes accepted, never answered) fails a batch write
within the statement timeout, wherever the write hangs, and the next write after the path
is back stores the batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from msgbus.schema.models import ProbeResult
from msgbus.store.database import Store, StoredMessage, StoreUnavailable
from tests.fixtures.proxy import TcpProxy

STATEMENT_TIMEOUT = 2.0
CONNECT_TIMEOUT = 3.0


def _batch(tag: str) -> list[StoredMessage]:
    result = ProbeResult.model_validate(
        {
            "serviceURI": "https://ce.example.org",
            "hostName": "ce.example.org",
            "serviceFlavour": "CE",
            "siteName": "SITE",
            "metricStatus": "OK",
            "metricName": "org.sam.CE-JobSubmit",
            "summaryData": "OK",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    return [StoredMessage(f"{tag}-{i}", 1, result) for i in range(3)]


def _write_in_thread(store: Store, batch: list[StoredMessage]) -> tuple[list[object], float]:
    """The outcome of ``store.write`` (its result or exception) and the seconds it took,
    or an empty outcome when it was still hanging after a generous bound."""
    outcome: list[object] = []

    def write() -> None:
        try:
            outcome.append(store.write(batch))
        except Exception as exc:  # the test inspects it
            outcome.append(exc)

    started = time.monotonic()
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(STATEMENT_TIMEOUT + 2 * CONNECT_TIMEOUT + 10)
    return outcome, time.monotonic() - started


@pytest.mark.parametrize("database", ["postgres_url", "mariadb_url"])
def test_a_stall_while_the_connection_idles_fails_the_next_write(
    request: pytest.FixtureRequest, database: str, tcp_proxy: Callable[[int], TcpProxy]
) -> None:
    """The connection waits in the pool when the path stalls: the next write hangs in the
    pool's pre-ping, before any statement (this hung for ever before the fix)."""
    url = sa.make_url(request.getfixturevalue(database))
    proxy = tcp_proxy(url.port or 0)
    store = Store(
        url.set(port=proxy.port).render_as_string(hide_password=False),
        connect_timeout=CONNECT_TIMEOUT,
        statement_timeout=STATEMENT_TIMEOUT,
    )
    stalls: list[float] = []
    store.on_stall = lambda: stalls.append(time.monotonic())
    try:
        store.init()
        assert store.write(_batch("before")).stored == 3  # a connection now idles in the pool
        proxy.stall()
        outcome, took = _write_in_thread(store, _batch("during"))
        assert outcome, f"the write still hung after {took:.0f} s"
        assert isinstance(outcome[0], StoreUnavailable), outcome
        assert len(stalls) == 1 or database == "mariadb_url", stalls  # PyMySQL may time out first
        proxy.resume()
        assert store.write(_batch("during")).stored == 3
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM probe_results")).scalar_one()
        assert rows == 6
    finally:
        proxy.resume()
        store.close()
