"""APEL SSM and msgbus, both ways (tests/fixtures/ssm.py reproduces SSM's side with
stomp.py, dirq and openssl as SSM itself uses them):

* SSM's sender (signed, optionally encrypted) -> msgbus's broker or ActiveMQ ->
  ``msgbus consume --dirq`` -> APEL's loader walk over incoming/;
* an outgoing queue as APEL's unloader writes it -> ``msgbus publish --dirq`` ->
  broker -> SSM's receiver, verifying with openssl;
* APEL records into the relational store's foreign_messages table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import stomp
from dirq.queue import Queue
from dirq.QueueSimple import QueueSimple

from msgbus.store.database import Store
from msgbus.store.tables import dead_letters, foreign_messages
from tests.fixtures.pipeline import EmbeddedBroker, run_msgbus, wait_until
from tests.fixtures.pki import Pki
from tests.fixtures.ssm import REJECT_SCHEMA, SsmReceiver, capath, loader_read, ssm_send_all

pytestmark = pytest.mark.interop

SIGNER = "/CN=probe"  # tests.fixtures.pki's client certificate


def apel_jobs(first: int, count: int = 2) -> str:
    """An individual-job message as APEL's unloader writes it: records ended by %%."""
    records = "".join(
        f"Site: RAL-LCG2\nSubmitHost: ce01.example.org:8443/cream-pbs-grid\n"
        f"LocalJobId: {n}\nLocalUserId: atlas001\nWallDuration: {60 + n}\n"
        f"CpuDuration: {50 + n}\nStartTime: 1700000000\nEndTime: {1700000060 + n}\n%%\n"
        for n in range(first, first + count)
    )
    return "APEL-individual-job-message: v0.3\n" + records


SUMMARY = (
    "APEL-summary-job-message: v0.2\nSite: RAL-LCG2\nMonth: 11\nYear: 2026\n"
    "GlobalUserName: /C=UK/O=eScience/CN=someone\nVO: atlas\nNumberOfJobs: 3\n%%\n"
)


@pytest.fixture(params=["serve", pytest.param("activemq", marks=pytest.mark.activemq)])
def broker_url(
    request: pytest.FixtureRequest, embedded_broker_process: Callable[..., EmbeddedBroker]
) -> Iterator[str]:
    """``msgbus broker serve`` in a process of its own, then the session's ActiveMQ."""
    if request.param == "activemq":
        yield request.getfixturevalue("activemq").stomp_url
        return
    yield embedded_broker_process().stomp_url


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _dns_file(tmp_path: Path, *dns: str) -> Path:
    path = tmp_path / "dns"
    path.write_text("# DNs allowed to send, as in SSM's conf/dns\n\n" + "\n".join(dns) + "\n")
    return path


def _outgoing(path: Path, bodies: list[str]) -> list[str]:
    queue = QueueSimple(str(path))
    return [queue.add(body) for body in bodies]


def _one_line_error(out: str) -> None:
    lines = out.strip().splitlines()
    assert "Traceback" not in out, out
    assert len(lines) == 1 and lines[0].startswith("msgbus: error: "), out


@pytest.mark.parametrize("encrypted", [False, True], ids=["signed", "signed+encrypted"])
def test_ssm_sender_through_msgbus_into_the_apel_loader(
    broker_url: str, pki: Pki, tmp_path: Path, encrypted: bool
) -> None:
    ca_dir = capath(tmp_path / "certificates", pki.ca)
    destination = f"/queue/apel.{uuid.uuid4().hex[:8]}"
    bodies = [apel_jobs(1), SUMMARY, apel_jobs(3, 5)]
    names = _outgoing(tmp_path / "outgoing", bodies)
    host, port = _host_port(broker_url)
    enc_cert = pki.rsa_host_cert if encrypted else None
    sent = ssm_send_all(
        host, port, destination, tmp_path / "outgoing", pki.client_cert, pki.client_key, enc_cert
    )
    # Refused: a sound signature by a DN not in the list; a certificate of another CA.
    ssm_send_all(host, port, destination, tmp_path / "x1", pki.server_cert, pki.server_key)
    _outgoing(tmp_path / "x2", [apel_jobs(9)])
    ssm_send_all(host, port, destination, tmp_path / "x2", pki.stranger_cert, pki.stranger_key)
    assert sent == names
    spool = tmp_path / "apel"
    args = ["consume", "--drain", "--broker", broker_url, "--destination", destination,
            "--dirq", str(spool), "--signer-ca", str(ca_dir),
            "--allow-signers-from", str(_dns_file(tmp_path, SIGNER))]  # fmt: skip
    if encrypted:
        args += ["--decrypt-cert", str(pki.rsa_host_cert), "--decrypt-key", str(pki.rsa_host_key)]
    consumed = run_msgbus(args)
    assert consumed.returncode == 0, consumed.stdout
    assert "stored 3, duplicates 0, dead-lettered 1" in consumed.stdout  # x1 was empty
    loaded = loader_read(spool)
    assert [(m["empaid"], m["signer"], m["body"]) for m in loaded] == [
        (name, SIGNER, body) for name, body in zip(names, bodies, strict=True)
    ]
    rejects = Queue(str(spool / "reject"), schema=REJECT_SCHEMA)
    [rejected] = [rejects.get_element(name) for name in rejects]
    assert rejected["signer"] == "Not available."  # SSM's value when no signer is known
    assert "signature verification failed" in rejected["error"]


