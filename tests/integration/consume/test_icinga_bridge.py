"""``msgbus nagios-bridge --icinga-url`` against a real Icinga 2 (Debian's icinga2) run by
the test (tests/fixtures/icinga.py): results published on the bus must show in Icinga's
API as the services' last check results; what Icinga refuses is reported, not retried;
what it did not take is not acknowledged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread
from msgbus.schema.models import ProbeResult
from msgbus.schema.wlcg import encode_wlcg
from tests.fixtures.icinga import HOST, PASSIVE_OFF, SERVICES, Icinga
from tests.fixtures.pipeline import run_msgbus
from tests.fixtures.results import probe

WHEN = "2026-12-05T10:00:00Z"  # 1796464800


@pytest.fixture
def broker_url() -> Iterator[str]:
    with BrokerThread(BrokerConfig(port=0)) as broker:
        yield broker.url


def _result(service: str, status: str, summary: str, **extra: str) -> ProbeResult:
    return probe("MY-SITE", service, status, WHEN, hostName=HOST, summaryData=summary, **extra)


def _publish(tmp_path: Path, url: str, destination: str, *results: ProbeResult) -> None:
    path = tmp_path / f"results-{uuid.uuid4().hex[:6]}.txt"
    path.write_text(encode_wlcg(list(results)))
    done = run_msgbus(
        ["publish", "--spool", str(tmp_path / "spool"), "--broker", url, "--destination",
         destination, "--type", "ProbeResult", "--format", "wlcg", str(path)]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def _bridge(
    icinga: Icinga,
    url: str,
    destination: str,
    *args: str,
    password: str | None = None,
    ca: bool = True,
) -> str:
    """``exit N`` and the output of the bridge to ``icinga`` run to completion (the
    password from the environment, as a service unit would pass it)."""
    done = run_msgbus(
        ["nagios-bridge", "--broker", url, "--destination", destination,
         "--icinga-url", icinga.url, "--icinga-user", icinga.user,
         *(["--icinga-ca", str(icinga.ca)] if ca else []), *args],
        env={"MSGBUS_ICINGA__PASSWORD": password or icinga.password},
    )  # fmt: skip
    return f"exit {done.returncode}\n{done.stdout}"


def test_results_from_the_bus_show_in_icinga(
    tmp_path: Path, icinga: Icinga, broker_url: str
) -> None:
    destination = f"/queue/probes.{uuid.uuid4().hex[:8]}"
    _publish(
        tmp_path, broker_url, destination,
        _result(SERVICES[0], "CRITICAL", "job submission failed",
                detailsData="CE said: queue closed\nretry later",
                performanceData="time=12.5s;10;20 'jobs queued'=3",
                gatheredAt="nagios.example.org"),
        _result(SERVICES[1], "WARNING", "slow"),
    )  # fmt: skip
    out = _bridge(icinga, broker_url, destination, "--count", "2", "--until", "60s")
    assert out.startswith("exit 0") and "submitted 2 check result" in out, out
    first = icinga.last_check_result(HOST, SERVICES[0])
    assert first["output"] == "job submission failed\nCE said: queue closed\nretry later"
    # Icinga 2.13 keeps the submitted exit_status as the result's state.
    assert (first["state"], first["active"]) == (2, False)
    assert first["performance_data"] == ["time=12.5s;10;20", "'jobs queued'=3"]
    assert first["check_source"] == "nagios.example.org"
    assert first["execution_start"] == first["execution_end"] == 1796464800
    second = icinga.last_check_result(HOST, SERVICES[1])
    assert (second["output"], second["state"]) == ("slow", 1)


def test_what_icinga_refuses_is_reported_once_and_the_others_go_through(
    tmp_path: Path, icinga: Icinga, broker_url: str
) -> None:
    destination = f"/queue/probes.{uuid.uuid4().hex[:8]}"
    _publish(tmp_path, broker_url, destination, _result("org.sam.nosuch", "CRITICAL", "lost"))
    _publish(tmp_path, broker_url, destination, _result(PASSIVE_OFF, "CRITICAL", "off"))
    _publish(tmp_path, broker_url, destination, _result(SERVICES[0], "OK", "fine"))
    out = _bridge(icinga, broker_url, destination, "--count", "1", "--until", "60s")
    assert out.startswith("exit 0") and "submitted 1 check result" in out, out
    assert f"service {HOST}!org.sam.nosuch" in out and "answered 404" in out, out
    assert f"service {HOST}!{PASSIVE_OFF}" in out and "Passive checks are disabled" in out, out
    assert icinga.last_check_result(HOST, SERVICES[0])["output"] == "fine"
    # Refused messages were acknowledged: a second bridge finds nothing left.
    again = _bridge(icinga, broker_url, destination, "--until", "3s")
    assert again.startswith("exit 0") and "submitted 0 check result" in again, again


def test_wrong_credentials_or_ca_stop_the_bridge_and_the_result_waits(
    tmp_path: Path, icinga: Icinga, broker_url: str
) -> None:
    destination = f"/queue/probes.{uuid.uuid4().hex[:8]}"
    _publish(tmp_path, broker_url, destination, _result(SERVICES[0], "WARNING", "kept"))
    out = _bridge(icinga, broker_url, destination, "--until", "60s", password="wrong")
    assert out.startswith("exit 1") and "answered 401" in out, out
    assert "the API user or password is wrong" in out, out
    out = _bridge(icinga, broker_url, destination, "--until", "60s", ca=False)
    assert out.startswith("exit 1") and "certificate is not trusted" in out, out
    assert "--icinga-ca" in out, out
    out = _bridge(icinga, broker_url, destination, "--count", "1", "--until", "60s")
    assert out.startswith("exit 0") and "submitted 1 check result" in out, out
    assert icinga.last_check_result(HOST, SERVICES[0])["output"] == "kept"


def test_an_icinga_that_is_away_is_retried_and_nothing_is_acknowledged(
    tmp_path: Path, icinga: Icinga, broker_url: str
) -> None:
    destination = f"/queue/probes.{uuid.uuid4().hex[:8]}"
    _publish(tmp_path, broker_url, destination, _result(SERVICES[1], "CRITICAL", "waited"))
    icinga.stop()
    out = _bridge(icinga, broker_url, destination, "--until", "4s")
    assert out.startswith("exit 1") and "did not answer" in out, out
    assert "stays unacknowledged" in out and "next attempt in" in out, out
    icinga.start()
    out = _bridge(icinga, broker_url, destination, "--count", "1", "--until", "60s")
    assert out.startswith("exit 0") and "submitted 1 check result" in out, out
    assert icinga.last_check_result(HOST, SERVICES[1])["output"] == "waited"
