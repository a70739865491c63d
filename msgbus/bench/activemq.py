"""Run a throw-away local ActiveMQ (the Debian install) as the benchmark baseline."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from msgbus.errors import ConnectError

__all__ = ["ACTIVEMQ_HOME", "LocalActiveMQ"]

ACTIVEMQ_HOME = Path("/usr/share/activemq")
_LOG_CONFIG = Path("/etc/activemq/instances-available/main/log4j2.properties")

# Persistence stays on (KahaDB, its default) so persistent sends are a fair comparison;
# JMX and the web console are off because nothing here uses them.
_ACTIVEMQ_XML = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans
  http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core
  http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false"
          brokerName="msgbus-bench" dataDirectory="{data}" schedulerSupport="false">
    <persistenceAdapter><kahaDB directory="{data}/kahadb"/></persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalActiveMQ:
    """Start ActiveMQ from ``/usr/share/activemq`` in a temporary base directory.

    Use as a context manager; ``stomp_url`` is valid once ``start()`` returned.
    """

    def __init__(self, *, port: int = 0, heap: str = "512M", startup_timeout: float = 90.0):
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self._heap = heap
        self._timeout = startup_timeout
        self._base: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def stomp_url(self) -> str:
        return f"stomp://{self.host}:{self.port}"

    def start(self) -> LocalActiveMQ:
        if not (ACTIVEMQ_HOME / "bin" / "activemq.jar").exists() or shutil.which("java") is None:
            raise ConnectError(
                f"ActiveMQ is not installed at {ACTIVEMQ_HOME} (or java is missing): "
                "install the Debian 'activemq' package or pass --activemq URL"
            )
        base = Path(tempfile.mkdtemp(prefix="msgbus-activemq-"))
        self._base = base
        (base / "activemq.xml").write_text(
            _ACTIVEMQ_XML.format(data=base / "data", port=self.port), encoding="utf-8"
        )
        if _LOG_CONFIG.exists():
            shutil.copy(_LOG_CONFIG, base / "log4j2.properties")
        cmd = [
            "java", f"-Xmx{self._heap}", f"-Dactivemq.home={ACTIVEMQ_HOME}",
            f"-Dactivemq.base={base}", f"-Dactivemq.conf={base}", f"-Dactivemq.data={base}/data",
            "-jar", str(ACTIVEMQ_HOME / "bin" / "activemq.jar"),
            "start", f"xbean:file:{base}/activemq.xml",
        ]
        log = open(base / "stdout.log", "wb")  # noqa: SIM115 - handed to the child process
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=base)
        log.close()
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise ConnectError(
                    f"ActiveMQ exited with status {self._proc.returncode} while starting; "
                    f"see {base}/stdout.log"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise ConnectError(f"ActiveMQ did not listen on port {self.port} within {self._timeout}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def __enter__(self) -> LocalActiveMQ:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