def test_a_signer_missing_from_the_dn_list_is_rejected_with_its_dn(
    embedded_broker_process: Callable[..., EmbeddedBroker], pki: Pki, tmp_path: Path
) -> None:
    broker = embedded_broker_process()
    ca_dir = capath(tmp_path / "certificates", pki.ca)
    host, port = _host_port(broker.stomp_url)
    [name] = _outgoing(tmp_path / "outgoing", [SUMMARY])
    ssm_send_all(host, port, "/queue/apel", tmp_path / "outgoing", pki.server_cert, pki.server_key)
    consumed = run_msgbus(
        ["consume", "--drain", "--broker", broker.stomp_url, "--destination", "/queue/apel",
         "--dirq", str(tmp_path / "apel"), "--signer-ca", str(ca_dir), "--allow-signer", SIGNER]
    )  # fmt: skip
    assert consumed.returncode == 0, consumed.stdout
    assert loader_read(tmp_path / "apel") == []
    rejects = Queue(str(tmp_path / "apel" / "reject"), schema=REJECT_SCHEMA)
    [rejected] = [rejects.get_element(n) for n in rejects]
    # As SSM's receiver: the verified content and the signer are kept for a reload.
    assert (rejected["body"], rejected["signer"], rejected["empaid"]) == (
        SUMMARY,
        "/CN=broker",
        name,
    )
    assert "/CN=broker is not among the 1 allowed" in rejected["error"]


def test_an_ssm_ping_is_acknowledged_and_left_out_as_ssms_receiver_does(
    embedded_broker_process: Callable[..., EmbeddedBroker], pki: Pki, tmp_path: Path
) -> None:
    broker = embedded_broker_process()
    host, port = _host_port(broker.stomp_url)
    conn = stomp.Connection([(host, port)], timeout=10)
    conn.connect(wait=True)
    conn.send("/queue/apel", "ping", headers={"empa-id": "ping", "persistent": "true"})
    conn.disconnect()
    [name] = _outgoing(tmp_path / "outgoing", [SUMMARY])
    ssm_send_all(host, port, "/queue/apel", tmp_path / "outgoing", pki.client_cert, pki.client_key)
    args = ["consume", "--drain", "--broker", broker.stomp_url, "--destination", "/queue/apel",
            "--dirq", str(tmp_path / "apel"), "--signer-ca", str(capath(tmp_path / "ca", pki.ca)),
            "--allow-signer", SIGNER]  # fmt: skip
    first, second = run_msgbus(args), run_msgbus(args)
    assert "received 2, stored 1, duplicates 0, dead-lettered 0, SSM pings ignored 1" in (
        first.stdout
    ), first.stdout
    assert "received 0, stored 0" in second.stdout, second.stdout  # the ping was acked
    assert [m["empaid"] for m in loader_read(tmp_path / "apel")] == [name]
    assert list(Queue(str(tmp_path / "apel" / "reject"), schema=REJECT_SCHEMA)) == []


@pytest.mark.parametrize("encrypted", [False, True], ids=["signed", "signed+encrypted"])
def test_msgbus_publish_dirq_into_an_ssm_receiver(
    broker_url: str, pki: Pki, tmp_path: Path, encrypted: bool
) -> None:
    ca_dir = capath(tmp_path / "certificates", pki.ca)
    destination = f"/queue/apel.{uuid.uuid4().hex[:8]}"
    bodies = [apel_jobs(1), SUMMARY, apel_jobs(3, 40)]
    names = _outgoing(tmp_path / "outgoing", bodies)
    receiver = SsmReceiver(
        tmp_path / "server", pki.rsa_host_cert, pki.rsa_host_key, ca_dir, [SIGNER]
    )
    receiver.start(*_host_port(broker_url), destination)
    config = tmp_path / "msgbus.yaml"
    config.write_text(
        json.dumps(
            {"publisher": {"sign_cert": str(pki.client_cert), "sign_key": str(pki.client_key)}}
        )
    )
    args = ["publish", "--config", str(config), "--broker", broker_url,
            "--destination", destination, "--dirq", str(tmp_path / "outgoing")]  # fmt: skip
    if encrypted:
        args += ["--encrypt-cert", str(pki.rsa_host_cert)]
    try:
        published = run_msgbus(args)
        assert published.returncode == 0, published.stdout
        assert "3 elements published and removed" in published.stdout
        wait_until(lambda: len(receiver.received) >= 3, 30, "SSM's receiver to get 3 messages")
    finally:
        receiver.stop()
    assert QueueSimple(str(tmp_path / "outgoing")).count() == 0
    assert len(receiver.received) == 3  # no sync record or anything else
    assert [h["empa-id"] for h in receiver.received] == names
    # SSM's receiver strips the text it verified (crypto.verify splits lines).
    assert loader_read(tmp_path / "server") == [
        {"empaid": name, "signer": SIGNER, "body": body.strip()}
        for name, body in zip(names, bodies, strict=True)
    ]


