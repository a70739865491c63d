"""Run ActiveMQ 5.x brokers as local processes.

One implementation serves ``msgbus network up`` and the test fixtures: find an
installation (``ACTIVEMQ_HOME`` or Debian's ``/usr/share/activemq``), write a broker
directory (activemq.xml, log config, extra jars), start the JVM detached, wait until
its STOMP port answers a CONNECT, and stop or kill it by the pid recorded there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from msgbus.errors import NetworkError, RemoteProtocolError
from msgbus.stomp import Frame, HeartBeats, StompSession

__all__ = ["BrokerProcess", "Installation", "find_installation", "free_port"]

_DEBIAN_HOME = Path("/usr/share/activemq")
# The STOMP ``jms-map-json`` transformation (statistics plugin replies) needs these, and
# Debian's activemq package does not put them on the broker's class path.
_EXTRA_JARS = ("xstream.jar", "jettison.jar")
_JAVA_LIBS = Path("/usr/share/java")
_LOG4J = """\
log4j.rootLogger=INFO, logfile
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.logfile=org.apache.log4j.FileAppender
log4j.appender.logfile.file={log}
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
"""


@dataclass(frozen=True)
class Installation:
    """An ActiveMQ installation: its home and the JVM to run it with."""

    home: Path
    java: str

    @property
    def jar(self) -> Path:
        return self.home / "bin" / "activemq.jar"


def find_installation(environ: dict[str, str] | None = None) -> Installation:
    """Locate ActiveMQ via ``ACTIVEMQ_HOME`` or Debian's package, and a ``java``."""
    env = os.environ if environ is None else environ
    home = Path(env["ACTIVEMQ_HOME"]) if env.get("ACTIVEMQ_HOME") else _DEBIAN_HOME
    if not (home / "bin" / "activemq.jar").is_file():
        raise NetworkError(
            f"no ActiveMQ installation at {home} (bin/activemq.jar missing); install "
            "Debian's activemq package (deploy/test.sh does) or set ACTIVEMQ_HOME"
        )
    java_home = env.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise NetworkError("no java found on PATH or in JAVA_HOME; install default-jre-headless")
    return Installation(home=home, java=java)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and not handed out before.

    The kernel may give a just-closed port again at once, so two calls in a row could
    otherwise name the same port for two listeners (seen in CI: one broker's STOMP and
    OpenWire ports). Remembering what this process handed out rules that out.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def stomp_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a STOMP CONNECT to host:port gets any frame back (CONNECTED or ERROR)."""
    stomp = StompSession("client")
    frame = stomp.connect_frame(host=host, heartbeats=HeartBeats())
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(stomp.encode(frame))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    return False
                if any(isinstance(ev, Frame) for ev in stomp.receive_data(data)):
                    return True
    except (OSError, RemoteProtocolError):  # RemoteProtocolError: not a STOMP broker
        return False
    return False


class BrokerProcess:
    """One broker living in ``base`` (config, logs, pid) and answering STOMP on a port.

    The JVM is started detached (its own session, re-parented away from us), so the
    broker outlives a ``msgbus network up`` and anyone may stop it by the pid file.
    """

    def __init__(
        self,
        name: str,
        base: Path,
        *,
        host: str,
        stomp_port: int,
        heap_mb: int = 256,
        data_dir: Path | None = None,
        jvm_options: list[str] | None = None,
        installation: Installation | None = None,
    ) -> None:
        self.name = name
        self.base = base
        self.data_dir = data_dir or base / "data"
        self.jvm_options = list(jvm_options or [])
        self.host = host
        self.stomp_port = stomp_port
        self.heap_mb = heap_mb
        self._installation = installation

    @property
    def conf_file(self) -> Path:
        return self.base / "activemq.xml"

    @property
    def pid_file(self) -> Path:
        return self.base / "activemq.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "activemq.log"

    @property
    def console_file(self) -> Path:
        return self.base / "console.log"

    def write_config(self, xml: str) -> None:
        """Lay out the broker directory around the given activemq.xml."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(xml, encoding="utf-8")
        self.conf_file.chmod(0o600)  # it holds the users' passwords
        (self.base / "log4j.properties").write_text(
            _LOG4J.format(log=self.log_file), encoding="utf-8"
        )
        lib = self.base / "lib"
        lib.mkdir(exist_ok=True)
        for jar in _EXTRA_JARS:
            src = _JAVA_LIBS / jar
            link = lib / jar
            if src.exists() and not link.exists():
                link.symlink_to(src)

    def pid(self) -> int | None:
        """The broker's pid when its process is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid, self.conf_file) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def started_at(self) -> float | None:
        """Wall-clock start time of the running broker (the pid file's mtime)."""
        if not self.is_running():
            return None
        return self.pid_file.stat().st_mtime

    def start(self, timeout: float = 60.0) -> None:
        """Start the broker (no-op when already running) and wait until STOMP answers."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the JVM without waiting for it (no-op when already running)."""
        if self.is_running():
            return
        if not self.conf_file.is_file():
            raise NetworkError(f"broker {self.name}: no {self.conf_file}; render it first")
        if stomp_answers(self.host, self.stomp_port, timeout=0.5):
            raise NetworkError(
                f"broker {self.name}: port {self.host}:{self.stomp_port} is already taken "
                "by another STOMP server; stop it or change the port in the topology"
            )
        inst = self._installation or find_installation()
        cmd = [
            inst.java,
            f"-Xmx{self.heap_mb}M",
            *self.jvm_options,
            f"-Dlog4j.configuration=file:{self.base / 'log4j.properties'}",
            f"-Dactivemq.home={inst.home}",
            f"-Dactivemq.base={self.base}",
            f"-Dactivemq.conf={self.base}",
            f"-Dactivemq.data={self.data_dir}",
            "-jar",
            str(inst.jar),
            "start",
            f"xbean:file:{self.conf_file}",
        ]
        # sh backgrounds the JVM and prints its pid, so the JVM is not our child: it
        # survives us, and no Popen object is left to warn about a running process.
        launcher = subprocess.run(
            ["sh", "-c", '"$@" >>"$MSGBUS_CONSOLE" 2>&1 </dev/null & echo $!', "sh", *cmd],
            env={**os.environ, "MSGBUS_CONSOLE": str(self.console_file)},
            capture_output=True,
            text=True,
            check=True,
            start_new_session=True,
        )
        self.pid_file.write_text(launcher.stdout.strip() + "\n")

    def wait_ready(self, timeout: float) -> None:
        """Wait until the STOMP port answers; kill the broker and raise if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise NetworkError(
                    f"broker {self.name} exited during start-up; see {self.log_file} "
                    f"and {self.console_file}: {self._log_tail()}"
                )
            if stomp_answers(self.host, self.stomp_port, timeout=1.0):
                return
            time.sleep(0.2)
        self.kill()
        raise NetworkError(
            f"broker {self.name}: STOMP port {self.stomp_port} did not answer within "
            f"{timeout:.0f}s; it was killed; see {self.log_file}: {self._log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down cleanly (SIGTERM runs ActiveMQ's shutdown hook); SIGKILL if it hangs."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, self.conf_file, timeout):
            self.kill()

    def kill(self) -> None:
        """Kill -9: the crash a reliability test wants, KahaDB left as it was."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, self.conf_file, 10.0):
            raise NetworkError(f"broker {self.name} (pid {pid}) survived SIGKILL")

    def _log_tail(self, lines: int = 5) -> str:
        for path in (self.log_file, self.console_file):
            try:
                tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
            except OSError:
                continue
            if tail:
                return " | ".join(tail)
        return "(no log output)"


def _alive(pid: int, conf: Path) -> bool:
    """The pid is a live (non-zombie) process running this broker's config."""
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    # A recycled pid runs something else: never signal that.
    return state not in ("Z", "X") and str(conf).encode() in cmdline


def _wait_gone(pid: int, conf: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, conf):
            return True
        time.sleep(0.1)
    return False
