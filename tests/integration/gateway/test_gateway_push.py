"""``msgbus gateway``'s push subscriptions with the unmodified argo-ams-library: the
gateway POSTs to a local HTTPS endpoint (a small ``http.server`` with the test PKI's
server certificate) in AMS's push format and acknowledges at the broker only after a
2xx: an endpoint failing for a while, even across a gateway restart, loses nothing;
``maxMessages``, the authorization header and ``base64Decode`` as AMS sends them;
``:verifyPushEndpoint``; a push subscription made a pull one again gives the rest to
pulls. What the library has no parameter for goes through its own ``do_post``."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsMessage,
    AmsServiceException,
    ArgoMessagingService,
)

from tests.fixtures.gateway import PROJECT, TOKEN, Gateway, start_gateway
from tests.fixtures.pipeline import wait_until
from tests.fixtures.pki import Pki

BROKERS = [{}, pytest.param({"broker": "activemq"}, marks=pytest.mark.activemq, id="activemq")]


class Endpoint:
    """An HTTPS push endpoint: answers 503 while ``failing``, else 200, after ``delay``
    seconds, and keeps every POST body and Authorization header it was sent; GET
    /ams_verificationHash answers ``verification``."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.failing = False
        self.delay = 0.0
        self.verification = ""
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint._lock:
                    endpoint.authorizations.append(self.headers.get("Authorization"))
                    if endpoint.failing:
                        endpoint.refused += 1
                    else:
                        endpoint.accepted.append(body)
                    code = 503 if endpoint.failing else 200
                time.sleep(endpoint.delay)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                found = self.path == "/ams_verificationHash"
                text = endpoint.verification.encode() if found else b""
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "plain/text")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/receive_here"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            bodies = list(self.accepted)
        return [m["message"] for b in bodies for m in b.get("messages", [b])]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def endpoint(pki: Pki) -> Iterator[Endpoint]:
    server = Endpoint(pki.server_cert, pki.server_key)
    yield server
    server.close()


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]  # ActiveMQ is shared by the session
    return f"pushed-{tag}", f"push-{tag}"


def _push_config(ams: ArgoMessagingService, sub: str, config: dict[str, Any]) -> Any:
    url = f"https://{ams.endpoint}/v1/projects/{PROJECT}/subscriptions/{sub}:modifyPushConfig"
    return ams.do_post(url, json.dumps({"pushConfig": config}), "sub_pushconfig")


