"""LocalNetwork bookkeeping that needs no running broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgbus.errors import NetworkError
from msgbus.network import activemq
from msgbus.network.activemq import BrokerProcess, stomp_answers
from msgbus.network.local import LocalNetwork
from msgbus.network.topology import load_topology

BROKERS = Path(__file__).resolve().parents[3] / "brokers"


def test_admin_url_and_per_broker_directories(tmp_path: Path) -> None:
    net = LocalNetwork(load_topology(BROKERS / "line.yaml"), tmp_path)
    url = net.url("b")
    assert (url.host, url.port, url.user) == ("127.0.0.1", 62633, "admin")
    assert url.password is not None and url.password.get_secret_value() == "admin-change-me"
    proc = net.render("b")
    assert proc.conf_file == tmp_path / "b" / "activemq.xml"
    assert 'brokerName="b"' in proc.conf_file.read_text()
    assert proc.data_dir == tmp_path / "b" / "data"
    assert not proc.is_running() and net.expected_bridges() == {}


def test_saved_topology_round_trips(tmp_path: Path) -> None:
    topo = load_topology(BROKERS / "line.yaml")
    net = LocalNetwork(topo, tmp_path)
    assert net.saved() is None
    net.save()
    assert net.saved() == topo
    net.saved_path.write_text("{not json")
    with pytest.raises(NetworkError, match="unreadable"):
        net.saved()


def test_missing_tls_store_is_reported_before_anything_starts(tmp_path: Path) -> None:
    net = LocalNetwork(load_topology(BROKERS / "failover-pair.yaml"), tmp_path)
    with pytest.raises(NetworkError, match=r"TLS store .*broker\.p12 does not exist"):
        net.up()
    assert not (tmp_path / "site1").exists()


def test_a_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    proc = BrokerProcess("x", tmp_path, host="127.0.0.1", stomp_port=1)
    tmp_path.mkdir(exist_ok=True)
    proc.pid_file.write_text("1\n")  # pid 1 exists but is not this broker
    assert proc.pid() is None
    proc.kill()  # nothing to kill, and pid 1 is left alone
    with pytest.raises(NetworkError, match="render it first"):
        proc.start()


def test_nothing_listening_is_no_stomp() -> None:
    assert not stomp_answers("127.0.0.1", 1, timeout=0.5)


def test_files_with_passwords_are_private(tmp_path: Path) -> None:
    net = LocalNetwork(load_topology(BROKERS / "line.yaml"), tmp_path)
    net.save()
    proc = net.render("a")
    assert net.saved_path.stat().st_mode & 0o777 == 0o600
    assert proc.conf_file.stat().st_mode & 0o777 == 0o600


class _KernelRepeating:
    """A socket whose kernel hands out the ports given, in order, as the real one may."""

    ports = iter([5001, 5001, 5001, 5002])

    def __init__(self, *_: object) -> None:
        self.port = next(self.ports)

    def __enter__(self) -> _KernelRepeating:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def bind(self, _: object) -> None:
        pass

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_free_port_never_names_a_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI once got one port for a broker's STOMP and OpenWire listeners: the kernel gave
    the just-closed port again. A port handed out once is not handed out again."""
    monkeypatch.setattr("msgbus.network.activemq.socket.socket", _KernelRepeating)
    monkeypatch.setattr(activemq, "_HANDED_OUT", set())
    assert [activemq.free_port(), activemq.free_port()] == [5001, 5002]
