"""``msgbus gateway`` with the unmodified argo-ams-library from PyPI as the client: what
it publishes reaches ``msgbus consume`` and the store, what it pulls comes back after
its ack deadline unless acknowledged, invalid bodies (on a topic with a schema) and bad
credentials are refused, X.509 logins get the token, and the API keeps to its own
OpenAPI document. What ARGO's own clients do is in tests/integration/interop."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsConnectionException,
    AmsMessage,
    AmsServiceException,
    ArgoMessagingService,
)

from tests.chaos.harness import probe_text
from tests.fixtures.gateway import PROJECT, TOKEN, Gateway, publish_over_stomp
from tests.fixtures.pipeline import run_msgbus
from tests.fixtures.pki import Pki


def _pull(ams: ArgoMessagingService, sub: str, n: int) -> list[tuple[str, AmsMessage]]:
    """Pull until ``n`` messages came: the broker hands a confirmed message to the
    gateway's subscription a moment after its receipt, which a loaded machine stretches."""
    got: list[tuple[str, AmsMessage]] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        got += ams.pull_sub(sub, num=n - len(got))
    return got


def _probes(n: int, tag: str) -> list[AmsMessage]:
    return [AmsMessage(data=probe_text(f"{tag} #{i}", 10), attributes={}) for i in range(n)]


