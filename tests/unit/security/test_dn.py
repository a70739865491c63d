"""Distinguished names: slash and comma notations, both comma orders."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from msgbus.security import parse_dn, same_dn, slash_dn


def test_slash_values_may_contain_slashes() -> None:
    assert parse_dn("/C=UK/O=eScience/CN=host/a.example.org") == (
        ("C", "UK"),
        ("O", "eScience"),
        ("CN", "host/a.example.org"),
    )


def test_comma_notation_in_both_orders_matches_the_slash_one() -> None:
    slash = "/DC=org/DC=example/OU=People/CN=Jane Doe"
    assert same_dn(slash, "CN=Jane Doe,OU=People,DC=example,DC=org")  # RFC 4514
    assert same_dn(slash, "DC = org, DC = example, OU = People, CN = Jane Doe")  # OpenSSL 1.1
    assert not same_dn(slash, "CN=John Doe,OU=People,DC=example,DC=org")


def test_email_aliases_and_key_case() -> None:
    assert same_dn("/C=UK/emailAddress=a@b.org", "E=a@b.org, c=UK")


def test_escaped_comma_stays_in_the_value() -> None:
    assert parse_dn(r"CN=Doe\, Jane,O=Example") == (("CN", "Doe, Jane"), ("O", "Example"))


def test_garbage_is_not_the_same_as_anything() -> None:
    assert not same_dn("not a dn", "/C=UK")


def test_slash_dn_of_a_certificate_name() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CERN"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "x@cern.ch"),
            x509.NameAttribute(NameOID.COMMON_NAME, "probe"),
        ]
    )
    assert slash_dn(name) == "/C=CH/O=CERN/emailAddress=x@cern.ch/CN=probe"


_VALUE = (
    st.text(
        alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters=" .-_@"),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)
_KEYS = st.sampled_from(["C", "O", "OU", "CN", "DC", "L", "ST"])


@given(st.lists(st.tuples(_KEYS, _VALUE), min_size=1, max_size=6))
def test_any_dn_matches_itself_in_every_notation(attrs: list[tuple[str, str]]) -> None:
    slash = "".join(f"/{k}={v}" for k, v in attrs)
    forward = ", ".join(f"{k} = {v}" for k, v in attrs)
    rfc4514 = ",".join(f"{k}={v}" for k, v in reversed(attrs))
    assert parse_dn(slash) == tuple(attrs)
    assert same_dn(slash, forward)
    assert same_dn(slash, rfc4514)
    assert same_dn(forward, rfc4514)
