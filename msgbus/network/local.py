"""A topology's brokers run as local processes under one state directory.

``STATE/<broker>/`` holds each broker's activemq.xml, logs, pid and (unless the
topology names a data_dir) its KahaDB; ``STATE/topology.json`` is the topology last
brought up or applied, which ``apply`` compares a new one against.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from msgbus.errors import MsgbusError, NetworkError
from msgbus.network.activemq import BrokerProcess, Installation, stomp_answers
from msgbus.network.render import render_broker
from msgbus.network.stats import BrokerStats, bridges, broker_stats
from msgbus.network.topology import Broker, Topology, parse_topology
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL

__all__ = ["BrokerStatus", "LocalNetwork", "default_state_dir"]


def default_state_dir(topology: Topology) -> Path:
    """The topology's ``state_dir``, else ``$XDG_STATE_HOME/msgbus/network/NAME``
    (``~/.local/state/...``): the same from any working directory, so a status never
    reports running brokers as down, nor a second `up` starts them twice."""
    if topology.state_dir is not None:
        return topology.state_dir
    home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(home) / "msgbus" / "network" / topology.name


@dataclass(frozen=True)
class BrokerStatus:
    name: str
    url: str
    up: bool
    uptime_s: float | None = None
    stats: BrokerStats | None = None
    error: str | None = None
    server: str = ""
    """What the broker says it is (STOMP ``server``), e.g. ``ActiveMQ/5.17.2``."""


class LocalNetwork:
    """Start, stop and inspect the brokers of one topology on this machine."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path | None = None,
        *,
        installation: Installation | None = None,
    ) -> None:
        self.topology = topology
        self.state_dir = (state_dir or default_state_dir(topology)).absolute()
        self._installation = installation

    def data_dir(self, broker: Broker) -> Path:
        return broker.data_dir or self.state_dir / broker.name / "data"

    def process(self, name: str) -> BrokerProcess:
        broker = self.topology.broker(name)
        return BrokerProcess(
            name,
            self.state_dir / name,
            host=broker.host,
            stomp_port=broker.ports.stomp,
            heap_mb=broker.heap_mb,
            data_dir=self.data_dir(broker),
            jvm_options=broker.jvm_options,
            installation=self._installation,
        )

    def url(self, name: str) -> BrokerURL:
        """STOMP URL of a broker, logged in as the topology's admin user when needed."""
        broker = self.topology.broker(name)
        fields: dict[str, object] = {"host": broker.host, "port": broker.ports.stomp}
        if self.topology.security.authentication:
            wanted = self.topology.security.admin_user
            admin = next(u for u in self.topology.users if u.name == wanted)
            fields.update(user=admin.name, password=admin.password)
        return BrokerURL.model_validate(fields)

    def connect(self, name: str, *, client_id: str | None = None) -> Connection:
        conn = Connection(self.url(name), client_id=client_id)
        conn.connect()
        return conn


    def render(self, name: str) -> BrokerProcess:
        """Write the broker's directory from the topology; the running broker is untouched."""
        proc = self.process(name)
        proc.write_config(render_broker(self.topology, name))
        return proc

    def up(
        self, names: Iterable[str] | None = None, timeout: float = 90.0, *, form: bool = True
    ) -> None:
        """Render and start brokers (all by default), each waited for until STOMP answers;
        with ``form``, then wait until the links between running brokers are bridged."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        wanted = self.topology.broker_names(names)
        self._check_tls(wanted)
        self.save()
        # Launched together, waited for together: JVM start-ups overlap.
        procs = [self.render(name) for name in wanted]
        for proc in procs:
            proc.launch()
        for proc in procs:
            proc.wait_ready(timeout)
        if form:
            self.wait_formed(timeout)

    def _check_tls(self, names: list[str]) -> None:
        tls = self.topology.tls
        if tls is None or not any(self.topology.broker(n).ports.stomp_ssl for n in names):
            return
        for store in (tls.keystore, tls.truststore):
            if store is not None and not store.is_file():
                raise NetworkError(
                    f"TLS store {store} does not exist; create it (keytool -genkeypair "
                    "-storetype PKCS12 ...) or fix the tls section of the topology"
                )

    def expected_bridges(self) -> dict[str, set[str]]:
        """For each running broker, the brokers its links should have bridged it to."""
        running = {b.name for b in self.topology.brokers if self.process(b.name).is_running()}
        out: dict[str, set[str]] = {name: set() for name in running}
        for link in self.topology.links:
            if link.source in running and link.target in running:
                out[link.source].add(link.target)
                if link.duplex:
                    out[link.target].add(link.source)
        return out

    def wait_formed(self, timeout: float = 60.0) -> None:
        """Wait until every link between running brokers has a started bridge."""
        deadline = time.monotonic() + timeout
        missing: dict[str, set[str]] = {}
        while True:
            missing = {}
            for name, wanted in self.expected_bridges().items():
                if not wanted:
                    continue
                conn = self.connect(name)
                try:
                    have = bridges(conn)
                finally:
                    conn.disconnect()
                if wanted - have:
                    missing[name] = wanted - have
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if missing:
            gaps = "; ".join(f"{k} -> {', '.join(sorted(v))}" for k, v in sorted(missing.items()))
            raise NetworkError(
                f"network bridges not up after {timeout:.0f}s: {gaps}; check the OpenWire "
                "ports and credentials in the topology and the brokers' activemq.log"
            )

    def down(self, names: Iterable[str] | None = None) -> None:
        for name in reversed(self.topology.broker_names(names)):
            self.process(name).stop()

    def restart(self, name: str, timeout: float = 90.0) -> None:
        """Re-render and restart one broker; persistent messages stay in its KahaDB."""
        proc = self.process(name)
        proc.stop()
        self.render(name).start(timeout)

    def status(self, names: Iterable[str] | None = None) -> list[BrokerStatus]:
        out = []
        for name in self.topology.broker_names(names):
            proc = self.process(name)
            url = str(self.url(name))
            started = proc.started_at()
            if started is None:
                broker = self.topology.broker(name)
                if stomp_answers(broker.host, broker.ports.stomp, timeout=1.0):
                    # Up, but not started from here: say so rather than "down" (which
                    # would suggest `network up`, and a second broker on its port).
                    error = f"answers, but was not started from {self.state_dir}"
                    out.append(BrokerStatus(name, url, up=True, error=error))
                else:
                    out.append(BrokerStatus(name, url, up=False))
                continue
            uptime = time.time() - started
            try:
                conn = self.connect(name)
                try:
                    stats = broker_stats(conn)
                finally:
                    conn.disconnect()
            except MsgbusError as exc:
                out.append(BrokerStatus(name, url, up=True, uptime_s=uptime, error=str(exc)))
                continue
            out.append(
                BrokerStatus(name, url, up=True, uptime_s=uptime, stats=stats, server=conn.server)
            )
        return out

    # -- the applied topology ---------------------------------------------------------

    @property
    def saved_path(self) -> Path:
        return self.state_dir / "topology.json"

    def save(self) -> None:
        self.saved_path.write_text(
            self.topology.model_dump_json(by_alias=True, indent=2), encoding="utf-8"
        )
        self.saved_path.chmod(0o600)  # it holds the users' passwords

    def saved(self) -> Topology | None:
        """The topology this state directory was last brought up with, if any."""
        try:
            data = json.loads(self.saved_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise NetworkError(f"{self.saved_path} is unreadable ({exc}); remove it") from None
        return parse_topology(data, source=str(self.saved_path))
