"""Message security: S/MIME signing and verification, distinguished names.

Everything here needs ``cryptography``, the optional ``signing`` extra, so the
package's names are loaded on first use (PEP 562): a base install that never signs
nor verifies runs without it, and one that does gets a ConfigError naming the extra
instead of a ModuleNotFoundError.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from msgbus.errors import ConfigError

if TYPE_CHECKING:
    from msgbus.security.dn import parse_dn, same_dn, slash_dn
    from msgbus.security.smime import (
        SIGNED_HEADER,
        SignatureError,
        Signer,
        SignerNotAllowed,
        Verified,
        decrypt,
        encrypt,
        is_encrypted,
        verify,
    )

__all__ = [
    "SIGNED_HEADER",
    "SignatureError",
    "Signer",
    "SignerNotAllowed",
    "Verified",
    "decrypt",
    "encrypt",
    "is_encrypted",
    "load_smime",
    "parse_dn",
    "same_dn",
    "slash_dn",
    "verify",
]

_HOMES = {"parse_dn": "dn", "same_dn": "dn", "slash_dn": "dn"}


def _load(module: str) -> ModuleType:
    try:
        return importlib.import_module(f"msgbus.security.{module}")
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("cryptography"):
            raise
        raise ConfigError(
            "message signing and signature checks need the 'signing' extra "
            "(cryptography); install it with: pip install 'msgbus[signing]'"
        ) from exc


def load_smime() -> ModuleType:
    """``msgbus.security.smime``, or a ConfigError naming the extra it needs. (Not
    named ``smime``: importing the submodule sets that attribute of the package.)"""
    return _load("smime")


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_load(_HOMES.get(name, "smime")), name)
