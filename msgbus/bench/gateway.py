"""``msgbus bench gateway``: publishing through ``msgbus gateway`` (HTTPS, AMS JSON with
base64 bodies, validated, confirmed by the broker before the answer) against
publishing the same WLCG bodies straight over STOMP with msgbus.Publisher (persistent,
confirmed), to topics of the same broker in the same run. The gateway runs in this
process on its own thread (uvicorn, TLS with a throw-away certificate); the client is
one keep-alive HTTPS session that publishes ``batch`` messages per request, as
argo-ams-library users do.

Push: the same bodies, published over STOMP to a topic with a push subscription while
its push is off, then pushed (``maxMessages`` = ``batch``) to an HTTPS endpoint in this
process once its ``pushConfig`` is set, timed until the endpoint has them all, against a
STOMP subscriber of its own durable subscription receiving and acknowledging them in
batches of ``batch`` (what the gateway's pusher does, without HTTP).

Retention: publish and pull through a gateway without the retention log and through one
with it (:mod:`msgbus.bench.replay`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from msgbus.bench.consume import probe_body
from msgbus.bench.replay import publish_and_pull
from msgbus.config import MsgbusConfig, load_config
from msgbus.consume.subscription import Subscription
from msgbus.errors import ConfigError, TimeoutException
from msgbus.network.activemq import free_port
from msgbus.publish import Envelope, Publisher
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.failover import opener
from msgbus.transport.url import BrokerURL

__all__ = ["GatewayResult", "run_gateway_bench"]


@dataclass(frozen=True, slots=True)
class GatewayResult:
    sender: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / max(self.seconds, 1e-9)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def _serving(config: MsgbusConfig, cert: Path, key: Path) -> Iterator[int]:
    """The gateway on a free port, on a thread of this process, until the block ends."""
    try:
        import uvicorn

        from msgbus.gateway.app import make_app
        from msgbus.gateway.service import Gateway
    except ImportError:
        raise ConfigError(
            "the gateway bench needs the gateway extra: pip install 'msgbus[gateway]'"
        ) from None
    port = free_port()
    service = Gateway(config)
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(service),
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, name="msgbus-bench-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise TimeoutException("the benchmark gateway did not start within 30 s")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        service.close()


def _through_gateway(port: int, cert: Path, topic: str, bodies: list[bytes], batch: int) -> float:
    import requests

    url = f"https://127.0.0.1:{port}/v1/projects/bench/topics/{topic}"
    with requests.Session() as http:
        http.headers["x-api-key"] = "bench"
        http.put(url, verify=str(cert)).raise_for_status()
        started = time.monotonic()
        for start in range(0, len(bodies), batch):
            messages: list[dict[str, Any]] = [
                {"attributes": {}, "data": base64.b64encode(b).decode("ascii")}
                for b in bodies[start : start + batch]
            ]
            answer = http.post(f"{url}:publish", json={"messages": messages}, verify=str(cert))
            answer.raise_for_status()
        return time.monotonic() - started


def _direct(config: MsgbusConfig, destination: str, bodies: list[bytes]) -> float:
    with Publisher(config, spool=False) as pub:
        started = time.monotonic()
        report = pub.send(Envelope(destination, body) for body in bodies)
        elapsed = time.monotonic() - started
    if report.confirmed != len(bodies):
        raise TimeoutException(f"the direct publisher confirmed {report.confirmed} messages")
    return elapsed


class _Sink:
    """An HTTPS push endpoint that counts the messages pushed to it."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.count, self.expected, self.done = 0, 0, threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sink.count += len(body.get("messages", [body]))
                if sink.count >= sink.expected:
                    sink.done.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per push: not for a benchmark's output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/push"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def expect(self, count: int) -> None:
        self.count, self.expected = 0, count
        self.done.clear()


