"""Distinguished names in both notations grid tools print.

The legacy slash form ``/C=UK/O=eScience/CN=host/a.example.org`` (OpenSSL 1.0, grid
mapfiles) and the comma form, which comes in two orders: OpenSSL 1.1+ prints
``C = UK, O = eScience, CN = x`` (same order as the slash form), RFC 4514 prints
``CN=x,O=eScience,C=UK`` (reversed). A comma form is therefore compared in both
orders (apel/apel #278).
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = ["parse_dn", "same_dn", "slash_dn"]

RDN = tuple[tuple[str, str], ...]

_ALIASES = {"E": "EMAILADDRESS", "EMAIL": "EMAILADDRESS", "UID": "USERID"}
# A slash starts a new attribute only when "KEY=" follows: "CN=host/a.example.org" is one.
_SLASH_SPLIT = re.compile(r"/(?=[A-Za-z][A-Za-z0-9.]*\s*=)")
_COMMA_SPLIT = re.compile(r"(?<!\\)[,;]\s*(?=[A-Za-z][A-Za-z0-9.]*\s*=)")
_SHORT_NAMES = {NameOID.EMAIL_ADDRESS: "emailAddress", NameOID.USER_ID: "UID"}


def _pair(part: str, dn: str) -> tuple[str, str]:
    key, eq, value = part.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"{dn!r} is not a distinguished name: {part!r} lacks KEY=value")
    name = key.strip().upper()
    return _ALIASES.get(name, name), value.strip().replace("\\,", ",")


def parse_dn(dn: str) -> RDN:
    """Attributes of ``dn`` in written order, keys upper-cased (``E`` = emailAddress)."""
    text = dn.strip()
    parts = _SLASH_SPLIT.split(text[1:]) if text.startswith("/") else _COMMA_SPLIT.split(text)
    return tuple(_pair(p, dn) for p in parts if p.strip())


def _orders(dn: str) -> set[RDN]:
    parsed = parse_dn(dn)
    if dn.strip().startswith("/"):
        return {parsed}
    return {parsed, parsed[::-1]}


def same_dn(a: str, b: str) -> bool:
    """Whether two DNs, in either notation, name the same subject."""
    try:
        return bool(_orders(a) & _orders(b))
    except ValueError:
        return False


def slash_dn(name: x509.Name) -> str:
    """A certificate name in the grid's slash notation, in encoded order."""
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            key = _SHORT_NAMES.get(attr.oid) or attr.rfc4514_attribute_name
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            parts.append(f"/{key}={value}")
    return "".join(parts)
