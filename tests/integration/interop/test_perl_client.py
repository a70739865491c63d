"""A Perl Net::STOMP probe (perl-Gridmon lineage) talks to msgbus through a real ActiveMQ."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from msgbus.schema import ProbeResult, decode_body
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.activemq import ActiveMQ
from tests.fixtures.services import require_service

SCRIPT = Path(__file__).parents[3] / "clients" / "perl" / "send-probe-result.pl"


def _net_stomp_available() -> bool:
    probe = subprocess.run(["perl", "-MNet::Stomp", "-e", "1"], capture_output=True, check=False)
    return probe.returncode == 0


def test_perl_probe_result_is_decoded_by_msgbus(activemq: ActiveMQ) -> None:
    require_service("Perl Net::Stomp (Debian libnet-stomp-perl)", _net_stomp_available)
    queue = f"/queue/interop.perl.{uuid.uuid4().hex}"
    with Connection(BrokerURL.model_validate(activemq.stomp_url)) as conn:
        conn.subscribe(queue, id="perl", ack="client-individual")
        run = subprocess.run(
            [
                "perl",
                str(SCRIPT),
                "--broker",
                activemq.stomp_url,
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