def test_1000_results_published_through_the_gateway_are_pulled_and_stored(
    ams_gateway: Gateway, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_msgbus(["db", "init", "--store", store]).returncode == 0
    consume = ["consume", "--drain", "--broker", ams_gateway.broker_url, "--store", store,
               "--destination", "/topic/ams.probes", "--subscription", "store"]  # fmt: skip
    first = run_msgbus(consume)  # the durable subscription keeps what comes next
    assert first.returncode == 0, first.stdout
    ams = ams_gateway.ams()
    ams.create_topic("probes")
    ams.create_sub("pull-all", "probes", ackdeadline=60)
    ids: list[str] = []
    messages = _probes(1000, "gw")
    for start in range(0, 1000, 100):
        ids += ams.publish("probes", messages[start : start + 100])["messageIds"]
    assert len(set(ids)) == 1000
    # The same 1,000 pulled and acknowledged through a gateway subscription.
    pulled: list[str] = []
    deadline = time.monotonic() + 60
    while len(pulled) < 1000 and time.monotonic() < deadline:
        batch = ams.pull_sub("pull-all", num=100)  # waits for the first of a batch
        pulled += [m.get_msgid() for _, m in batch]
        if batch:
            ams.ack_sub("pull-all", [ack_id for ack_id, _ in batch])
    assert sorted(pulled) == sorted(ids)
    assert ams.pull_sub("pull-all", num=100, return_immediately=True) == []
    done = run_msgbus(consume)
    assert done.returncode == 0 and "stored 1000" in done.stdout, done.stdout
    engine = sa.create_engine(store)
    try:
        with engine.connect() as db:
            assert db.scalar(sa.text("SELECT count(DISTINCT msg_id) FROM probe_results")) == 1000
    finally:
        engine.dispose()


def test_pull_acknowledge_and_redelivery_after_the_ack_deadline(ams_gateway: Gateway) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("jobs")
    ams.create_sub("pullers", "jobs", ackdeadline=2)
    published = ams.publish("jobs", _probes(3, "pull"))["messageIds"]
    got = _pull(ams, "pullers", 3)
    assert [m.get_msgid() for _, m in got] == published
    assert got[0][1].get_data().startswith(b"serviceURI:")  # the library decodes base64
    ams.ack_sub("pullers", [ack_id for ack_id, _ in got[:2]])
    assert ams.pull_sub("pullers", num=10, return_immediately=True) == []
    time.sleep(2.5)  # the third was never acknowledged: it comes again
    [(again_id, again)] = ams.pull_sub("pullers", num=10, return_immediately=True)
    assert again.get_msgid() == published[2] and again_id != got[2][0]
    with pytest.raises(AmsServiceException) as late:  # its old ackId expired
        ams.ack_sub("pullers", [got[2][0]])
    assert late.value.code == 408
    ams.ack_sub("pullers", [again_id])
    time.sleep(2.5)
    assert ams.pull_sub("pullers", num=10, return_immediately=True) == []
    assert ams.get_sub("pullers")["ackDeadlineSeconds"] == 2
    ams.delete_sub("pullers")
    assert not ams.has_sub("pullers")


@pytest.mark.parametrize("ams_gateway", [{"topics": {"strict": {"schema": "wlcg"}}}], indirect=True)
def test_an_invalid_body_is_refused_naming_the_field_and_nothing_is_sent(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("strict")
    ams.create_sub("watch", "strict")
    bad = AmsMessage(data=probe_text("bad", 1).replace("metricStatus: OK", "metricStatus: SUPERB"))
    with pytest.raises(AmsServiceException) as refused:
        ams.publish("strict", [*_probes(1, "good"), bad])
    assert refused.value.code == 400 and "metricStatus" in refused.value.msg
    assert "Message 1 data is not valid" in refused.value.msg  # AMS's words, from 0
    assert ams.pull_sub("watch", num=5, return_immediately=True) == []  # not even the good one


def test_a_wrong_token_is_refused(ams_gateway: Gateway) -> None:
    with pytest.raises(AmsServiceException) as refused:
        ams_gateway.ams("not-a-token").create_topic("nope")
    assert refused.value.code == 401


def test_an_x509_login_gets_the_users_token(ams_gateway: Gateway, pki: Pki) -> None:
    # The library's own flow: authn on its port exchanges the certificate for a token.
    ams = ArgoMessagingService(
        endpoint="127.0.0.1", project=PROJECT, cert=str(pki.client_cert), key=str(pki.client_key),
        authn_port=ams_gateway.authn_port,
    )  # fmt: skip
    assert ams.token == TOKEN
    with pytest.raises(AmsConnectionException, match="SSLError"):  # refused in TLS
        ArgoMessagingService(
            endpoint="127.0.0.1", project=PROJECT, cert=str(pki.stranger_cert),
            key=str(pki.stranger_key), authn_port=ams_gateway.authn_port,
        )  # fmt: skip
    ams_gateway.ams(ams.token).create_topic("by-certificate")


@pytest.mark.parametrize(
    "ams_gateway", [{}, {"retention": {"enabled": True}}], ids=["plain", "retained"], indirect=True
)
def test_the_api_keeps_to_its_openapi_document(
    ams_gateway: Gateway, pki: Pki, tmp_path: Path
) -> None:
    cli = shutil.which("schemathesis")
    assert cli is not None, "schemathesis is in the test extra"
    # Methods no AMS route has: the others on a served path (PUT /v1/users/{user}, ...)
    # are AMS routes the gateway answers 501 on purpose (msgbus.gateway.unserved).
    (tmp_path / "schemathesis.toml").write_text(
        '[phases.coverage]\nunexpected-methods = ["OPTIONS", "PATCH", "TRACE"]\n'
    )
    done = subprocess.run(
        [cli, "run", f"{ams_gateway.url}/openapi.json", "--header", f"x-api-key: {TOKEN}",
         "--tls-verify", str(pki.ca), "--max-examples", "10", "--checks", "all",
         # Not AMS's: methods it never routes (OPTIONS) and its Allow lists; acceptance
         # of any schema-valid input (a publish to a topic that does not exist is a 404).
         "--exclude-checks", "positive_data_acceptance,unsupported_method,"
         "allow_header_conformance",
         "--request-timeout", "20"],
        capture_output=True, text=True, timeout=240, check=False,
        cwd=tmp_path,  # its config above; its .schemathesis/ cache stays out of the checkout
    )  # fmt: skip
    # The failures themselves (with a curl line each), not the warnings after them.
    failures = max(done.stdout.find("FAILURES"), 0)
    assert done.returncode == 0, done.stdout[failures : failures + 6000]


def test_results_a_stomp_publisher_sends_are_pulled_without_its_sync_record(
    ams_gateway: Gateway, tmp_path: Path
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("mixed")
    ams.create_sub("readers", "mixed")
    publish_over_stomp(ams_gateway, "mixed", tmp_path, "over STOMP #1", "over STOMP #2")
    got = _pull(ams, "readers", 2)
    time.sleep(0.5)  # the sync record, had it been kept, is here by now
    got += ams.pull_sub("readers", num=10, return_immediately=True)
    assert [m.get_data().split(b"\n")[6] for _, m in got] == [
        b"summaryData: over STOMP #1",
        b"summaryData: over STOMP #2",
    ]