def _sub_metrics(gateway: Gateway, sub: str) -> dict[str, Any]:
    answer = requests.get(
        f"{gateway.url}/v1/projects/{PROJECT}/subscriptions/{sub}:metrics",
        headers={"x-api-key": TOKEN}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return {m["metric"]: m["timeseries"][0]["value"] for m in answer.json()["metrics"]}


def _publish(ams: ArgoMessagingService, topic: str, texts: list[str]) -> list[str]:
    ids: list[str] = ams.publish(topic, [AmsMessage(data=t, attributes={"n": t}) for t in texts])[
        "messageIds"
    ]
    return ids


def _pushing_to_failing(
    ams: ArgoMessagingService, endpoint: Endpoint, texts: list[str], *, period: int, tries: int
) -> tuple[str, list[str]]:
    """A new topic's push subscription to ``endpoint``, failing, that was offered
    ``texts`` at least ``tries`` times; returns the subscription and the message ids."""
    topic, sub = _names()
    ams.create_topic(topic)
    endpoint.failing = True
    ams.create_sub(sub, topic, push_endpoint=endpoint.url, retry_policy_period=period)
    ids = _publish(ams, topic, texts)
    wait_until(lambda: endpoint.refused >= tries, 30, "pushes to the failing endpoint")
    return sub, ids


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
def test_a_failing_endpoint_loses_nothing_across_a_gateway_restart(
    ams_gateway: Gateway, endpoint: Endpoint, pki: Pki, tmp_path: Path
) -> None:
    ams = ams_gateway.ams()
    texts = [f"result {i}" for i in range(10)]
    sub, ids = _pushing_to_failing(ams, endpoint, texts, period=200, tries=3)
    shown = ams.get_sub(sub)
    assert shown["pushConfig"]["pushEndpoint"] == endpoint.url
    assert shown["pushConfig"]["retryPolicy"] == {"type": "linear", "period": 200}
    assert shown["pushStatus"].startswith("failing: 0 messages pushed")
    assert "answered 503" in shown["pushStatus"]
    metrics = _sub_metrics(ams_gateway, sub)
    assert metrics["subscription.push_messages"] == 0
    assert metrics["subscription.push_failures"] >= 3
    # Linear, 200 ms: a retry loop, not a tight one.
    seen = endpoint.refused
    time.sleep(1)
    assert 1 <= endpoint.refused - seen <= 7
    failures = _sub_metrics(ams_gateway, sub)["subscription.push_failures"]
    time.sleep(1.5)  # counts are written at most once a second

    # Killed while failing: nothing was acknowledged, the broker keeps it all.
    ams_gateway.process.kill()
    section = yaml.safe_load((tmp_path / "gateway.yaml").read_text())["gateway"]
    del section["project"]
    again = start_gateway(tmp_path, pki, ams_gateway.broker_url, section)
    try:
        endpoint.failing = False
        wait_until(lambda: len(endpoint.messages()) >= 10, 60, "all ten messages pushed")
        time.sleep(1)  # and nothing more
        got = endpoint.messages()
        assert sorted(m["messageId"] for m in got) == sorted(ids)  # no loss, no duplicate
        assert sorted(base64.b64decode(m["data"]).decode() for m in got) == sorted(
            f"result {i}" for i in range(10)
        )
        assert all(m["attributes"]["n"] == base64.b64decode(m["data"]).decode() for m in got)
        body = endpoint.accepted[0]
        assert body["subscription"] == f"projects/{PROJECT}/subscriptions/{sub}"
        metrics = _sub_metrics(again, sub)
        assert metrics["subscription.push_messages"] == 10
        assert metrics["subscription.push_failures"] >= failures  # kept across the restart
        assert again.ams().get_sub(sub)["pushStatus"].startswith("active: 10 messages pushed")
        again.ams().delete_sub(sub)
    finally:
        again.process.stop()


def test_max_messages_authorization_and_base64_decode_as_ams_pushes(
    ams_gateway: Gateway, endpoint: Endpoint
) -> None:
    ams = ams_gateway.ams()
    topic, sub = _names()
    ams.create_topic(topic)
    ams.create_sub(sub, topic)
    texts = [f"probe {i}" for i in range(7)]
    _publish(ams, topic, texts)
    config = {
        "pushEndpoint": endpoint.url,
        "maxMessages": 3,
        "retryPolicy": {"type": "slowstart"},
        "authorizationHeader": {"type": "autogen"},
        "base64Decode": True,
    }
    _push_config(ams, sub, config)
    wait_until(lambda: len(endpoint.messages()) >= 7, 30, "seven messages pushed")
    assert [len(b["messages"]) for b in endpoint.accepted] == [3, 3, 1]
    assert sorted(m["data"] for m in endpoint.messages()) == texts  # decoded
    shown = ams.get_sub(sub)["pushConfig"]
    value = shown["authorizationHeader"]["value"]
    assert shown["authorizationHeader"]["type"] == "autogen" and len(value) == 40
    assert set(endpoint.authorizations) == {value}

    # The same endpoint, one message per push, base64 kept, no authorization header.
    endpoint.accepted.clear()
    endpoint.authorizations.clear()
    _push_config(
        ams, sub, {"pushEndpoint": endpoint.url, "authorizationHeader": {"type": "disabled"}}
    )
    _publish(ams, topic, ["once more"])
    wait_until(lambda: len(endpoint.accepted) >= 1, 30, "one more message pushed")
    assert "messages" not in endpoint.accepted[0]
    assert base64.b64decode(endpoint.accepted[0]["message"]["data"]) == b"once more"
    assert endpoint.authorizations == [None]

    # AMS's ownership check: the endpoint must answer the subscription's hash.
    verify = f"https://{ams.endpoint}/v1/projects/{PROJECT}/subscriptions/{sub}"
    endpoint.verification = "not the hash"
    with pytest.raises(AmsServiceException) as refused:
        ams.do_post(f"{verify}:verifyPushEndpoint", "", "sub_pushconfig")
    assert refused.value.code == 401 and "verification failed" in refused.value.msg
    endpoint.verification = ams.get_sub(sub)["pushConfig"]["verificationHash"]
    ams.do_post(f"{verify}:verifyPushEndpoint", "", "sub_pushconfig")
    assert ams.get_sub(sub)["pushConfig"]["verified"] is True
    ams.delete_sub(sub)


def test_a_push_subscription_made_pull_again_gives_pulls_everything_not_pushed(
    ams_gateway: Gateway, endpoint: Endpoint
) -> None:
    ams = ams_gateway.ams()
    texts = [f"kept {i}" for i in range(5)]
    sub, _ = _pushing_to_failing(ams, endpoint, texts, period=100, tries=2)
    with pytest.raises(AmsServiceException) as refused:
        ams.pull_sub(sub, return_immediately=True)
    assert refused.value.code == 409 and "push subscription" in refused.value.msg
    assert refused.value.status == "CONFLICT"
    assert ams.pushconfig_sub(sub, None) == {}
    assert ams.get_sub(sub)["pushConfig"]["pushEndpoint"] == ""
    pulled: list[Any] = []
    deadline = time.monotonic() + 30
    while len(pulled) < 5 and time.monotonic() < deadline:
        batch = ams.pull_sub(sub, num=5)
        pulled += batch
        if batch:
            ams.ack_sub(sub, [ack for ack, _ in batch])
    assert sorted(m.get_data().decode() for _, m in pulled) == texts
    assert endpoint.accepted == []
    ams.delete_sub(sub)


def test_an_endpoint_whose_certificate_fails_verification_gets_nothing(
    ams_gateway: Gateway, pki: Pki
) -> None:
    wrong = Endpoint(pki.wrong_host_cert, pki.server_key)
    try:
        ams = ams_gateway.ams()
        topic, sub = _names()
        ams.create_topic(topic)
        ams.create_sub(sub, topic, push_endpoint=wrong.url, retry_policy_period=100)
        _publish(ams, topic, ["secret"])
        wait_until(
            lambda: "CERTIFICATE_VERIFY_FAILED" in ams.get_sub(sub)["pushStatus"],
            30,
            "the certificate refused",
        )
        assert wrong.accepted == [] and wrong.refused == 0
        ams.delete_sub(sub)
    finally:
        wrong.close()


def test_a_new_endpoint_gets_what_the_failing_one_did_not_take(
    ams_gateway: Gateway, endpoint: Endpoint, pki: Pki
) -> None:
    ams = ams_gateway.ams()
    texts = [f"moved {i}" for i in range(3)]
    sub, _ = _pushing_to_failing(ams, endpoint, texts, period=100, tries=2)
    hash_before = ams.get_sub(sub)["pushConfig"]["verificationHash"]
    other = Endpoint(pki.server_cert, pki.server_key)
    try:
        ams.pushconfig_sub(sub, other.url, retry_policy_period=100)
        wait_until(lambda: len(other.messages()) >= 3, 30, "the new endpoint to get all three")
        got = sorted(base64.b64decode(m["data"]).decode() for m in other.messages())
        assert got == texts
        shown = ams.get_sub(sub)["pushConfig"]
        assert shown["verificationHash"] != hash_before and shown["verified"] is False
        assert endpoint.accepted == []
        ams.delete_sub(sub)
    finally:
        other.close()


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
def test_a_push_config_change_answers_at_once_while_a_push_hangs(
    ams_gateway: Gateway, endpoint: Endpoint, pki: Pki
) -> None:
    ams = ams_gateway.ams()
    topic, sub = _names()
    ams.create_topic(topic)
    endpoint.delay = 8  # under the push timeout (10 s): its POST is in flight all along
    ams.create_sub(sub, topic, push_endpoint=endpoint.url, retry_policy_period=100)
    _publish(ams, topic, ["slow"])
    wait_until(lambda: len(endpoint.authorizations) >= 1, 30, "a push to the slow endpoint")
    other = Endpoint(pki.server_cert, pki.server_key)
    try:
        started = time.monotonic()
        ams.pushconfig_sub(sub, other.url, retry_policy_period=100)
        _publish(ams, topic, ["next"])  # and the gateway as a whole goes on
        took = time.monotonic() - started
        assert took < 3, f"modifyPushConfig and a publish took {took:.1f} s"
        # What the slow endpoint had in flight was not acknowledged: the new one gets it.
        wait_until(lambda: len(other.messages()) >= 2, 30, "both messages at the new endpoint")
        got = sorted(base64.b64decode(m["data"]).decode() for m in other.messages())
        assert got == ["next", "slow"]
        ams.delete_sub(sub)
    finally:
        other.close()
