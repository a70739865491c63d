"""Bounded waits on the database: driver timeouts per dialect, and cutting a connection
that hangs anyway.

A stalled network path (packets accepted, never answered) is not seen by a server-side
statement timeout, since the server never receives the statement; psycopg has no
client-side read timeout. So a write that outlives ``statement_timeout`` gets its
socket shut down, which fails the blocked call at once, and the batch is retried.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import sqlalchemy as sa

__all__ = ["connect_args", "cut_connection"]


def connect_args(url: str, connect_timeout: float, statement_timeout: float) -> dict[str, Any]:
    """Driver arguments that bound connecting and each statement at ``url``."""
    parsed = sa.make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    ms = int(statement_timeout * 1000)
    if backend == "postgresql" and driver == "psycopg":
        return {
            "connect_timeout": max(1, round(connect_timeout)),
            # The second: a transaction whose client was cut off mid-way must not hold
            # its locks (and block the retry of the same batch) until TCP notices.
            "options": f"-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}",
            # A peer gone without a word (power cut, firewall drop) fails the socket.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": ms,
        }
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        return {
            "connect_timeout": connect_timeout,
            "read_timeout": statement_timeout,
            "write_timeout": statement_timeout,
        }
    if backend == "sqlite":
        return {"timeout": statement_timeout}  # waiting for another writer's lock
    if backend == "oracle" and driver == "oracledb":
        return {"tcp_connect_timeout": connect_timeout}
    return {}


def cut_connection(dbapi_connection: Any) -> bool:
    """Shut down the socket under a driver connection (psycopg, PyMySQL), from another
    thread, so that a call blocked on it fails now; False when there is none to cut."""
    fd: int | None = None
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is not None:
        with contextlib.suppress(Exception):
            fd = int(pgconn.socket)
    sock = getattr(dbapi_connection, "_sock", None)
    if fd is None and isinstance(sock, socket.socket):
        fd = sock.fileno()
    if fd is None or fd < 0:
        return False
    # A duplicate descriptor: shutting it down ends the connection for the driver too,
    # while the driver's own descriptor stays valid until it closes it.
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as dup:
        dup.shutdown(socket.SHUT_RDWR)
        return True
    return False
