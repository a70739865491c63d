"""Message security: S/MIME signing and verification, distinguished names."""

from msgbus.security.dn import parse_dn, same_dn, slash_dn
from msgbus.security.smime import SIGNED_HEADER, SignatureError, Signer, Verified, verify

__all__ = [
    "SIGNED_HEADER",
    "SignatureError",
    "Signer",
    "Verified",
    "parse_dn",
    "same_dn",
    "slash_dn",
    "verify",
]
