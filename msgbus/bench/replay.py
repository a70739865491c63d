"""The cost of the gateway's retention log (``gateway.retention``, AMS replay), for
``msgbus bench gateway``: the same bodies published through a gateway without the log and
through one with it (timed until the log holds them all: its filling is part of the
cost), then pulled and acknowledged through each, ``batch`` per request, with one pull
subscription on the topic in both."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from msgbus.errors import TimeoutException

__all__ = ["publish_and_pull"]


def publish_and_pull(
    port: int, cert: Path, tag: str, bodies: list[bytes], batch: int, *, retained: bool
) -> tuple[float, float]:
    """Seconds to publish ``bodies`` (into the log too, if ``retained``), and to pull and
    acknowledge them all."""
    import requests

    base, tls = f"https://127.0.0.1:{port}/v1/projects/bench", str(cert)
    topic, sub = f"{base}/topics/{tag}", f"{base}/subscriptions/{tag}"
    with requests.Session() as http:
        http.headers["x-api-key"] = "bench"
        http.put(topic, verify=tls).raise_for_status()
        body: dict[str, Any] = {"topic": f"projects/bench/topics/{tag}", "ackDeadlineSeconds": 600}
        http.put(sub, json=body, verify=tls).raise_for_status()
        started = time.monotonic()
        for start in range(0, len(bodies), batch):
            messages: list[dict[str, Any]] = [
                {"data": base64.b64encode(b).decode("ascii")} for b in bodies[start : start + batch]
            ]
            http.post(
                f"{topic}:publish", json={"messages": messages}, verify=tls
            ).raise_for_status()
        while retained and _logged(http, sub, tls) < len(bodies):
            _give_up(started, "the retention log to hold every message")
            time.sleep(0.05)
        published = time.monotonic() - started
        started, got = time.monotonic(), 0
        while got < len(bodies):
            _give_up(started, f"pulls (got {got} of {len(bodies)})")
            answer = http.post(f"{sub}:pull", json={"maxMessages": batch}, verify=tls)
            received = answer.json()["receivedMessages"]
            if received:
                ack = {"ackIds": [received[-1]["ackId"]]}  # cumulative, as AMS's
                http.post(f"{sub}:acknowledge", json=ack, verify=tls).raise_for_status()
                got += len(received)
        pulled = time.monotonic() - started
        http.delete(sub, verify=tls).raise_for_status()
        http.delete(topic, verify=tls).raise_for_status()
    return published, pulled


def _logged(http: Any, sub: str, tls: str) -> int:
    answer = http.get(f"{sub}:offsets", verify=tls)
    answer.raise_for_status()
    return int(answer.json()["max"])


def _give_up(started: float, what: str) -> None:
    if time.monotonic() - started > 600:
        raise TimeoutException(f"the retention bench waited 600 s for {what}")
