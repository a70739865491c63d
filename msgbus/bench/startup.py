"""``msgbus bench startup``: what one short-lived run costs, whole process, start-up included.

A site runs ``msgbus probe`` or ``msgbus publish`` once per result, thousands of times
a day; what it pays is mostly the interpreter and the imports, not the message. Each
command below is run as a child process, ``rounds`` times, interleaved, and timed from
spawn to exit (wall) and by the child's own user+sys CPU (``os.wait4``):

* the baseline: a plain stomp.py script that connects, SENDs one result persistent
  with a receipt, waits for it and DISCONNECTs;
* ``msgbus publish one.txt`` and ``msgbus probe -- plugin`` (a shell plugin printing
  OK), each publishing that one result, confirmed, to the same broker;
* ``msgbus --help`` and ``msgbus publish --help``;
* the floors: ``python -c pass`` and ``python -c 'import stomp'``.

msgbus runs as ``python -m msgbus`` with this interpreter, which costs the same as the
console script (a wrapper such as pyenv's shim adds its own start-up on top of both).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from msgbus.errors import MsgbusError
from msgbus.transport.url import BrokerURL

__all__ = ["BASELINE", "DESTINATION", "Timing", "run_startup_bench", "workloads"]

BASELINE = "stomp.py sender"
DESTINATION = "/queue/msgbus.bench.startup"

# The baseline: what a site's own minimal sender does for one result.
_SENDER = """
import sys, threading, stomp
host, port, dest, path, user, password = sys.argv[1:7]
got = threading.Event()
class Receipts(stomp.ConnectionListener):
    def on_receipt(self, frame): got.set()
conn = stomp.Connection12([(host, int(port))], heartbeats=(0, 0))
conn.set_listener("r", Receipts())
conn.connect(user or None, password or None, wait=True)
with open(path, "rb") as f:
    conn.send(dest, f.read(), headers={"persistent": "true", "receipt": "r1"})
if not got.wait(30):
    sys.exit("no receipt")
conn.disconnect()
"""

_PLUGIN = "#!/bin/sh\necho 'OK - all fine'\n"

_RESULT = (
    "serviceURI: ce1.example.org\nhostName: ce1.example.org\nserviceFlavour: CE\n"
    "siteName: SITE-1\nmetricName: org.sam.CONDOR-JobSubmit\nmetricStatus: OK\n"
    "timestamp: 2026-12-05T10:00:00Z\nsummaryData: OK - job submitted\n"
    "detailsData: the job ran\nEOT\n"
)


@dataclass(frozen=True, slots=True)
class Timing:
    """Medians over the rounds of one command: seconds of wall time and of child CPU."""

    name: str
    wall: float
    cpu: float
    runs: int


def workloads(url: BrokerURL, base: Path) -> dict[str, list[str]]:
    """Each command's argv (run with ``base`` as working directory, which it writes to)."""
    base.mkdir(parents=True, exist_ok=True)
    one = base / "one.txt"
    one.write_text(_RESULT, encoding="ascii")
    plugin = base / "check_ok"
    plugin.write_text(_PLUGIN, encoding="ascii")
    plugin.chmod(0o755)
    user = url.user or ""
    password = url.password.get_secret_value() if url.password else ""
    login = f"{user}:{password}@" if user else ""
    to = ["--broker", f"stomp://{login}{url.host}:{url.port}", "--destination", DESTINATION]
    to += ["--spool", str(base / "spool")]
    py, msgbus = sys.executable, [sys.executable, "-m", "msgbus"]
    sender = [py, "-c", _SENDER, url.host, str(url.port), DESTINATION, str(one), user, password]
    return {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import stomp'": [py, "-c", "import stomp"],
        BASELINE: sender,
        "msgbus publish one.txt": [*msgbus, "publish", *to, str(one)],
        "msgbus probe -- check_ok": [*msgbus, "probe", *to, "--site", "SITE-1", "--", str(plugin)],
        "msgbus --help": [*msgbus, "--help"],
        "msgbus publish --help": [*msgbus, "publish", "--help"],
    }


def _run(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and child CPU seconds of one run; a failing command is an error, not a time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGBUS_")}
    started = time.perf_counter()
    child = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()
    if child.returncode != 0:
        text = output.decode(errors="replace").strip()
        raise MsgbusError(f"{' '.join(argv[:4])} ... exited {child.returncode}: {text}")
    return wall, usage.ru_utime + usage.ru_stime


def run_startup_bench(
    url: BrokerURL,
    base: Path,
    rounds: int,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Timing]:
    """Every workload ``rounds`` times, interleaved (load from elsewhere hits them alike);
    yields their medians in the order of ``workloads``."""
    commands = workloads(url, base)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    # One untimed pass: the first run of each pays for cold page caches and .pyc writes.
    for argv in commands.values():
        _run(argv, base)
    for round_no in range(1, rounds + 1):
        for name, argv in commands.items():
            wall, cpu = _run(argv, base)
            walls[name].append(wall)
            cpus[name].append(cpu)
        if progress is not None:
            progress(round_no)
    for name in commands:
        yield Timing(name, statistics.median(walls[name]), statistics.median(cpus[name]), rounds)
