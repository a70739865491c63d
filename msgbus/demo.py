"""``msgbus demo``: the whole pipeline on one machine, no Java, no setup.

Embedded broker -> simulated site probes (Publisher) -> durable subscription
(Consumer) -> SQLite, then a table of what arrived. Everything runs in this process
on background threads; the data stays in the SQLite file for a look afterwards.
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from msgbus.broker.config import BrokerConfig
from msgbus.broker.server import BrokerThread
from msgbus.config import MsgbusConfig
from msgbus.consume.consumer import Consumer
from msgbus.errors import MsgbusError
from msgbus.publish.publisher import Publisher
from msgbus.schema import ProbeResult, build_message, format_timestamp
from msgbus.store.database import Store
from msgbus.store.queries import ResultRow, latest_results, status_counts

__all__ = ["DemoReport", "run_demo"]

DEMO_DESTINATION = "/topic/grid.probe.metricOutput.EGEE.msgbus-demo"
SITES = ("CERN-PROD", "FZK-LCG2", "IN2P3-CC", "RAL-LCG2", "INFN-T1")
METRICS = {
    "org.sam.CE-JobSubmit": "CE",
    "org.sam.SRM-Put": "SRM",
    "org.nagios.Load": "WN",
    "org.nagios.Disk": "WN",
}
# Mostly healthy sites with the odd failure, as a real grid looks.
STATUS_WEIGHTS = {"OK": 0.75, "WARNING": 0.12, "CRITICAL": 0.09, "UNKNOWN": 0.04}
_POLL = 0.05


@dataclass
class DemoReport:
    broker_url: str
    store_url: str
    published: int = 0
    stored: int = 0
    first_row_after: float | None = None
    latest: list[ResultRow] = field(default_factory=list)
    by_site: dict[str, dict[str, int]] = field(default_factory=dict)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def simulated_results(rng: random.Random, round_no: int) -> list[ProbeResult]:
    """One round of probe results: every metric at every site."""
    now = format_timestamp(datetime.now(timezone.utc))
    statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
    results = []
    for site in SITES:
        for metric, flavour in METRICS.items():
            status = rng.choices(statuses, weights)[0]
            host = f"{flavour.lower()}01.{site.lower()}.example.org"
            results.append(
                build_message(
                    ProbeResult,
                    {
                        "serviceURI": host,
                        "hostName": host,
                        "serviceFlavour": flavour,
                        "siteName": site,
                        "metricName": metric,
                        "metricStatus": status,
                        "summaryData": f"{status}: simulated check, round {round_no}",
                        "timestamp": now,
                        "voName": "ops",
                    },
                )
            )
    return results


def run_demo(
    *,
    duration: float = 5.0,
    port: int = 61613,
    db_path: Path = Path("msgbus-demo.db"),
    seed: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the pipeline for ``duration`` seconds and report what was stored."""
    started = time.monotonic()
    say = on_progress or (lambda _text: None)
    rng = random.Random(seed)
    host = "127.0.0.1"
    broker = BrokerThread(
        BrokerConfig(host=host, port=port if _port_free(host, port) else 0)
    ).start()
    with tempfile.TemporaryDirectory(prefix="msgbus-demo-") as scratch:
        config = MsgbusConfig(
            name="demo",
            connection={"brokers": [broker.url], "connect_timeout": 5},
            publisher={
                "destination": DEMO_DESTINATION,
                "spool_dir": Path(scratch) / "spool",
                "window": 64,
            },
            consumer={
                "destination": DEMO_DESTINATION,
                "subscription": "msgbus-demo",
                "batch": 100,
                "max_wait": 0.2,
            },
            store_url=f"sqlite:///{db_path}",
        )
        store = Store(config.store_url)
        store.init()
        report = DemoReport(broker_url=broker.url, store_url=config.store_url)
        say(f"embedded broker on {broker.url}, storing into {db_path}")
        consumer = Consumer(config, store=store)
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                consumer.run()
            except BaseException as exc:  # reported on the main thread
                failure.append(exc)

        consumer_thread = threading.Thread(target=consume, name="msgbus-demo-consumer")
        consumer_thread.start()
        try:
            _wait_until(
                lambda: consumer.stats()["state"] == "running" or bool(failure),
                10,
                "the consumer to subscribe",
            )
            if failure:
                raise failure[0]
            with Publisher(config) as publisher:
                round_no = 0
                while time.monotonic() - started < duration:
                    round_no += 1
                    sent = publisher.publish(simulated_results(rng, round_no))
                    sent.raise_for_failures()
                    report.published += sent.accepted
                    if report.first_row_after is None and consumer.stats()["stored"]:
                        report.first_row_after = time.monotonic() - started
                    time.sleep(0.5)
            say(f"published {report.published} probe results; waiting for the consumer")
            _wait_until(
                lambda: consumer.stats()["stored"] >= report.published,
                10,
                "the consumer to store every published result",
            )
            if report.first_row_after is None and consumer.stats()["stored"]:
                report.first_row_after = time.monotonic() - started
        finally:
            consumer.stop()
            consumer_thread.join(30)
            broker.stop()
        if failure:
            raise failure[0]
        report.stored = int(consumer.stats()["stored"])
        report.latest = latest_results(store)
        report.by_site = status_counts(store)
        store.close()
    return report


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise MsgbusError(
                f"the demo waited {timeout:g} s for {what} in vain; the machine may be "
                "overloaded: try again when it is quieter"
            )
        time.sleep(_POLL)
