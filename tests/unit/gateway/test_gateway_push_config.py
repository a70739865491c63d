"""``pushConfig`` as the gateway reads it: AMS's fields and defaults, a new endpoint
unverified again with a new hash, and any JSON either taken or a 400."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.gateway.amserror import AmsError
from msgbus.gateway.push import PushConfig, parse_push_config

_URL = "https://receiver.example.org/push"


def test_defaults_are_amss_and_shown_as_ams_shows_them() -> None:
    config = parse_push_config({"pushEndpoint": _URL}, None)
    assert config is not None
    shown = config.shown()
    assert shown["maxMessages"] == 1 and shown["retryPolicy"] == {"type": "linear", "period": 3000}
    assert shown["authorizationHeader"]["type"] == "autogen"
    assert len(shown["authorizationHeader"]["value"]) == 40
    assert shown["verified"] is False and len(shown["verificationHash"]) == 40
    assert shown["base64Decode"] is False
    assert PushConfig(**config.state()) == config  # kept in state_dir as it is


def test_an_empty_config_is_a_pull_subscription() -> None:
    assert parse_push_config({}, None) is None
    assert parse_push_config({"pushEndpoint": ""}, None) is None


def test_the_same_endpoint_keeps_hash_verification_and_token_a_new_one_does_not() -> None:
    first = parse_push_config({"pushEndpoint": _URL}, None)
    assert first is not None
    verified = PushConfig(**{**first.state(), "verified": True})
    same = parse_push_config({"pushEndpoint": _URL, "maxMessages": 5}, verified)
    assert same is not None and same.verified and same.max_messages == 5
    assert same.verification_hash == first.verification_hash
    assert same.auth_value == first.auth_value
    moved = parse_push_config({"pushEndpoint": _URL + "2"}, verified)
    assert moved is not None and not moved.verified
    assert moved.verification_hash != first.verification_hash


_ENDPOINTS = [_URL, "http://x", "https://", "https://[", "https://h:99999", ""]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "pushEndpoint": st.sampled_from(_ENDPOINTS) | _JSON,
            "maxMessages": _JSON,
            "retryPolicy": _JSON
            | st.fixed_dictionaries({}, optional={"type": _JSON, "period": _JSON}),
            "authorizationHeader": _JSON | st.fixed_dictionaries({}, optional={"type": _JSON}),
            "base64Decode": _JSON,
            "type": st.sampled_from(["http_endpoint", "mattermost", ""]) | _JSON,
        },
    )
)
def test_any_json_is_taken_or_refused_with_a_400(raw: dict[str, Any]) -> None:
    try:
        parse_push_config(raw, None)
    except AmsError as exc:
        assert exc.code == 400 or (exc.code == 501 and raw.get("type") != "http_endpoint")


def test_an_http_endpoint_is_refused_as_ams_does() -> None:
    with pytest.raises(AmsError, match="valid https url"):
        parse_push_config({"pushEndpoint": "http://receiver.example.org/push"}, None)


def test_a_mattermost_push_is_refused_not_taken_for_a_pull_subscription() -> None:
    with pytest.raises(AmsError, match="mattermost is not served") as refused:
        parse_push_config({"type": "mattermost", "mattermostUrl": "https://m.example.org"}, None)
    assert refused.value.code == 501
