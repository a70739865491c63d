"""``msgbus consume`` stores, into SQLite, every message the third-party clients publish:
stomp.py, Net::Stomp (its own sends and the shipped probe publisher) and stompest, each
plainly and in a transaction, counted per client by the site each one writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from stompest.config import StompConfig
from stompest.protocol import StompSpec
from stompest.sync import Stomp

from msgbus.schema import ProbeResult, encode_body
from msgbus.store.database import Store
from msgbus.store.tables import table_for
from tests.fixtures.pipeline import run_msgbus
from tests.integration.conformance.clients import Target
from tests.integration.interop.conftest import Step, net_stomp

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("net_stomp_installed")]

SCRIPT = Path(__file__).parents[3] / "clients" / "perl" / "send-probe-result.pl"
PLAIN, IN_TRANSACTION = 20, 5


def probe(site: str, number: int) -> tuple[str, dict[str, str]]:
    """A WLCG ProbeResult body (text) and its headers (messageClass, content-type, ...)."""
    result = ProbeResult.model_validate(
        {
            "serviceURI": f"ce{number}.example.org",
            "hostName": f"ce{number}.example.org",
            "serviceFlavour": "CE",
            "siteName": site,
            "metricStatus": "OK",
            "metricName": "org.sam.CE-JobSubmit",
            "summaryData": f"job {number} ran",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    body, headers = encode_body(result, "wlcg")
    return body.decode(), {**headers, "persistent": "true"}


def _stomppy(target: Target, queue: str) -> None:
    client = target.client()
    try:
        for i in range(PLAIN):
            body, headers = probe("STOMPPY", i)
            client.conn.send(queue, body, headers=headers, receipt=f"r{i}")
            client.receipt(f"r{i}")
        tx = client.conn.begin()
        for i in range(PLAIN, PLAIN + IN_TRANSACTION):
            body, headers = probe("STOMPPY", i)
            client.conn.send(queue, body, headers=headers, transaction=tx)
        client.conn.commit(tx, receipt="committed")
        client.receipt("committed")
    finally:
        client.close()


def _net_stomp(target: Target, queue: str) -> None:
    steps: list[Step] = []
    for i in range(PLAIN):
        body, headers = probe("NETSTOMP", i)
        steps.append(["send_with_receipt", {"destination": queue, "body": body, **headers}])
    steps.append(["frame", "BEGIN", {"transaction": "t"}])
    for i in range(PLAIN, PLAIN + IN_TRANSACTION - 1):
        body, headers = probe("NETSTOMP", i)
        steps.append(["send", {"destination": queue, "body": body, "transaction": "t", **headers}])
    steps.append(["frame", "COMMIT", {"transaction": "t", "receipt": "c"}])
    body, headers = probe("NETSTOMP", PLAIN + IN_TRANSACTION)
    steps.append(["send_transactional", {"destination": queue, "body": body, **headers}])
    net_stomp(target, [*steps, ["disconnect"]])
    for i in range(2):  # the shipped publisher, one message a run
        run = subprocess.run(
            ["perl", str(SCRIPT), "--broker", f"stomp://{target.host}:{target.port}",
             "--destination", queue, "--site", "NETSTOMP-SCRIPT", "--host", f"ce{i}.example.org",
             "--metric", "org.sam.CE-JobSubmit"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr


def _stompest(target: Target, queue: str) -> None:
    config = StompConfig(f"tcp://{target.host}:{target.port}", target.login, target.passcode,
                         version="1.2")  # fmt: skip
    client = Stomp(config)
    client.connect(host="localhost", connectedTimeout=10)
    try:
        for i in range(PLAIN):
            body, headers = probe("STOMPEST", i)
            client.send(queue, body.encode(), headers, receipt=f"r{i}")
        with client.transaction(receipt="tx") as tx:
            for i in range(PLAIN, PLAIN + IN_TRANSACTION):
                body, headers = probe("STOMPEST", i)
                client.send(queue, body.encode(), {**headers, StompSpec.TRANSACTION_HEADER: tx})
        expected = {f"r{i}" for i in range(PLAIN)} | {"tx-begin", "tx-commit"}
        receipts: set[str] = set()
        while receipts != expected:
            assert client.canRead(10), f"receipts missing: {expected - receipts}"
            receipts.add(client.receipt(client.receiveFrame()))
        client.disconnect()
    finally:
        client.close()


def test_msgbus_consume_stores_every_message_of_every_client(
    target: Target, name: str, tmp_path: Path
) -> None:
    queue = f"/queue/{name}"
    _stomppy(target, queue)
    _net_stomp(target, queue)
    _stompest(target, queue)
    sent = {
        "STOMPPY": PLAIN + IN_TRANSACTION,
        "NETSTOMP": PLAIN + IN_TRANSACTION,
        "NETSTOMP-SCRIPT": 2,
        "STOMPEST": PLAIN + IN_TRANSACTION,
    }
    store_url = f"sqlite:///{tmp_path / 'results.db'}"
    init = run_msgbus(["db", "init", "--store", store_url])
    assert init.returncode == 0, init.stdout
    consume = run_msgbus(
        ["consume", "--broker", f"stomp://{target.host}:{target.port}", "--destination", queue,
         "--store", store_url, "--drain", "--max-wait", "0.3"],
        env={"MSGBUS_CONNECTION__LOGIN": target.login or "",
             "MSGBUS_CONNECTION__PASSCODE": target.passcode or ""},
    )  # fmt: skip
    total = sum(sent.values())
    assert consume.returncode == 0, consume.stdout
    assert f"received {total}, stored {total}, duplicates 0, dead-lettered 0" in consume.stdout
    probes = table_for("ProbeResult")
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            query = sa.select(probes.c.site, sa.func.count()).group_by(probes.c.site)
            per_site = {site: n for site, n in conn.execute(query)}
            distinct = conn.execute(sa.select(sa.func.count(sa.distinct(probes.c.msg_id))))
            assert distinct.scalar_one() == total
    finally:
        store.close()
    assert per_site == sent
