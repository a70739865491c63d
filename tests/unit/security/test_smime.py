"""S/MIME sign (cryptography) and verify (openssl smime) with a throwaway CA."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from msgbus.errors import ConfigError
from msgbus.security import SignatureError, Signer, verify


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    other_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "UK"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eScience"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(path: Path, obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    if isinstance(obj, x509.Certificate):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key, key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("Test CA", ca_key, _name("Test CA"), ca_key, ca=True)
    other_ca = _cert("Other CA", other_key, _name("Other CA"), other_key, ca=True)
    cert = _cert("host/probe.example.org", key, ca.subject, ca_key, ca=False)
    return Pki(
        _pem(d / "ca.pem", ca),
        _pem(d / "cert.pem", cert),
        _pem(d / "key.pem", key),
        _pem(d / "other-ca.pem", other_ca),
        _pem(d / "other-key.pem", other_key),
    )


BODY = b"serviceURI: h.example.org\nmetricStatus: OK\ndetailsData: line 1\nline 2\nEOT\n"


def test_signed_body_verifies_and_names_the_signer(pki: Pki) -> None:
    signed = Signer(pki.cert, pki.key).sign(BODY)
    assert b"multipart/signed" in signed
    result = verify(signed, ca_file=pki.ca)
    assert result.content == BODY
    assert result.signer_dn == "/C=UK/O=eScience/CN=host/probe.example.org"


@pytest.mark.parametrize(
    "allowed",
    [
        "/C=UK/O=eScience/CN=host/probe.example.org",
        "CN=host/probe.example.org, O=eScience, C=UK",
        "C = UK, O = eScience, CN = host/probe.example.org",
    ],
)
def test_allowed_dns_accept_either_notation(pki: Pki, allowed: str) -> None:
    signed = Signer(pki.cert, pki.key).sign(BODY)
    assert verify(signed, ca_file=pki.ca, allowed_dns=[allowed]).content == BODY


def test_a_signer_not_listed_is_refused(pki: Pki) -> None:
    signed = Signer(pki.cert, pki.key).sign(BODY)
    with pytest.raises(SignatureError, match="not among the 1 allowed"):
        verify(signed, ca_file=pki.ca, allowed_dns=["/C=UK/O=eScience/CN=someone else"])


def test_a_tampered_body_is_refused(pki: Pki) -> None:
    signed = Signer(pki.cert, pki.key).sign(BODY)
    with pytest.raises(SignatureError, match="verification failed"):
        verify(signed.replace(b"metricStatus: OK", b"metricStatus: NO"), ca_file=pki.ca)


def test_a_signer_from_another_ca_is_refused(pki: Pki) -> None:
    signed = Signer(pki.cert, pki.key).sign(BODY)
    with pytest.raises(SignatureError):
        verify(signed, ca_file=pki.other_ca)


def test_an_unsigned_body_is_refused(pki: Pki) -> None:
    with pytest.raises(SignatureError):
        verify(BODY, ca_file=pki.ca)


def test_a_key_that_does_not_match_the_certificate_is_a_config_error(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="does not belong"):
        Signer(pki.cert, pki.other_key)


def test_missing_files_are_a_config_error(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the signing certificate"):
        Signer(tmp_path / "nope.pem", pki.key)


def test_verify_needs_a_ca() -> None:
    with pytest.raises(ConfigError, match="CA"):
        verify(BODY)
