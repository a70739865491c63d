"""Signature checks in the consumer: S/MIME bodies signed with throwaway certificates,
verified by openssl against an allowlist of DNs, through a real ActiveMQ."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from msgbus import Consumer
from msgbus.config import load_config
from msgbus.security import Signer
from msgbus.store.database import Store
from tests.fixtures.activemq import ActiveMQ
from tests.integration.consume.conftest import (
    count,
    dead_letters,
    init_store,
    probe_body,
    publish,
)


def _issue(
    directory: Path, cn: str, ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "UK"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eScience"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_only_allowed_signers_are_stored(
    activemq: ActiveMQ, sqlite_url: str, tmp_path: Path
) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Grid CA")])
    ca = tmp_path / "ca.pem"
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(
            datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        )
        .not_valid_after(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    allowed = Signer(*_issue(tmp_path, "probe.example.org", ca_key, ca_name))
    stranger = Signer(*_issue(tmp_path, "other.example.org", ca_key, ca_name))
    init_store(sqlite_url)
    queue = f"/queue/signed-{uuid.uuid4().hex[:8]}"
    body, headers = probe_body(1024, 0)
    publish(
        activemq.stomp_url,
        queue,
        [
            (allowed.sign(body), headers),
            (body, headers),  # unsigned
            (stranger.sign(body), headers),
        ],
    )
    config = load_config(
        None,
        {
            "connection": {"brokers": [activemq.stomp_url]},
            # The allowlist uses the other DN notation (apel/apel #278).
            "consumer": {
                "destination": queue,
                "max_wait": 0.3,
                "allowed_signers": ["CN=probe.example.org, O=eScience, C=UK"],
                "signer_ca": str(ca),
            },
            "store_url": sqlite_url,
        },
    )
    consumer = Consumer(config)
    consumer.drain()
    consumer.run()
    assert count(sqlite_url) == 1
    store = Store(sqlite_url)
    with store.engine.connect() as conn:
        reasons = dict(conn.execute(sa.select(dead_letters.c.msg_id, dead_letters.c.reason)).all())
    store.close()
    assert set(reasons) == {"m1", "m2"}
    assert reasons["m1"].startswith("signature refused: signature verification failed")
    assert "/C=UK/O=eScience/CN=other.example.org is not among the 1 allowed" in reasons["m2"]
    assert count(sqlite_url, dead_letters) == 2