def test_apel_records_are_kept_unmodified_in_the_foreign_table(
    embedded_broker_process: Callable[..., EmbeddedBroker], pki: Pki, tmp_path: Path
) -> None:
    broker = embedded_broker_process()
    ca_dir = capath(tmp_path / "certificates", pki.ca)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_msgbus(["db", "init", "--store", url]).returncode == 0
    bodies = [apel_jobs(1), SUMMARY]
    names = _outgoing(tmp_path / "outgoing", bodies)
    host, port = _host_port(broker.stomp_url)
    send = (host, port, "/queue/apel", tmp_path / "outgoing", pki.client_cert, pki.client_key)
    # A sender run dies before removing what it sent; the next one sends it all again,
    # under the same empa-ids: stored once.
    ssm_send_all(*send, dies_before_removing=True)
    assert ssm_send_all(*send) == names
    base = ["consume", "--drain", "--broker", broker.stomp_url, "--destination", "/queue/apel",
            "--store", url, "--signer-ca", str(ca_dir), "--allow-signer", SIGNER]  # fmt: skip
    consumed = run_msgbus(base)
    assert consumed.returncode == 0, consumed.stdout
    assert "stored 2, duplicates 2, dead-lettered 0" in consumed.stdout
    # The same bodies again, as another sender run would: kept again (new broker ids),
    # and with foreign: dead-letter they are dead letters, as before.
    _outgoing(tmp_path / "again", [apel_jobs(7)])
    ssm_send_all(host, port, "/queue/apel", tmp_path / "again", pki.client_cert, pki.client_key)
    refused = run_msgbus([*base, "--foreign", "dead-letter"])
    assert "stored 0, duplicates 0, dead-lettered 1" in refused.stdout, refused.stdout
    store = Store(url)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                foreign_messages.c.body, foreign_messages.c.signer, foreign_messages.c.headers
            ).order_by(foreign_messages.c.id)
        ).all()
        dead = conn.execute(sa.select(dead_letters.c.reason)).scalars().all()
    store.close()
    assert [(bytes(r.body).decode(), r.signer) for r in rows] == [(b, SIGNER) for b in bodies]
    assert [json.loads(r.headers)["empa-id"] for r in rows] == names
    assert len(dead) == 1 and "got '%%'" in dead[0]


def test_a_wrong_queue_or_dn_file_is_one_error_line(tmp_path: Path) -> None:
    incoming = Queue(str(tmp_path / "apel" / "incoming"), schema=REJECT_SCHEMA)
    incoming.add({"body": SUMMARY, "signer": SIGNER, "empaid": "x", "error": "e"})
    _outgoing(tmp_path / "simple" / "incoming", [SUMMARY])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a queue")
    offline = ["--broker", "stomp://127.0.0.1:1"]
    empty_dns = _dns_file(tmp_path)  # comments only: checks must not silently turn off
    bad_dns = tmp_path / "bad-dns"
    bad_dns.write_text("CN=probe\n")
    signed = ["--signer-ca", str(tmp_path), "--dirq", str(tmp_path / "apel")]
    cases = {
        # An SSM receiver's queue given to publish, which drains SSM's outgoing queue.
        "is a dirq Queue": ["publish", *offline, "--dirq", str(tmp_path / "apel" / "incoming")],
        "is not a directory queue": ["publish", *offline, "--dirq", str(tmp_path / "other")],
        # A QueueSimple where consume --dirq (SSM format) keeps its incoming Queue ...
        "holds a dirq QueueSimple": ["consume", *offline, "--dirq", str(tmp_path / "simple")],
        # ... or given as the directory that should hold incoming/ and reject/.
        "is itself a directory queue": [
            "consume", *offline, "--dirq", str(tmp_path / "simple" / "incoming")
        ],
        "holds no DN": ["consume", *offline, *signed, "--allow-signers-from", str(empty_dns)],
        "is not a DN in slash notation": [
            "consume", *offline, *signed, "--allow-signers-from", str(bad_dns)
        ],
    }  # fmt: skip
    for expected, args in cases.items():
        run = run_msgbus(args)
        assert run.returncode != 0, run.stdout
        _one_line_error(run.stdout)
        assert expected in run.stdout
    assert not (tmp_path / "simple" / "incoming" / "incoming").exists()
