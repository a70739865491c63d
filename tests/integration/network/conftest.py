"""A running copy of brokers/line.yaml (a <-> b <-> c) on free ports, per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from msgbus.network.activemq import find_installation
from msgbus.network.local import LocalNetwork
from tests.fixtures.activemq import example_on_free_ports
from tests.fixtures.services import require_service


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
