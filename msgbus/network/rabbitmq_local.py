"""A RabbitMQ topology runs as a local cluster of nodes under one state directory.

``STATE/<node>/`` is each node's HOME (its Erlang cookie, shared by the cluster and by
nobody else, so the system node's ``~/.erlang.cookie`` is never touched), its
``rabbitmq.conf``, enabled plugins, logs, pid and (unless the topology names a
data_dir) its data. Nodes are started together, joined to the first node that has
data (``join_cluster``), and the definitions are imported only then, so that every
quorum queue gets a replica on every node.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from msgbus.errors import MsgbusError, NetworkError
from msgbus.network.activemq import stomp_answers
from msgbus.network.local import BrokerStatus, default_state_dir
from msgbus.network.rabbitmq import (
    VHOST,
    group_queues,
    node_name,
    plugins,
    render_definitions,
    render_node_config,
)
from msgbus.network.topology import Broker, Topology
from msgbus.transport.connection import Connection
from msgbus.transport.settings import ConnectionConfig
from msgbus.transport.url import BrokerURL

__all__ = ["RabbitCluster", "find_rabbitmq"]

_DEBIAN_BIN = Path("/usr/lib/rabbitmq/bin")


def find_rabbitmq() -> Path:
    """The directory of rabbitmq-server and rabbitmqctl (not /usr/sbin's wrappers, which
    switch to the rabbitmq user)."""
    wanted = os.environ.get("MSGBUS_RABBITMQ_BIN")
    for candidate in [Path(wanted)] if wanted else [_DEBIAN_BIN]:
        if (candidate / "rabbitmq-server").is_file():
            return candidate
    raise NetworkError(
        "RabbitMQ is not installed (no rabbitmq-server in "
        f"{wanted or _DEBIAN_BIN}): apt-get install rabbitmq-server, or set "
        "MSGBUS_RABBITMQ_BIN to the directory holding rabbitmq-server"
    )


class RabbitNode:
    """One node's files, environment and process."""

    def __init__(
        self, topology: Topology, broker: Broker, directory: Path, epmd_port: int | None = None
    ) -> None:
        self.topology = topology
        self.broker = broker
        self.directory = directory
        self.epmd_port = epmd_port
        self.node = node_name(topology, broker)
        self.data_dir = broker.data_dir or directory / "data"
        self.pid_file = directory / "rabbitmq.pid"

    def env(self) -> dict[str, str]:
        d = self.directory
        # An epmd of the node's own (node and CLI tools look peers up there): the fault
        # suite's proxy, which sends distribution traffic through connections it can cut.
        epmd = {"ERL_EPMD_PORT": str(self.epmd_port)} if self.epmd_port else {}
        return os.environ | epmd | {
            "HOME": str(d),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.broker.ports.amqp),
            "RABBITMQ_DIST_PORT": str(self.broker.ports.dist),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_MNESIA_DIR": str(self.data_dir),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir.parent),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }

    def write_config(self, cookie: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "rabbitmq.conf").write_text(
            render_node_config(self.topology, self.broker.name), encoding="utf-8"
        )
        enabled = f"[{','.join(plugins(self.topology))}].\n"
        (self.directory / "enabled_plugins").write_text(enabled, encoding="utf-8")
        cookie_file = self.directory / ".erlang.cookie"
        if cookie_file.exists():
            cookie_file.chmod(0o600)
        cookie_file.write_text(cookie, encoding="utf-8")
        cookie_file.chmod(0o400)  # Erlang refuses a cookie others can read

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def started_at(self) -> float | None:
        return self.pid_file.stat().st_mtime if self.is_running() else None

    def launch(self, bin_dir: Path) -> None:
        if self.is_running():
            return
        self.pid_file.unlink(missing_ok=True)
        # sh backgrounds the node, so it is not our child: it survives us, and no Popen
        # object is left to warn about a running process.
        subprocess.run(
            [
                "sh",
                "-c",
                '"$1" >>"$2" 2>&1 </dev/null &',
                "sh",
                str(bin_dir / "rabbitmq-server"),
                str(self.directory / "server.out"),
            ],
            env=self.env(),
            check=True,
            start_new_session=True,  # not killed with the terminal that started it
        )

    def ctl(self, bin_dir: Path, *args: str, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        """Run a CLI tool against this node; NetworkError with its output on failure."""
        cmd = [str(bin_dir / tool), "-n", self.node, *args]
        try:
            done = subprocess.run(
                cmd, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise NetworkError(
                f"{tool} {' '.join(args)} on {self.node} took over {timeout:.0f}s; see "
                f"{self.directory / 'log'}"
            ) from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise NetworkError(
                f"{tool} {' '.join(args)} on {self.node} failed: {' '.join(why)}; see "
                f"{self.directory / 'log'}"
            )
        return done.stdout

    def wait_ready(self, bin_dir: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.pid_file.exists():
            if time.monotonic() > deadline:
                raise NetworkError(
                    f"{self.node} wrote no pid file in {timeout:.0f}s; see "
                    f"{self.directory / 'server.out'}"
                )
            time.sleep(0.2)
        left = max(1, int(deadline - time.monotonic()))
        self.ctl(bin_dir, "wait", "--timeout", str(left), str(self.pid_file), timeout=left + 10)

    def stop(self, bin_dir: Path) -> None:
        if not self.is_running():
            return
        try:
            self.ctl(bin_dir, "stop", timeout=30)
        except NetworkError:
            self.kill()

    def kill(self) -> None:
        """kill -9: the fault suite's crash."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class RabbitCluster:
    """Start, join, stop and check the nodes of a RabbitMQ topology on this machine."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path | None = None,
        epmd_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.topology = topology
        self.state_dir = (state_dir or default_state_dir(topology)).absolute()
        self.epmd_ports = dict(epmd_ports or {})
        """Node name -> the epmd port it and its CLI tools use (default: the system's)."""
        self._bin: Path | None = None

    @property
    def bin_dir(self) -> Path:
        if self._bin is None:
            self._bin = find_rabbitmq()
        return self._bin

    def process(self, name: str) -> RabbitNode:
        broker = self.topology.broker(name)
        return RabbitNode(self.topology, broker, self.state_dir / name, self.epmd_ports.get(name))

    def url(self, name: str) -> BrokerURL:
        broker = self.topology.broker(name)
        admin = self.topology.security.admin_user
        password = next(u.password for u in self.topology.users if u.name == admin)
        return BrokerURL.model_validate(
            {"host": broker.host, "port": broker.ports.stomp, "user": admin, "password": password}
        )

    def connect(self, name: str, *, client_id: str | None = None) -> Connection:
        url = self.url(name)
        conn = Connection(url, ConnectionConfig(brokers=[url], vhost=VHOST), client_id=client_id)
        conn.connect()
        return conn


    def _cookie(self) -> str:
        path = self.state_dir / "erlang.cookie"
        if not path.exists():
            path.write_text(secrets.token_hex(20).upper(), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()

    def up(self, names: Iterable[str] | None = None, timeout: float = 90.0) -> None:
        """Start nodes (all by default), join them into one cluster, import the
        definitions and give every quorum queue a replica on every running node."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "topology.json").write_text(
            self.topology.model_dump_json(by_alias=True, indent=2), encoding="utf-8"
        )
        (self.state_dir / "topology.json").chmod(0o600)  # it holds the users' passwords
        cookie = self._cookie()
        nodes = [self.process(name) for name in self.topology.broker_names(names)]
        had_data = {n.broker.name: n.data_dir.exists() for n in nodes}
        for node in nodes:
            node.write_config(cookie)
            node.launch(self.bin_dir)
        for node in nodes:
            node.wait_ready(self.bin_dir, timeout)
        self._join(had_data)
        seed = self._seed(had_data)
        defs = self.state_dir / "definitions.json"
        defs.write_text(json.dumps(render_definitions(self.topology), indent=1), encoding="utf-8")
        defs.chmod(0o600)
        seed.ctl(self.bin_dir, "import_definitions", str(defs))
        self._grow_replicas(seed, timeout)

    def _seed(self, had_data: dict[str, bool]) -> RabbitNode:
        """The node others join: a running one that kept its data (a node brought back
        empty must join the cluster, not found a new one), else the first running."""
        running = [self.process(b.name) for b in self.topology.brokers]
        running = [n for n in running if n.is_running()]
        if not running:
            raise NetworkError(f"no node of {self.topology.name} runs; see {self.state_dir}")
        kept = [n for n in running if had_data.get(n.broker.name, True)]
        return (kept or running)[0]

    def members(self, node: RabbitNode, kind: str = "running_nodes") -> list[str]:
        """The cluster's running (or, with ``disk_nodes``, all) members as ``node`` sees it."""
        out = node.ctl(self.bin_dir, "cluster_status", "--formatter", "json")
        found: list[str] = json.loads(out).get(kind, [])
        return sorted(found)

    def _join(self, had_data: dict[str, bool]) -> None:
        seed = self._seed(had_data)
        for broker in self.topology.brokers:
            node = self.process(broker.name)
            if node is seed or node.node == seed.node or not node.is_running():
                continue
            if seed.node in self.members(node):
                continue
            node.ctl(self.bin_dir, "stop_app")
            if not had_data.get(broker.name, True) and node.node in self.members(
                seed, "disk_nodes"
            ):
                # Back empty: the cluster still lists its old self, which must go first.
                seed.ctl(self.bin_dir, "forget_cluster_node", node.node)
            node.ctl(self.bin_dir, "join_cluster", seed.node)
            node.ctl(self.bin_dir, "start_app")

    def queue_members(self, node: RabbitNode) -> dict[str, list[str]]:
        """Each quorum queue and the nodes holding a replica of it."""
        columns = ("name", "type", "members", "--formatter", "json")
        out = node.ctl(self.bin_dir, "list_queues", *columns)
        rows: list[dict[str, Any]] = json.loads(out or "[]")
        return {r["name"]: sorted(r["members"]) for r in rows if r.get("type") == "quorum"}

    def _grow_replicas(self, seed: RabbitNode, timeout: float) -> None:
        """A node that joined after a queue was declared holds no replica yet: add them."""
        deadline = time.monotonic() + timeout
        running = self.members(seed)
        while True:
            queues = self.queue_members(seed)
            short = {n for members in queues.values() for n in running if n not in members}
            wanted = set(group_queues(self.topology))
            if not short and wanted <= set(queues):
                return
            if time.monotonic() > deadline:
                raise NetworkError(
                    f"quorum queues still lack replicas on {sorted(short)} (or are not "
                    f"declared: {sorted(wanted - set(queues))}) after {timeout:.0f}s"
                )
            for member in sorted(short):
                seed.ctl(self.bin_dir, "grow", member, "all", tool="rabbitmq-queues")
            time.sleep(0.5)

    def down(self, names: Iterable[str] | None = None) -> None:
        for name in reversed(self.topology.broker_names(names)):
            self.process(name).stop(self.bin_dir)

    def status(self, names: Iterable[str] | None = None) -> list[BrokerStatus]:
        out = []
        for name in self.topology.broker_names(names):
            node = self.process(name)
            url = str(self.url(name))
            started = node.started_at()
            broker = node.broker
            if started is None:
                out.append(BrokerStatus(name, url, up=False))
                continue
            if not stomp_answers(broker.host, broker.ports.stomp, timeout=2.0):
                error = "the node runs but STOMP does not answer"
                out.append(BrokerStatus(name, url, up=True, uptime_s=0.0, error=error))
                continue
            try:
                conn = self.connect(name)
                conn.disconnect()
            except MsgbusError as exc:
                out.append(BrokerStatus(name, url, up=True, error=str(exc)))
                continue
            uptime = time.time() - started
            out.append(BrokerStatus(name, url, up=True, uptime_s=uptime, server=conn.server))
        return out

    def check(self) -> list[str]:
        """What is wrong with the cluster: nodes not answering STOMP, members missing,
        quorum queues short of a replica. Empty when all is well."""
        problems = [
            f"{st.name}: {st.error or 'down'}"
            for st in self.status()
            if not st.up or st.error is not None
        ]
        expected = sorted(self.process(b.name).node for b in self.topology.brokers)
        running = [self.process(b.name) for b in self.topology.brokers]
        seed, members, queues = None, [], {}
        for node in (n for n in running if n.is_running()):
            try:  # a paused (minority) or dying node's process runs but does not answer
                members, queues = self.members(node), self.queue_members(node)
            except NetworkError:
                continue
            seed = node
            break
        if seed is None:
            return [*problems, "no node answers rabbitmqctl"]
        missing = sorted(set(expected) - set(members))
        if missing:
            problems.append(f"cluster members missing: {', '.join(missing)}")
        for queue in group_queues(self.topology):
            have = queues.get(queue)
            if have is None:
                problems.append(f"quorum queue {queue} is not declared")
            elif set(have) != set(expected):
                lacking = ", ".join(sorted(set(expected) - set(have)))
                problems.append(f"quorum queue {queue} has no replica on {lacking}")
        return problems
