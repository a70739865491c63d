"""The gateway's per-topic checks in the typed configuration, and the one-line way out
for configurations that still say ``validate_bodies``."""

from __future__ import annotations

import pytest

from msgbus.config import load_config
from msgbus.errors import ConfigError


def test_a_topic_named_with_schema_wlcg_is_validated_and_others_take_any_bytes() -> None:
    settings = load_config(overrides={"gateway": {"topics": {"probes": {"schema": "wlcg"}}}})
    assert settings.gateway.topics["probes"].schema_ == "wlcg"
    assert "results" not in settings.gateway.topics


@pytest.mark.parametrize(
    ("value", "instead"),
    [(True, "topics: {probes: {schema: wlcg}}"), (False, "remove it")],
)
def test_validate_bodies_is_refused_saying_what_to_write_instead(value: bool, instead: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(overrides={"gateway": {"validate_bodies": value}})
    message = str(refused.value)
    assert "gateway.validate_bodies is gone" in message and instead in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "topics",
    [
        {"probes": {"schema": "avro"}},
        {"no/slash": {"schema": "wlcg"}},
        {"probes": {"schemas": "wlcg"}},
    ],
)
def test_an_unknown_schema_or_topic_name_is_a_configuration_error(
    topics: dict[str, object],
) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.topics"):
        load_config(overrides={"gateway": {"topics": topics}})
