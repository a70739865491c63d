"""Driver timeouts per dialect, and cutting a hung connection from another thread."""

from __future__ import annotations

import socket
import threading

import pytest

from msgbus.store.timeouts import connect_args, cut_connection


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://u@h/db",
            {
                "connect_timeout": 5,
                "options": "-c statement_timeout=2500 -c idle_in_transaction_session_timeout=2500",
                "tcp_user_timeout": 2500,
            },
        ),
        (
            "mysql+pymysql://u@h/db",
            {"connect_timeout": 5.0, "read_timeout": 2.5, "write_timeout": 2.5},
        ),
        ("sqlite:///x.db", {"timeout": 2.5}),
        ("oracle+oracledb://u@h/db", {"tcp_connect_timeout": 5.0}),
        ("oracle+cx_oracle://u@h/db", {}),
    ],
)
def test_each_dialect_bounds_its_waits(url: str, expected: dict[str, object]) -> None:
    args = connect_args(url, connect_timeout=5.0, statement_timeout=2.5)
    assert {k: args[k] for k in expected} == expected


def test_cutting_fails_a_read_blocked_in_another_thread() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()  # never answers: a stalled database

    class Driver:  # PyMySQL keeps its socket in _sock
        _sock = client

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(client.recv(10)))
    reader.start()
    assert cut_connection(Driver())
    reader.join(5)
    assert not reader.is_alive() and got == [b""]
    assert client.fileno() >= 0  # the driver's descriptor is still its own to close
    for sock in (client, peer, server):
        sock.close()


def test_nothing_to_cut_without_a_socket() -> None:
    assert cut_connection(object()) is False
