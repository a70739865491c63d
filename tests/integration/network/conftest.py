"""A running copy of brokers/line.yaml (a <-> b <-> c) on free ports, per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from msgbus.network.activemq import find_installation, free_port
from msgbus.network.local import LocalNetwork
from msgbus.network.topology import Topology, parse_topology
from tests.fixtures.activemq import FAST_START_JVM
from tests.fixtures.services import require_service

BROKERS = Path(__file__).resolve().parents[3] / "brokers"


def example_on_free_ports(name: str) -> Topology:
    """An example topology from brokers/, its ports moved to free ones, heaps shrunk."""
    data = yaml.safe_load((BROKERS / name).read_text())
    for broker in data["brokers"]:
        broker["ports"] = {"stomp": free_port(), "openwire": free_port()}
        broker["heap_mb"] = 128
        broker["jvm_options"] = FAST_START_JVM
    return parse_topology(data, source=name)


@pytest.fixture(scope="module")
def line_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    require_service("ActiveMQ (ACTIVEMQ_HOME or /usr/share/activemq)", find_installation)
    net = LocalNetwork(example_on_free_ports("line.yaml"), tmp_path_factory.mktemp("line"))
    net.up()
    try:
        yield net
    finally:
        for broker in net.topology.brokers:
            net.process(broker.name).kill()
