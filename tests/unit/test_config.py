from __future__ import annotations

from pathlib import Path

import pytest

from msgbus.config import load_config
from msgbus.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MSGBUS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_when_nothing_is_configured() -> None:
    cfg = load_config()
    assert [str(b) for b in cfg.connection.brokers] == ["stomp://127.0.0.1:61613"]
    assert cfg.store_url == "sqlite:///msgbus.db"
    assert cfg.publisher.persistent is True


def test_precedence_flags_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "store_url: sqlite:///file.db\n"
        "consumer: {batch: 10, max_wait: 3}\n"
        "connection: {brokers: ['stomp://a:1', 'stomp://b:2'], failover: ordered}\n"
    )
    monkeypatch.setenv("MSGBUS_CONSUMER__BATCH", "20")
    monkeypatch.setenv("MSGBUS_CONNECTION__FAILOVER", "random")
    cfg = load_config(path, overrides={"consumer": {"batch": 30, "max_wait": None}})
    assert cfg.consumer.batch == 30  # flag wins
    assert cfg.connection.failover == "random"  # env beats file
    assert cfg.consumer.max_wait == 3  # file value kept where no flag was given
    assert cfg.store_url == "sqlite:///file.db"
    assert [b.host for b in cfg.connection.brokers] == ["a", "b"]


def test_msgbus_yaml_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "msgbus.yaml").write_text("site: CERN-PROD\n")
    assert load_config().site == "CERN-PROD"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("consumer: {batch: 0}\n", "consumer.batch"),
        ("connection: {brokers: ['http://x:1']}\n", "must start with stomp://"),
        ("nonsense_key: 1\n", "nonsense_key"),
        ("[1, 2]\n", "mapping at the top level"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_configuration_names_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("[", r"\[")):
        load_config(path)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "absent.yaml")


def test_secrets_stay_out_of_repr() -> None:
    cfg = load_config(
        overrides={"connection": {"brokers": ["stomp://probe:s3cret@mq:61613"], "passcode": "pw2"}}
    )
    assert "s3cret" not in repr(cfg)
    assert "pw2" not in repr(cfg)
    assert cfg.connection.brokers[0].password is not None
    assert cfg.connection.brokers[0].password.get_secret_value() == "s3cret"


def test_bad_environment_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGBUS_CONNECTION__BROKERS", "[not json")
    with pytest.raises(ConfigError, match="MSGBUS_"):
        load_config()
