"""A soak run of the whole pipeline as users run it: ``msgbus broker serve`` ->
a long-lived ``msgbus.Publisher`` at a steady rate -> ``msgbus consume`` into a store,
each a process of its own, with the resident memory of each sampled as it runs.

    python deploy/soak.py --minutes 60 --rate 500 \
        --store postgresql+psycopg://postgres@127.0.0.1/test

At the end it prints, per process, the RSS at the start of the second half, at the end,
and the growth per hour fitted over the second half (the first half includes warm-up:
caches, pools, the broker's store), then whether every confirmed message was stored once.
Exits 1 if one was not. A documented command, not a CI test: it runs for its minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from msgbus import Publisher
from msgbus.network.activemq import free_port, stomp_answers
from msgbus.schema import decode_body

_RESULT = (
    "serviceURI: ce1.example.org\nhostName: ce1.example.org\nserviceFlavour: CE\n"
    "siteName: {site}\nmetricStatus: OK\nmetricName: org.sam.CE-JobSubmit\n"
    "summaryData: soak\ntimestamp: 2026-12-01T00:00:00Z\ndetailsData: {pad}\nEOT\n"
)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares growth of (seconds, MiB) samples, in MiB per hour."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(m for _, m in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    cov = sum((t - mx) * (m - my) for t, m in samples)
    return cov / var * 3600 if var else 0.0


def _msgbus(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "msgbus", *args], stdout=out, stderr=subprocess.STDOUT
        )


def _publish(url: str, destination: str, rate: int, seconds: float, spool: Path) -> None:
    """The publisher process: ``rate`` results a second, one call per second."""
    body = _RESULT.format(site=_site(destination), pad="x" * 200).encode()
    [decoded] = decode_body(body, {})
    message = decoded.message
    assert message is not None, decoded.errors
    sent = confirmed = 0
    with Publisher.from_url(url, destination=destination, spool_dir=str(spool)) as pub:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            report = pub.publish([message] * rate)
            sent += rate
            confirmed += report.confirmed
            time.sleep(max(0.0, sent / rate - (time.monotonic() - start)))
        pub.drain()
        confirmed += pub.stats().get("drained", 0)
    print(f"published {sent}, confirmed {confirmed} in {elapsed:.0f} s", flush=True)


def _site(destination: str) -> str:
    """The run's own site name, so that its rows are told from any other run's."""
    return "SOAK-" + destination.rsplit(".", 1)[-1]


def _stored(store: str, destination: str) -> tuple[int, int]:
    engine = create_engine(store)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT count(*), count(DISTINCT msg_id) FROM probe_results WHERE site = :s"),
            {"s": _site(destination)},
        ).one()
    engine.dispose()
    return int(rows[0]), int(rows[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the run")
    parser.add_argument("--rate", type=int, default=500, help="results per second")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: SQLite)")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument(
        "--publisher", nargs=3, metavar=("URL", "DEST", "SPOOL"), help=argparse.SUPPRESS
    )
    opts = parser.parse_args()
    seconds = opts.minutes * 60
    if opts.publisher:
        url, dest, spool = opts.publisher
        _publish(url, dest, opts.rate, seconds, Path(spool))
        return 0
    work = Path(tempfile.mkdtemp(prefix="msgbus-soak."))
    store = opts.store or f"sqlite:///{work / 'soak.db'}"
    destination = f"/queue/soak.{os.getpid()}"
    port = free_port()
    url = f"stomp://127.0.0.1:{port}"
    subprocess.run([sys.executable, "-m", "msgbus", "db", "init", "--store", store], check=True)
    procs = {
        "broker": _msgbus(
            [
                "broker",
                "serve",
                "--port",
                str(port),
                "--data",
                str(work / "broker"),
                "--no-presence",
            ],
            work / "broker.log",
        )
    }
    deadline = time.monotonic() + 60
    while not stomp_answers("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise SystemExit(f"the broker did not answer; see {work / 'broker.log'}")
        time.sleep(0.2)
    procs["consume"] = _msgbus(
        ["consume", "--broker", url, "--destination", destination, "--store", store],
        work / "consume.log",
    )
    with (work / "publish.log").open("ab") as out:
        procs["publish"] = subprocess.Popen(
            [sys.executable, __file__, "--minutes", str(opts.minutes), "--rate", str(opts.rate),
             "--publisher", url, destination, str(work / "spool")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in procs}
    start = time.monotonic()
    while procs["publish"].poll() is None:
        now = time.monotonic() - start
        for name, proc in procs.items():
            if proc.poll() is None:
                samples[name].append((now, _rss_mib(proc.pid)))
        time.sleep(opts.sample)
    # Let the consumer catch up, then stop it and the broker politely.
    published = (work / "publish.log").read_text().strip().splitlines()[-1]
    confirmed = int(published.split("confirmed ")[1].split()[0])
    wait_until = time.monotonic() + 300
    while _stored(store, destination)[1] < confirmed and time.monotonic() < wait_until:
        time.sleep(2)
    for name in ("consume", "broker"):
        procs[name].send_signal(signal.SIGTERM)
        procs[name].wait(timeout=60)
    rows, distinct = _stored(store, destination)
    print(
        f"soak: {opts.minutes:g} min at {opts.rate}/s, store {store.split(':')[0]}, logs in {work}"
    )
    print(published)
    for name, series in samples.items():
        second_half = [s for s in series if s[0] >= seconds / 2]
        first = second_half[0][1] if second_half else 0.0
        last = series[-1][1] if series else 0.0
        print(
            f"{name:8} RSS {first:7.1f} MiB at half time, {last:7.1f} MiB at the end, "
            f"{_slope_per_hour(second_half):+7.1f} MiB/hour over the second half"
        )
    print(f"stored {rows} rows, {distinct} distinct, of {confirmed} confirmed")
    return 0 if distinct == confirmed == rows else 1


if __name__ == "__main__":
    sys.exit(main())
