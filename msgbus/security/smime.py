"""S/MIME signing of message bodies (as APEL SSM does), and verification.

:func:`sign` uses ``cryptography`` (detached ``multipart/signed``, text mode, the
format ``openssl smime -sign -text`` writes). :func:`verify` runs ``openssl smime
-verify`` (``cryptography`` cannot verify PKCS#7 signatures), checks the signer's
chain against a CA file or directory and returns the content and the signer's DN.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from msgbus.errors import ConfigError, SignatureError
from msgbus.security.dn import same_dn, slash_dn

__all__ = ["SIGNED_HEADER", "SignatureError", "Signer", "Verified", "verify"]

SIGNED_HEADER = "msgbus-signed"
"""STOMP header a publisher sets (value ``smime``) on a signed body."""

_OPENSSL_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Verified:
    content: bytes
    signer_dn: str
    """Signer subject in slash notation, e.g. ``/C=UK/O=eScience/CN=probe.example.org``."""


class Signer:
    """Signs bodies with one certificate and key, loaded (and checked) once."""

    def __init__(self, cert: Path, key: Path, password: bytes | None = None) -> None:
        try:
            self.cert = x509.load_pem_x509_certificate(cert.read_bytes())
            loaded = serialization.load_pem_private_key(key.read_bytes(), password)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot load the signing certificate {cert} or key {key}: {exc}; check "
                "the paths, the PEM format and the key password"
            ) from None
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigError(f"signing key {key} must be RSA or EC")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if loaded.public_key().public_bytes(der, spki) != self.cert.public_key().public_bytes(
            der, spki
        ):
            raise ConfigError(f"signing key {key} does not belong to certificate {cert}")
        self._key = loaded
        self.dn = slash_dn(self.cert.subject)

    def sign(self, body: bytes) -> bytes:
        """The body as an S/MIME detached-signature message."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(body)
            .add_signer(self.cert, self._key, hashes.SHA256())
            .sign(
                serialization.Encoding.SMIME,
                [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Text],
            )
        )


def verify(
    signed: bytes,
    *,
    ca_file: Path | None = None,
    ca_path: Path | None = None,
    allowed_dns: Iterable[str] | None = None,
    check_crl: bool = False,
) -> Verified:
    """Check an S/MIME body; return its content and the signer DN.

    The signer's chain must verify against ``ca_file``/``ca_path``; when
    ``allowed_dns`` is given (either DN notation) the signer must be one of them.
    Raises SignatureError otherwise.
    """
    if ca_file is None and ca_path is None:
        raise ConfigError("verifying signatures needs a CA file or CA directory")
    with tempfile.TemporaryDirectory(prefix="msgbus-verify-") as tmp:
        signer_pem = Path(tmp) / "signer.pem"
        args = ["openssl", "smime", "-verify", "-text", "-purpose", "any"]
        args += ["-signer", str(signer_pem)]
        if ca_file is not None:
            args += ["-CAfile", str(ca_file)]
        if ca_path is not None:
            args += ["-CApath", str(ca_path)]
        if check_crl:
            args.append("-crl_check_all")
        try:
            proc = subprocess.run(
                args, input=signed, capture_output=True, timeout=_OPENSSL_TIMEOUT, check=False
            )
        except FileNotFoundError:
            raise ConfigError("the openssl command is needed to verify signatures") from None
        except subprocess.TimeoutExpired:
            raise SignatureError(
                f"openssl did not verify the signature within {_OPENSSL_TIMEOUT:g} s"
            ) from None
        if proc.returncode != 0 or not signer_pem.exists():
            reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SignatureError(
                "signature verification failed: "
                + (reason[0] if reason else f"openssl exit status {proc.returncode}")
                + "; the body was altered or the signer is not trusted by the CA given"
            )
        cert = x509.load_pem_x509_certificate(signer_pem.read_bytes())
    dn = slash_dn(cert.subject)
    if allowed_dns is not None:
        allowed = list(allowed_dns)
        if not any(same_dn(dn, a) for a in allowed):
            raise SignatureError(
                f"signer {dn} is not among the {len(allowed)} allowed DN(s); add it to the "
                "allowed list if it should be trusted"
            )
    return Verified(_canonical_text(proc.stdout), dn)


def _canonical_text(content: bytes) -> bytes:
    # Text-mode S/MIME carries CRLF line ends; give back what the publisher signed.
    return content.replace(b"\r\n", b"\n")
