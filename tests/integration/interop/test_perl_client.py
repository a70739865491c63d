"""Perl Net::Stomp (Debian libnet-stomp-perl, the perl-Gridmon lineage; STOMP 1.0) against
``msgbus broker serve`` and ActiveMQ: the shipped probe publisher, and through
net_stomp_steps.pl the library's own subscribe/send/ack/send_frame calls for a durable
subscription, a selector and transactions."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from msgbus.schema import ProbeResult, decode_body
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.integration.conformance.clients import Target
from tests.integration.interop.conftest import net_stomp

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("net_stomp_installed")]

SCRIPT = Path(__file__).parents[3] / "clients" / "perl" / "send-probe-result.pl"


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    # Bodies are never "0": Net::Stomp 0.61 sends that one empty (Frame::as_string's `||`).
    return [m["body"] for m in messages]


def test_perl_probe_result_is_decoded_by_msgbus(target: Target, name: str) -> None:
    queue = f"/queue/{name}"
    url = BrokerURL(host=target.host, port=target.port)
    with Connection(url) as conn:
        conn.subscribe(queue, id="perl", ack="client-individual")
        run = subprocess.run(
            [
                "perl",
                str(SCRIPT),
                "--broker",
                str(url),
                "--destination",
                queue,
                "--site",
                "PERL-SITE",
                "--host",
                "ce01.example.org",
                "--metric",
                "org.sam.CE-JobSubmit",
                "--status",
                "CRITICAL",
                "--summary",
                "job submission failed",
                "--id",
                "perl-fixed-id",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        frame = conn.receive(10)
        assert isinstance(frame, MessageFrame)
        conn.ack([frame])
    assert frame.headers["msgbus-id"] == "perl-fixed-id"
    [decoded] = decode_body(frame.body, frame.headers)
    message = decoded.message
    assert isinstance(message, ProbeResult), decoded
    assert message.siteName == "PERL-SITE"
    assert message.metricStatus.value == "CRITICAL"
    assert message.summaryData == "job submission failed"
    # The producer sent only serviceFlavour; the schema fills serviceType for consumers.
    assert message.serviceType == "CE"


def test_durable_subscription_gets_what_was_sent_while_away(target: Target, name: str) -> None:
    topic = f"/topic/{name}"
    # The same client-id and subscription name: over STOMP 1.0, ActiveMQ's UNSUBSCRIBE
    # takes the client id from activemq.subscriptionName (STOMP 1.1+ uses the connection's).
    durable = {"client-id": f"perl-{name}"}
    sub = {"destination": topic, "ack": "client", "activemq.subscriptionName": f"perl-{name}"}
    net_stomp(target, [["subscribe", {**sub, "receipt": "s"}], ["disconnect"]], durable)
    net_stomp(
        target,
        [["send_with_receipt", {"destination": topic, "body": f"m{i}", "persistent": "true"}]
         for i in range(3)],
    )  # fmt: skip
    back = net_stomp(
        target,
        [["subscribe", sub], ["receive", {"count": 3, "timeout": 15, "quiet": 1}],
         ["ack", 2, {"receipt": "a"}], ["disconnect"]],
        durable,
    )  # fmt: skip
    assert bodies(back) == ["m0", "m1", "m2"]
    # The cumulative ACK of the third took all three: nothing is left for the next session.
    again = net_stomp(
        target,
        [["subscribe", {**sub, "receipt": "s"}],
         ["receive", {"count": 0, "timeout": 1, "quiet": 1}], ["disconnect"]],
        durable,
    )  # fmt: skip
    assert again == []
    # ActiveMQ removes a durable subscription only while it is inactive.
    net_stomp(target, [["unsubscribe", {**sub, "receipt": "u"}], ["disconnect"]], durable)


def test_durable_subscription_removed_under_another_name_than_the_client_id(
    target: Target, name: str
) -> None:
    target.differs(
        {
            "activemq": "over STOMP 1.0 its UNSUBSCRIBE takes the client id from "
            "activemq.subscriptionName ('No durable subscription exists for clientID: <name>')"
        }
    )
    topic = f"/topic/{name}"
    durable = {"client-id": f"perl-{name}"}
    sub = {"destination": topic, "activemq.subscriptionName": "grid"}
    net_stomp(target, [["subscribe", {**sub, "receipt": "s"}], ["disconnect"]], durable)
    net_stomp(target, [["unsubscribe", {**sub, "receipt": "u"}], ["disconnect"]], durable)
    net_stomp(target, [["send_with_receipt", {"destination": topic, "body": "gone"}]])
    again = net_stomp(
        target,
        [["subscribe", {**sub, "receipt": "s"}],
         ["receive", {"count": 0, "timeout": 1, "quiet": 1}], ["disconnect"]],
        durable,
    )  # fmt: skip
    assert again == []  # removed: nothing was kept for it


# Net::Stomp's send_with_receipt takes the next frame for the receipt, so a session that
# subscribed and sends with receipts may take a MESSAGE for it: the tests below send in
# one session and receive in another, as such a client must.


def test_selector_subscription(target: Target, name: str) -> None:
    queue = f"/queue/{name}"
    net_stomp(
        target,
        [["send_with_receipt", {"destination": queue, "body": f"m{i}", "state": state}]
         for i, state in enumerate(["DONE", "RUNNING", "DONE", "ABORTED"])],
    )  # fmt: skip
    got = net_stomp(
        target,
        [["subscribe", {"destination": queue, "selector": "state = 'DONE'", "receipt": "s"}],
         ["receive", {"count": 2, "timeout": 10, "quiet": 1}], ["disconnect"]],
    )  # fmt: skip
    assert bodies(got) == ["m0", "m2"]
    assert [m["headers"]["state"] for m in got] == ["DONE", "DONE"]
    rest = net_stomp(
        target,
        [["subscribe", {"destination": queue, "receipt": "s"}],
         ["receive", {"count": 2, "timeout": 10, "quiet": 1}], ["disconnect"]],
    )  # fmt: skip
    assert bodies(rest) == ["m1", "m3"]


def test_transactions_commit_abort_and_send_transactional(target: Target, name: str) -> None:
    queue = f"/queue/{name}"
    net_stomp(
        target,
        [["frame", "BEGIN", {"transaction": "kept"}],
         ["send", {"destination": queue, "body": "kept", "transaction": "kept"}],
         ["frame", "BEGIN", {"transaction": "dropped"}],
         ["send", {"destination": queue, "body": "dropped", "transaction": "dropped"}],
         ["frame", "ABORT", {"transaction": "dropped", "receipt": "a"}],
         ["frame", "COMMIT", {"transaction": "kept", "receipt": "c"}],
         # Net::Stomp's own helper: BEGIN, SEND with a receipt, COMMIT.
         ["send_transactional", {"destination": queue, "body": "helper"}], ["disconnect"]],
    )  # fmt: skip
    got = net_stomp(
        target,
        [["subscribe", {"destination": queue, "ack": "auto", "receipt": "s"}],
         ["receive", {"count": 2, "timeout": 10, "quiet": 1}], ["disconnect"]],
    )  # fmt: skip
    assert bodies(got) == ["kept", "helper"]


@pytest.mark.parametrize("ending", ["COMMIT", "ABORT"])
def test_ack_in_a_transaction(target: Target, name: str, ending: str) -> None:
    queue = f"/queue/{name}"
    net_stomp(target, [["send_with_receipt", {"destination": queue, "body": "only"}]])
    net_stomp(
        target,
        [["subscribe", {"destination": queue, "ack": "client"}],
         ["receive", {"count": 1, "timeout": 10}],
         ["frame", "BEGIN", {"transaction": "t"}], ["ack", 0, {"transaction": "t"}],
         ["frame", ending, {"transaction": "t", "receipt": "end"}], ["disconnect"]],
    )  # fmt: skip
    # An aborted ACK leaves the message unacknowledged: the next session gets it again.
    again = net_stomp(
        target,
        [["subscribe", {"destination": queue, "ack": "auto", "receipt": "s"}],
         ["receive", {"count": 0, "timeout": 1, "quiet": 1.5}], ["disconnect"]],
    )  # fmt: skip
    assert bodies(again) == ([] if ending == "COMMIT" else ["only"])
