"""``msgbus bench publish``: msgbus.Publisher against a raw-socket sender and stomp.py.

Two workloads of 1 KB messages to a queue, each run by every sender in one process:

* non-persistent: raw sends without receipts (one at the end, to know the broker has
  them all) vs the Publisher, which confirms every message. The raw sender runs twice:
  with identical frames, and with a unique msgbus-id header per frame as the Publisher
  sends (each header costs ActiveMQ CPU; the ratio to both is printed).
* persistent: raw persistent sends without receipts (the limit) vs the Publisher
  with confirmed delivery, plus stop-and-wait receipts (what APEL SSM does) with
  stomp.py and with the raw sender, for evidence of what the window buys.
* files: the command users run, ``msgbus publish FILES`` as a whole process (start-up,
  reading, validating, encoding, confirmed persistent delivery, exit), on WLCG probe
  results in four files, vs the raw sender of the same encoded bodies, persistent,
  without receipts; and ``msgbus publish --pack 100 FILES`` against that sender and
  against a raw sender of the same bodies packed 100 per frame.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from msgbus.bench import stomp_py
from msgbus.bench.raw import RawClient, Receipts, raw_drain, raw_send, subscribe
from msgbus.config import MsgbusConfig
from msgbus.errors import ConnectError, TimeoutException
from msgbus.publish import Envelope, Publisher
from msgbus.stomp import serialize
from msgbus.stomp.frames import SendFrame
from msgbus.stomp.headers import ID_HEADER
from msgbus.transport.url import BrokerURL

__all__ = [
    "RAW",
    "RAW_WITH_ID",
    "Measurement",
    "probe_files",
    "run_publish_bench",
]

RAW = "raw socket, no receipts"
PACK = 100
"""Results per body in the packed files workload."""
RAW_WITH_ID = "raw socket + msgbus-id, no receipts"


@dataclass(frozen=True, slots=True)
class Measurement:
    workload: str
    sender: str
    count: int
    seconds: float
    baseline: str | None = None
    """"raw" for the bare raw sender of a workload, "headers" for the raw sender whose
    frames carry the Publisher's headers (a unique msgbus-id each)."""

    @property
    def rate(self) -> float:
        return self.count / max(self.seconds, 1e-9)


def _client(url: BrokerURL, timeout: float = 30.0) -> RawClient:
    password = url.password.get_secret_value() if url.password else None
    return RawClient(url.host, url.port, login=url.user, passcode=password, timeout=timeout)


def _raw_rate(
    url: BrokerURL,
    dest: str,
    count: int,
    body: bytes,
    persistent: bool,
    receipts: Receipts,
    window: int = 1000,
    id_header: str | None = None,
) -> float:
    with _client(url) as client:
        result = raw_send(
            client,
            dest,
            count,
            body,
            persistent=persistent,
            receipts=receipts,
            window=window,
            id_header=id_header,
        )
    return result.finished - result.started


def _empty(url: BrokerURL, dest: str, count: int) -> None:
    """Consume what a run left on its queue, so broker memory does not throttle the next."""
    with _client(url, timeout=5.0) as client:
        seen = subscribe(client, dest)
        with contextlib.suppress(TimeoutException):
            raw_drain(client, count, seen=seen)


def _publisher(config: MsgbusConfig, dest: str, count: int, body: bytes) -> float:
    with Publisher(config, spool=False) as pub:
        envelopes: Iterator[Envelope] = (Envelope(dest, body) for _ in range(count))
        started = time.monotonic()
        report = pub.send(envelopes)
        elapsed = time.monotonic() - started
    if report.confirmed != count:
        raise ConnectError(
            f"benchmark publisher confirmed {report.confirmed} of {count} messages: "
            f"{report.error or report.rejected}"
        )
    return elapsed


