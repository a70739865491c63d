"""A connection in a process that holds many descriptors (a gateway, a bridge)."""

from __future__ import annotations

import os
import resource

import pytest

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL


def test_a_connection_works_with_descriptors_above_1023() -> None:
    """select() refuses descriptors >= FD_SETSIZE; the I/O loop must not use it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1200:
        pytest.skip(f"the descriptor limit {hard} is too low to reach 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with BrokerThread(BrokerConfig(port=0)) as broker:
            conn = Connection(BrokerURL.model_validate(broker.url))
            conn.connect()
            try:
                conn.subscribe("/queue/high-fd", id="s")
                conn.send("/queue/high-fd", b"ok", receipt="r")
                conn.wait_for_receipt("r", 5)
                frame = conn.receive(5)
                assert isinstance(frame, MessageFrame) and frame.body == b"ok"
            finally:
                conn.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
