from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from msgbus.transport.url import BrokerURL


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "user"),
    [
        ("stomp://mq.example.org", "stomp", "mq.example.org", 61613, None),
        ("stomp+ssl://mq.example.org", "stomp+ssl", "mq.example.org", 61614, None),
        ("stomp://u%40x:p%3Aw@h:1234", "stomp", "h", 1234, "u@x"),
        ("stomp://[::1]:61613", "stomp", "::1", 61613, None),
    ],
)
def test_parse(url: str, scheme: str, host: str, port: int, user: str | None) -> None:
    parsed = BrokerURL.model_validate(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.user) == (scheme, host, port, user)
    assert parsed.tls is (scheme == "stomp+ssl")


def test_password_is_decoded_and_hidden() -> None:
    parsed = BrokerURL.model_validate("stomp://u:p%3Aw@h:1")
    assert parsed.password is not None and parsed.password.get_secret_value() == "p:w"
    assert "p:w" not in str(parsed) and "p:w" not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:1", "must start with stomp://"),
        ("stomp://:61613", "has no host"),
        ("stomp://h:notaport", "invalid port"),
        ("stomp://h:70000", "invalid port"),
    ],
)
def test_bad_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BrokerURL.model_validate(url)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
    port=st.integers(1, 65535),
    ssl=st.booleans(),
)
def test_str_round_trips(host: str, port: int, ssl: bool) -> None:
    url = BrokerURL(scheme="stomp+ssl" if ssl else "stomp", host=host, port=port)
    assert BrokerURL.model_validate(str(url)) == url
