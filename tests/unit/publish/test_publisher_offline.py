"""Publisher behaviour when no broker answers (a closed local port): spool, fail, reject."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from msgbus.config import MsgbusConfig, load_config
from msgbus.errors import ConnectError, SpoolFull
from msgbus.publish import ID_HEADER, Envelope, Publisher, Spool, new_id, publish_once
from msgbus.security import verify
from msgbus.stomp.headers import LAST_HEADER, read_number
from tests.fixtures.metrics import scrape
from tests.fixtures.results import numbered


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _config(tmp_path: Path, **publisher: object) -> MsgbusConfig:
    return load_config(
        overrides={
            "connection": {
                "brokers": [f"stomp://127.0.0.1:{_closed_port()}"],
                "reconnect_initial_delay": 0.01,
            },
            "publisher": {"spool_dir": tmp_path / "spool", "retry_for": 0, **publisher},
        }
    )


def test_without_a_broker_everything_is_spooled_in_order(tmp_path: Path) -> None:
    with Publisher(_config(tmp_path)) as pub:
        report = pub.publish([numbered(i) for i in range(5)])
        stats = pub.stats()
    assert (report.confirmed, report.spooled, report.failed) == (0, 5, 0)
    assert isinstance(report.spool_reason, ConnectError)
    assert stats["spooled"] == 5 and stats["spool_messages"] == 5
    with Spool(tmp_path / "spool", 1 << 20) as spool:
        spooled = [m.envelope for m in spool.peek(10)]
    assert [e.headers["metricName"] for e in spooled] == [f"m{i}" for i in range(5)]
    assert len({e.msgbus_id for e in spooled}) == 5


def test_an_offline_run_spools_its_end_on_its_last_message_of_each_destination(
    tmp_path: Path,
) -> None:
    for sync in (True, False):
        with Publisher(_config(tmp_path / str(sync), sync=sync)) as pub:
            pub.send([Envelope(d, b"x") for d in ["/queue/a", "/queue/b", "/queue/a"]])
        with Spool(tmp_path / str(sync) / "spool", 1 << 20) as spool:
            spooled = [m.envelope for m in spool.peek(10)]
        ends = [(e.destination, e.headers.get(LAST_HEADER)) for e in spooled]
        if sync:  # drained later, the last of each still ends the run
            assert ends == [("/queue/a", None), ("/queue/b", "1"), ("/queue/a", "2")]
        else:
            assert ends == [("/queue/a", None), ("/queue/b", None), ("/queue/a", None)]


def test_an_invalid_message_is_rejected_and_the_others_still_go(tmp_path: Path) -> None:
    # model_copy(update=...) skips validation, as model_construct does.
    bad = numbered(1).model_copy(update={"metricStatus": "SUPERB"})
    with Publisher(_config(tmp_path)) as pub:
        report = pub.publish([numbered(0), bad, numbered(2)])
        assert pub.stats()["rejected"] == 1
    assert report.spooled == 2
    assert len(report.rejected) == 1
    assert "message 2" in report.rejected[0] and "metricStatus" in report.rejected[0]


def test_without_spool_undeliverable_messages_fail_with_the_connect_error(tmp_path: Path) -> None:
    with Publisher(_config(tmp_path), spool=False) as pub:
        report = pub.send([Envelope("/queue/x", b"a"), Envelope("/queue/x", b"b")])
    assert (report.confirmed, report.spooled, report.failed) == (0, 0, 2)
    with pytest.raises(ConnectError, match="no broker could be reached"):
        report.raise_for_failures()


def test_a_full_spool_reports_spoolfull_for_what_did_not_fit(tmp_path: Path) -> None:
    with Publisher(_config(tmp_path, spool_max_bytes=2048)) as pub:
        report = pub.send([Envelope("/queue/x", b"z" * 900) for _ in range(4)])
    assert (report.spooled, report.failed) == (2, 2)
    with pytest.raises(SpoolFull, match="2 message"):
        report.raise_for_failures()


def test_msgbus_id_stays_the_same_through_the_spool(tmp_path: Path) -> None:
    env = Envelope("/queue/x", b"body", {"a": "b"})
    with Publisher(_config(tmp_path)) as pub:
        pub.send([env])
    with Spool(tmp_path / "spool", 1 << 20) as spool:
        (stored,) = spool.peek(1)
    assert stored.envelope.msgbus_id == env.msgbus_id
    assert stored.envelope.headers["a"] == "b"
    assert f"{ID_HEADER}:{env.msgbus_id}\n".encode() in stored.envelope.head("1.2")


def test_numbering_survives_restarts_and_is_per_destination(tmp_path: Path) -> None:
    numbered = []
    for _ in range(2):  # two runs of a cron'd probe sharing one spool
        with Publisher(_config(tmp_path)) as pub:
            pub.send([Envelope("/queue/x", b"1"), Envelope("/queue/y", b"2")])
            pub.send([Envelope("/queue/x", b"3")])
    with Spool(tmp_path / "spool", 1 << 20) as spool:
        numbered = [m.envelope for m in spool.peek(10)]
    numbers = [(e.destination, read_number(e.headers)) for e in numbered]
    seqs = [(d, n[2]) for d, n in numbers if n is not None]
    assert seqs == [("/queue/x", 1), ("/queue/y", 1), ("/queue/x", 2)] * 1 + [
        ("/queue/x", 3),
        ("/queue/y", 2),
        ("/queue/x", 4),
    ]
    x = {n[:2] for d, n in numbers if n is not None and d == "/queue/x"}
    y = {n[:2] for d, n in numbers if n is not None and d == "/queue/y"}
    assert len(x) == len(y) == 1 and x != y


def test_new_ids_are_unique() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_drain_without_a_broker_keeps_everything(tmp_path: Path) -> None:
    with Publisher(_config(tmp_path)) as pub:
        pub.send([Envelope("/queue/x", b"%d" % i) for i in range(3)])
        report = pub.drain()
    assert (report.drained, report.remaining) == (0, 3)
    assert isinstance(report.error, ConnectError)


def test_missing_tls_material_is_refused_at_start(tmp_path: Path) -> None:
    config = load_config(
        overrides={
            "connection": {
                "brokers": ["stomp+ssl://broker.example.org:61614"],
                "tls": {
                    "cert": str(tmp_path / "usercert.pem"),
                    "key": str(tmp_path / "userkey.pem"),
                },
            },
            "publisher": {"spool_dir": tmp_path / "spool"},
        }
    )
    with pytest.raises(ConnectError, match="cannot load TLS material"):
        Publisher(config)


def test_signed_envelopes_carry_an_smime_body_and_header(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now.replace(year=now.year + 1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = _config(tmp_path, sign_cert=tmp_path / "c.pem", sign_key=tmp_path / "k.pem")
    with Publisher(config) as pub:
        env = pub.envelope(b"payload\n", {"messageClass": "ProbeResult"})
    assert env.headers["msgbus-signed"] == "smime"
    assert env.body.startswith(b"MIME-Version: 1.0") and b"payload" in env.body
    assert verify(env.body, ca_file=tmp_path / "c.pem").content == b"payload\n"


def test_metrics_are_served_over_http(tmp_path: Path) -> None:
    with Publisher(_config(tmp_path)) as pub:
        pub.send([Envelope("/queue/x", b"a")])
        text = scrape(pub.metrics.registry)
    assert "msgbus_publisher_spooled_total 1.0" in text
    assert "msgbus_publisher_spool_messages 1.0" in text
    assert "msgbus_publisher_confirm_latency_seconds_bucket" in text


def test_publish_once_spools_what_no_broker_took(tmp_path: Path) -> None:
    # Connection and publisher settings given as keywords each reach their section.
    report = publish_once(
        [numbered(1), numbered(2)],
        f"stomp://127.0.0.1:{_closed_port()}",
        destination="/queue/x",
        reconnect_initial_delay=0.01,
        spool_dir=tmp_path / "spool",
        retry_for=0,
    )
    assert (report.confirmed, report.spooled) == (0, 2)
    with Spool(tmp_path / "spool", 1 << 20) as spool:
        assert len(spool) == 2


def test_publish_once_without_spool_reports_the_failure(tmp_path: Path) -> None:
    report = publish_once(
        [numbered(1)],
        f"stomp://127.0.0.1:{_closed_port()}",
        destination="/queue/x",
        spool=False,
        retry_for=0,
    )
    assert (report.accepted, report.failed) == (0, 1)
    with pytest.raises(ConnectError):
        report.raise_for_failures()