class _Receipts:
    """stomp.py calls a listener's ``on_<frame>`` methods it has; no base class needed."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: set[str] = set()

    def on_receipt(self, frame: Any) -> None:
        with self.cond:
            self.seen.add(frame.headers["receipt-id"])
            self.cond.notify_all()

    def wait(self, receipt: str, timeout: float) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: receipt in self.seen, timeout):
                raise TimeoutException(f"stomp.py got no receipt {receipt} in {timeout:g} s")
            self.seen.discard(receipt)


def _stomppy(
    url: BrokerURL, dest: str, count: int, body: bytes, persistent: bool, each: bool
) -> float:
    conn = stomp_py().Connection12([(url.host, url.port)], heartbeats=(0, 0))
    listener = _Receipts()
    conn.set_listener("receipts", listener)
    password = url.password.get_secret_value() if url.password else None
    conn.connect(url.user, password, wait=True)
    headers = {"persistent": "true" if persistent else "false"}
    started = time.monotonic()
    for i in range(count):
        if each or i == count - 1:
            conn.send(dest, body, headers={**headers, "receipt": f"r{i}"})
            listener.wait(f"r{i}", 60)
        else:
            conn.send(dest, body, headers=headers)
    elapsed = time.monotonic() - started
    conn.disconnect()
    return elapsed


def probe_files(base: Path, count: int, files: int = 4) -> list[bytes]:
    """``count`` WLCG probe results in ``files`` files under ``base``; returns each
    result's body as ``msgbus publish`` encodes it (the raw sender's frames)."""
    from msgbus.schema import ProbeResult, encode_body

    texts: list[list[str]] = [[] for _ in range(files)]
    bodies = []
    for i in range(count):
        result = ProbeResult.model_validate(
            {
                "serviceURI": f"ce{i % 97}.example.org", "hostName": f"ce{i % 97}.example.org",
                "serviceFlavour": "CE", "siteName": f"SITE-{i % 250}",
                "metricName": f"org.sam.Metric{i % 30}", "metricStatus": "OK",
                "summaryData": f"result {i}", "detailsData": "d" * 200,
                "timestamp": "2026-12-05T10:00:00Z",
            }
        )  # fmt: skip
        body, _ = encode_body(result, "wlcg")
        bodies.append(body)
        texts[i % files].append(body.decode())
    base.mkdir(parents=True, exist_ok=True)
    for n, chunk in enumerate(texts):
        (base / f"results-{n}.txt").write_text("".join(chunk))
    return bodies


def _cli_publish(url: BrokerURL, dest: str, files: list[Path], spool: Path, *extra: str) -> float:
    """``msgbus publish [EXTRA] FILES``, start to exit."""
    login = f"{url.user}:{url.password.get_secret_value()}@" if url.user and url.password else ""
    args = [
        sys.executable,
        "-m",
        "msgbus",
        "publish",
        "--broker",
        f"stomp://{login}{url.host}:{url.port}",
    ]
    args += ["--destination", dest, "--spool", str(spool), *extra, *map(str, files)]
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise ConnectError(f"msgbus publish failed: {done.stdout}{done.stderr}")
    return elapsed


def _raw_bodies(url: BrokerURL, dest: str, bodies: list[bytes]) -> float:
    """The same bodies, persistent, no receipts but the last (the limit)."""
    with _client(url) as client:
        started = time.monotonic()
        frames = [
            serialize(SendFrame({"destination": dest, "persistent": "true"}, body))
            for body in bodies[:-1]
        ]
        for start in range(0, len(frames), 512):
            client.send_bytes(b"".join(frames[start : start + 512]))
        last = {"destination": dest, "persistent": "true", "receipt": "last"}
        client.send_bytes(serialize(SendFrame(last, bodies[-1])))
        while not any(f.command == "RECEIPT" for f in client.read()):
            pass
        return time.monotonic() - started


def run_publish_bench(
    config: MsgbusConfig,
    count: int,
    size: int,
    *,
    slow_count: int | None = None,
    rounds: int = 3,
    progress: Callable[[int], None] | None = None,
) -> list[Measurement]:
    """Best-of-``rounds`` measurements (the first of each workload is the baseline).

    Every run gets a fresh queue, emptied afterwards so broker memory stays flat.
    """
    url = config.connection.brokers[0]
    body = b"x" * size
    prefix = f"/queue/msgbus.bench.publish.{int(time.time())}"
    slow = slow_count or max(1, count // 10)

    def pub(persistent: bool, confirm: str) -> Callable[[str], float]:
        options = config.publisher.model_copy(update={"persistent": persistent, "confirm": confirm})
        cfg = config.model_copy(update={"publisher": options})
        return lambda dest: _publisher(cfg, dest, count, body)

    plan: list[tuple[str, str, int, Callable[[str], float]]] = []
    for persistent, workload in ((False, "non-persistent"), (True, "persistent")):
        plan.append(
            (
                workload,
                RAW,
                count,
                partial(
                    _raw_rate, url, count=count, body=body, persistent=persistent, receipts="last"
                ),
            )
        )
        # The same frames the Publisher sends: each header costs the broker CPU.
        plan.append(
            (
                workload,
                RAW_WITH_ID,
                count,
                partial(
                    _raw_rate,
                    url,
                    count=count,
                    body=body,
                    persistent=persistent,
                    receipts="last",
                    id_header=ID_HEADER,
                ),
            )
        )
        for confirm in ("transaction", "cumulative", "receipt"):
            plan.append(
                (workload, f"Publisher, confirm={confirm}", count, pub(persistent, confirm))
            )
        plan.append(
            (
                workload,
                "raw socket, stop-and-wait receipts",
                slow,
                partial(
                    _raw_rate,
                    url,
                    count=slow,
                    body=body,
                    persistent=persistent,
                    receipts="each",
                    window=1,
                ),
            )
        )
        plan.append(
            (
                workload,
                "stomp.py, stop-and-wait receipts",
                slow,
                partial(_stomppy, url, count=slow, body=body, persistent=persistent, each=True),
            )
        )
    files_dir = Path(tempfile.mkdtemp(prefix="msgbus-bench-files-"))
    bodies = probe_files(files_dir, count)
    files = sorted(files_dir.glob("results-*.txt"))
    plan.append(
        (
            "files",
            "raw socket, same bodies, no receipts",
            count,
            partial(_raw_bodies, url, bodies=bodies),
        )
    )
    plan.append(
        (
            "files",
            "msgbus publish FILES (whole process)",
            count,
            lambda dest: _cli_publish(url, dest, files, files_dir / "spool"),
        )
    )
    # MSG publishers packed bulk results: measured against both the raw sender of the
    # bodies one by one (the same results delivered) and one of the same packed bodies.
    packed = [b"".join(bodies[i : i + PACK]) for i in range(0, len(bodies), PACK)]
    plan.append(
        (
            f"files, {PACK} per body",
            "raw socket, same packed bodies, no receipts",
            count,
            partial(_raw_bodies, url, bodies=packed),
        )
    )
    for workload in ("files", f"files, {PACK} per body"):
        plan.append(
            (
                workload,
                f"msgbus publish --pack {PACK} FILES (whole process)",
                count,
                lambda dest: _cli_publish(
                    url, dest, files, files_dir / "spool", "--pack", str(PACK)
                ),
            )
        )
    # Warm the broker's JIT and journal so the first measured sender is not penalised.
    warm = f"{prefix}.warmup"
    _raw_rate(url, warm, count, body, True, "last")
    _empty(url, warm, count)
    # Rounds interleave the senders, so load from elsewhere hits them alike; the best
    # round of each sender is reported.
    best: dict[int, float] = {}
    for round_no in range(rounds):
        for number, (_, sender, n, run) in enumerate(plan):
            dest = f"{prefix}.{round_no}.{number}"
            seconds = run(dest)
            _empty(url, dest, -(-n // PACK) if "pack" in sender else n)
            best[number] = min(seconds, best.get(number, seconds))
        if progress is not None:
            progress(round_no + 1)
    out = []
    for number, (workload, sender, n, _) in enumerate(plan):
        role = {
            RAW: "raw",
            RAW_WITH_ID: "headers",
            "raw socket, same bodies, no receipts": "raw",
            "raw socket, same packed bodies, no receipts": "raw",
        }.get(sender)
        out.append(Measurement(workload, sender, n, best[number], baseline=role))
    return out