def _pushed(
    config: MsgbusConfig, port: int, cert: Path, sink: _Sink, tag: str, bodies: list[bytes],
    batch: int,
) -> float:  # fmt: skip
    import requests

    base, tls = f"https://127.0.0.1:{port}/v1/projects/bench", str(cert)
    with requests.Session() as http:
        http.headers["x-api-key"] = "bench"
        http.put(f"{base}/topics/{tag}", verify=tls).raise_for_status()
        sub = f"{base}/subscriptions/{tag}"
        topic = {"topic": f"projects/bench/topics/{tag}"}
        http.put(sub, json=topic, verify=tls).raise_for_status()
        _direct(config, f"/topic/bench.gateway.{tag}", bodies)
        sink.expect(len(bodies))
        push: dict[str, Any] = {"pushEndpoint": sink.url, "maxMessages": batch}
        started = time.monotonic()
        http.post(
            f"{sub}:modifyPushConfig", json={"pushConfig": push}, verify=tls
        ).raise_for_status()
        if not sink.done.wait(600):
            raise TimeoutException(f"the gateway pushed {sink.count} of {len(bodies)} messages")
        elapsed = time.monotonic() - started
        http.delete(sub, verify=tls).raise_for_status()
    return elapsed


def _subscribed(config: MsgbusConfig, tag: str, bodies: list[bytes], batch: int) -> float:
    sub = Subscription(f"/topic/bench.gateway.{tag}", f"bench.{tag}")
    settings = config.connection
    url = BrokerURL.model_validate(settings.brokers[0])
    with opener(settings, sub.client_id(settings.client_id))(url) as conn:
        sub.subscribe(conn, 1000)
        _direct(config, f"/topic/bench.gateway.{tag}", bodies)
        got, started = 0, time.monotonic()
        while got < len(bodies):
            frames: list[MessageFrame] = []
            while len(frames) < min(batch, len(bodies) - got):
                frame = conn.receive(30)
                if frame is None:
                    raise TimeoutException(f"the STOMP subscriber received {got} messages")
                if isinstance(frame, MessageFrame):
                    frames.append(frame)
            conn.ack(frames)
            got += len(frames)
        elapsed = time.monotonic() - started
        sub.remove(conn, subscribed=True)
    return elapsed


def run_gateway_bench(
    broker_url: str, count: int, batch: int, rounds: int
) -> Iterator[tuple[int, list[GatewayResult]]]:
    """Per round: (round, [direct STOMP publish, gateway publish, STOMP subscriber,
    gateway push, publish without and with the retention log, pull without and with
    it]), each of ``count`` persistent ~1 KB WLCG probe results."""
    with tempfile.TemporaryDirectory(prefix="msgbus-bench-gateway-") as tmp:
        cert, key = _self_signed(Path(tmp))
        settings: dict[str, Any] = {
            "connection": {"brokers": [broker_url]},
            "gateway": {
                "project": "bench",
                "topic_prefix": "/topic/bench.gateway.",
                "users": {"bench": {"token": "bench"}},
                "state_dir": str(Path(tmp) / "state"),
                "push_ca": str(cert),
            },
        }
        config = load_config(overrides=settings)
        settings["gateway"] |= {"retention": {"enabled": True}, "state_dir": f"{tmp}/log"}
        retained = load_config(overrides=settings)
        bodies = [probe_body(1024, i)[0] for i in range(count)]
        with (
            _Sink(cert, key) as sink,
            _serving(config, cert, key) as port,
            _serving(retained, cert, key) as log_port,
        ):
            for round_no in range(1, rounds + 1):
                # Topics of the round's own and no subscriber on either: the broker does
                # the same work for both senders (confirms, keeps nothing).
                tag = f"r{round_no}.{time.time_ns()}"
                direct = _direct(config, f"/topic/bench.gateway.{tag}-direct", bodies)
                through = _through_gateway(port, cert, tag, bodies, batch)
                read = _subscribed(config, f"{tag}-read", bodies, batch)
                pushed = _pushed(config, port, cert, sink, f"{tag}-push", bodies, batch)
                plain = publish_and_pull(port, cert, f"{tag}-plain", bodies, batch, retained=False)
                logged = publish_and_pull(
                    log_port, cert, f"{tag}-log", bodies, batch, retained=True
                )
                yield (
                    round_no,
                    [
                        GatewayResult("msgbus.Publisher over STOMP", count, direct),
                        GatewayResult(f"msgbus gateway, {batch} per request", count, through),
                        GatewayResult(f"STOMP subscriber, acks of {batch}", count, read),
                        GatewayResult(f"gateway push, maxMessages {batch}", count, pushed),
                        GatewayResult("gateway publish, 1 sub, no log", count, plain[0]),
                        GatewayResult("gateway publish, 1 sub, into the log", count, logged[0]),
                        GatewayResult(f"gateway pull+ack {batch}, no log", count, plain[1]),
                        GatewayResult(f"gateway pull+ack {batch}, the log", count, logged[1]),
                    ],
                )
