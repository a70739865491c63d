"""S/MIME signing of message bodies (as APEL SSM does), verification, encryption.

:func:`sign` uses ``cryptography`` (detached ``multipart/signed``, text mode, the
format ``openssl smime -sign -text`` writes). :func:`verify` runs ``openssl smime
-verify`` (``cryptography`` cannot verify PKCS#7 signatures), checks the signer's
chain against a CA file or directory and returns the content and the signer's DN.
:func:`encrypt` and :func:`decrypt` run ``openssl smime -encrypt -aes128`` and
``-decrypt`` as SSM's sender and receiver do (ssm/crypto.py).
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

__all__ = [
    "SIGNED_HEADER",
    "SignatureError",
    "Signer",
    "SignerNotAllowed",
    "Verified",
    "decrypt",
    "encrypt",
    "is_encrypted",
    "verify",
]

SIGNED_HEADER = "msgbus-signed"
"""STOMP header a publisher sets (value ``smime``) on a signed body."""

_OPENSSL_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Verified:
    content: bytes
    signer_dn: str
    """Signer subject in slash notation, e.g. ``/C=UK/O=eScience/CN=probe.example.org``."""


class SignerNotAllowed(SignatureError):
    """A valid signature by a signer outside the allowed DNs; carries what was verified,
    so a receiver can keep the content with the signer (SSM's reject queue does)."""

    def __init__(self, message: str, verified: Verified) -> None:
        super().__init__(message)
        self.verified = verified


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
        content = _openssl(args, signed, "signature verification failed")
        if not signer_pem.exists():
            raise SignatureError("signature verification failed: openssl named no signer")
        cert = x509.load_pem_x509_certificate(signer_pem.read_bytes())
    verified = Verified(_canonical_text(content), slash_dn(cert.subject))
    if allowed_dns is not None:
        allowed = list(allowed_dns)
        if not any(same_dn(verified.signer_dn, a) for a in allowed):
            raise SignerNotAllowed(
                f"signer {verified.signer_dn} is not among the {len(allowed)} allowed DN(s); "
                "add it to the allowed list if it should be trusted",
                verified,
            )
    return verified


def is_encrypted(body: bytes) -> bool:
    """Whether ``body`` is an S/MIME enveloped (encrypted) message; SSM's receiver tells
    them by these content types too."""
    head = body[:4096]
    return b"application/pkcs7-mime" in head or b"application/x-pkcs7-mime" in head


def encrypt(body: bytes, cert: Path) -> bytes:
    """``body`` (usually signed first) encrypted for ``cert``'s owner with AES-128, as
    SSM's sender does (``openssl smime -encrypt -aes128``)."""
    args = ["openssl", "smime", "-encrypt", "-aes128", str(cert)]
    return _openssl(args, body, "encryption failed")


def decrypt(body: bytes, cert: Path, key: Path) -> bytes:
    """An encrypted S/MIME body decrypted with this host's certificate and key."""
    args = ["openssl", "smime", "-decrypt", "-recip", str(cert), "-inkey", str(key)]
    return _openssl(args, body, "decryption failed")


def _openssl(args: list[str], data: bytes, failure: str) -> bytes:
    """Run an openssl command on ``data``; its output, or SignatureError starting with
    ``failure`` (the message's fault) / ConfigError (no openssl)."""
    try:
        proc = subprocess.run(
            args, input=data, capture_output=True, timeout=_OPENSSL_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise ConfigError("the openssl command is needed for S/MIME messages") from None
    except subprocess.TimeoutExpired:
        raise SignatureError(f"{failure}: openssl took over {_OPENSSL_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SignatureError(
            f"{failure}: "
            + (reason[0] if reason else f"exit status {proc.returncode}")
            + "; the message was altered, or is not for this certificate or CA"
        )
    return proc.stdout


def _canonical_text(content: bytes) -> bytes:
    # Text-mode S/MIME carries CRLF line ends; give back what the publisher signed.
    return content.replace(b"\r\n", b"\n")
