"""The embedded broker over real sockets: TLS, logins, limits, heart-beats, metrics, CLI."""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import stomp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from msgbus.bench.raw import RawClient
from msgbus.broker import BrokerConfig, BrokerLimits, BrokerThread
from msgbus.broker.config import BrokerTLS
from msgbus.errors import BrokerError, ConnectError, ConnectionLost
from msgbus.stomp import FrameParser, serialize
from msgbus.stomp.frames import ConnectFrame, Frame, Heartbeat, SendFrame
from tests.fixtures.metrics import fetch_metrics

Issuer = tuple[x509.Name, ec.EllipticCurvePrivateKey]


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: Issuer | None, ca: bool
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost and a client certificate."""
    base = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("msgbus test CA", ca_key, None, ca=True)
    _write(base / "ca", ca, ca_key)
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(base / name, _cert(name, key, (ca.subject, ca_key), ca=False), key)
    return base


def _tls_connect(port: int, pki: Path, with_cert: bool) -> Frame:
    ctx = ssl.create_default_context(cafile=pki / "ca.crt")
    if with_cert:
        ctx.load_cert_chain(pki / "client.crt", pki / "client.key")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(serialize(ConnectFrame({"accept-version": "1.2", "host": "x"})))
        parser = FrameParser(role="client")
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionLost("closed")
            frames = [f for f in parser.feed(data) if isinstance(f, Frame)]
            if frames:
                return frames[0]


def test_tls_with_client_certificates(pki: Path) -> None:
    tls = BrokerTLS(cert=pki / "server.crt", key=pki / "server.key", client_ca=pki / "ca.crt")
    with BrokerThread(BrokerConfig(port=0, tls=tls)) as broker:
        assert broker.url.startswith("stomp+ssl://")
        assert _tls_connect(broker.port, pki, with_cert=True).command == "CONNECTED"
        # TLS 1.3 reports a missing client certificate after the handshake, on first read.
        with pytest.raises((ssl.SSLError, ConnectionLost, ConnectionResetError)):
            _tls_connect(broker.port, pki, with_cert=False)


def test_logins_from_config_with_stomp_py() -> None:
    config = BrokerConfig(port=0, users={"probe": "s3cret"})
    with BrokerThread(config) as broker:
        good = stomp.Connection12([("127.0.0.1", broker.port)])
        good.connect("probe", "s3cret", wait=True)
        assert good.is_connected()
        good.disconnect()
        with pytest.raises(ConnectError, match="access refused"):
            RawClient("127.0.0.1", broker.port, login="probe", passcode="nope").connect()


def test_connection_limit() -> None:
    with BrokerThread(BrokerConfig(port=0, limits=BrokerLimits(max_connections=1))) as broker:
        with (
            RawClient("127.0.0.1", broker.port),
            pytest.raises(ConnectError, match="connection limit"),
        ):
            RawClient("127.0.0.1", broker.port).connect()
        # The slot is free again once the broker saw the first client leave.
        deadline = time.monotonic() + 10
        while broker.broker.gate.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        RawClient("127.0.0.1", broker.port).connect().close()


def test_silent_client_is_dropped_after_missed_heart_beats() -> None:
    with BrokerThread(BrokerConfig(port=0, heartbeat_ms=(100, 100))) as broker:
        client = RawClient("127.0.0.1", broker.port, timeout=5, headers={"heart-beat": "100,0"})
        with client:
            started = time.monotonic()
            with pytest.raises(BrokerError, match="heart-beat timeout"):
                while True:
                    client.read()
            assert time.monotonic() - started < 5  # 2 x 100 ms, with room for a busy CI


def test_metrics_endpoint_has_its_own_registry() -> None:
    with (
        BrokerThread(BrokerConfig(port=0, metrics_port=0, name="m1")) as broker,
        RawClient("127.0.0.1", broker.port) as client,
    ):
        client.send_bytes(
            serialize(SendFrame({"destination": "/queue/metrics", "receipt": "m"}, b"m"))
        )
        assert client.next_frame().command == "RECEIPT"
        assert broker.broker.metrics_port is not None
        text = fetch_metrics(broker.broker.metrics_port)
    assert 'msgbus_broker_connections{broker="m1"} 1.0' in text
    assert 'msgbus_broker_messages_in_total{broker="m1"} 1.0' in text
    assert 'msgbus_broker_queue_depth{broker="m1",queue="/queue/metrics"} 1.0' in text
    # Nothing of ours leaked into the process-global registry.
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("msgbus_broker_connections", {"broker": "m1"}) is None


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text("limits:\n  max_connections: 0\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from msgbus.cli.main import main; main()",
            "broker",
            "serve",
            "--broker-config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("msgbus: error: invalid configuration")
    assert "limits.max_connections" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_sends_heart_beats_when_asked() -> None:
    with (
        BrokerThread(BrokerConfig(port=0, heartbeat_ms=(100, 0))) as broker,
        socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock,
    ):
        sock.sendall(serialize(ConnectFrame({"accept-version": "1.2", "heart-beat": "0,100"})))
        parser = FrameParser(role="client")
        events: list[object] = []
        deadline = time.monotonic() + 5
        while len(events) < 4 and time.monotonic() < deadline:
            events += parser.feed(sock.recv(4096))
    assert isinstance(events[0], Frame) and events[0].headers["heart-beat"] == "100,0"
    assert events[1:4] == [Heartbeat()] * 3


def test_bench_broker_command_runs_against_a_given_activemq(activemq: Any) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from msgbus.cli.main import main; main()",
            "bench",
            "broker",
            "--activemq",
            activemq.stomp_url,
            "--count",
            "300",
            "--warmup",
            "0",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    for workload in ("non-persistent", "persistent"):
        ours, theirs, ratio, ours_cpu, theirs_cpu = rows[workload][1:]
        assert float(ours.replace(",", "")) > 0 and float(theirs.replace(",", "")) > 0
        assert ratio.endswith("x")
        # The embedded broker's CPU time is known (a number: 300 messages may take less
        # than one 10 ms clock tick); a given ActiveMQ URL has no pid here.
        assert float(ours_cpu) >= 0 and theirs_cpu == "n/a"
