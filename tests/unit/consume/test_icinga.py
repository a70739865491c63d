"""The mapping of a probe result to Icinga 2's process-check-result request, and what
each answer of Icinga means to the bridge (no network)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from msgbus.config import IcingaConfig
from msgbus.consume.icinga import IcingaApi, check_result_payload, refusal
from msgbus.consume.nagios import NameRule
from msgbus.errors import BridgeError, BridgeRefused, BridgeUnavailable, ConfigError, SchemaError
from tests.fixtures.results import probe


def test_a_result_becomes_a_passive_check_result_for_its_service() -> None:
    result = probe(
        "MY-SITE", "org.sam.CREAMCE-JobSubmit", "WARNING", "2026-12-05T10:00:00Z",
        hostName="ce1.example.org", summaryData="2 of 3 failed", detailsData="a: ok\nb: C:\\x",
        performanceData="time=1.5s;1;2;0 'jobs queued'=3", gatheredAt="nagios.example.org",
    )  # fmt: skip
    assert check_result_payload(result, NameRule()) == {
        "type": "Service",
        "service": "ce1.example.org!org.sam.CREAMCE-JobSubmit",
        "exit_status": 1,
        "plugin_output": "2 of 3 failed\na: ok\nb: C:\\x",  # JSON: no escaping of its own
        "performance_data": ["time=1.5s;1;2;0", "'jobs queued'=3"],
        "check_source": "nagios.example.org",
        "execution_start": 1796464800.0,
        "execution_end": 1796464800.0,
    }


@pytest.mark.parametrize(("status", "code"), [("OK", 0), ("UNKNOWN", 3), ("CRITICAL", 2)])
def test_statuses_and_the_name_rule_are_the_command_files(status: str, code: int) -> None:
    result = probe("MY-SITE", "org.sam.SRM-Put", status, "2026-12-05T10:00:00Z")
    payload = check_result_payload(result, NameRule("{siteName}", "{serviceFlavour} {metricName}"))
    assert payload["service"] == "MY-SITE!CREAM-CE org.sam.SRM-Put"
    assert (payload["exit_status"], payload["performance_data"]) == (code, [])
    assert payload["check_source"] == "msgbus"  # no gatheredAt


def test_a_name_the_rule_refuses_is_refused_for_icinga_too() -> None:
    result = probe("MY-SITE", "a;b", "OK", "2026-12-05T10:00:00Z")
    with pytest.raises(SchemaError, match="holds ';'"):
        check_result_payload(result, NameRule())


@pytest.mark.parametrize(
    ("status", "answer", "error", "says"),
    [
        (404, {"error": 404, "status": "No objects found."}, BridgeRefused, "No objects found"),
        (400, {"error": 400, "status": "Invalid exit_status"}, BridgeRefused, "Invalid"),
        # The object refused, not the user (Icinga 2.13 for a passive-off service).
        (403, {"results": [{"code": 403, "status": "Passive checks are disabled"}]},
         BridgeRefused, "Passive checks are disabled"),
        (500, {"results": [{"code": 409, "status": "conflict"}]}, BridgeRefused, "conflict"),
        (500, {"results": []}, BridgeUnavailable, "answered 500"),
        (503, {}, BridgeUnavailable, "no reason given"),
        (401, {}, BridgeError, "the API user or password is wrong"),
        (403, {"error": 403, "status": "No permission"}, BridgeError,
         '"actions/process-check-result"'),
    ],
)  # fmt: skip
def test_each_answer_of_icinga_is_one_kind_of_error(
    status: int, answer: dict[str, object], error: type[BridgeError], says: str
) -> None:
    exc = refusal("https://icinga:5665", "/v1/actions/process-check-result", status, answer)
    assert type(exc) is error and says in str(exc)


def test_the_configuration_needs_credentials_and_an_https_url() -> None:
    with pytest.raises(ValidationError, match="user and a password, or a client cert"):
        IcingaConfig(url="https://icinga:5665", user="msgbus")
    with pytest.raises(ValidationError, match="url"):
        IcingaConfig(url="http://icinga:5665", user="u", password="s3cret")
    config = IcingaConfig(url="https://icinga:5665", user="u", password="s3cret")
    assert "s3cret" not in repr(config)


def test_an_unreadable_ca_is_a_configuration_error() -> None:
    config = IcingaConfig(url="https://icinga:5665", user="u", password="p", ca="/nonexistent.crt")
    with pytest.raises(ConfigError, match="--icinga-ca"):
        IcingaApi(config)
