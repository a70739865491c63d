"""The embedded broker: listener, lifecycle, and a runner for synchronous code.

``EmbeddedBroker(config)`` is used from asyncio (``await start()`` / ``await stop()``);
``BrokerThread`` runs one on a background thread so tests, the demo and sync code can
have a broker next to them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import TracebackType

from msgbus.broker.auth import Gatekeeper, server_ssl_context
from msgbus.broker.config import BrokerConfig
from msgbus.broker.destinations import Router
from msgbus.broker.flow import STORE
from msgbus.broker.metrics import broker_metrics
from msgbus.broker.session import Session
from msgbus.broker.store import MessageStore
from msgbus.errors import ConfigError, MsgbusError
from msgbus.metrics import MetricsRegistry

__all__ = ["BrokerThread", "EmbeddedBroker"]

log = logging.getLogger("msgbus.broker")


class EmbeddedBroker:
    """A STOMP broker on the running event loop."""

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        # Boot time in the ids keeps message ids unique across restarts. No ':' in them,
        # so STOMP 1.1/1.2 header escaping has nothing to do on the hot path.
        self.id_prefix = f"{self.config.name}-{int(time.time() * 1000)}-"
        self.store = MessageStore(
            self.config.data_dir / "broker.sqlite" if self.config.data_dir else None,
            self.config.limits.max_unwritten_bytes,
        )
        self.gate = Gatekeeper(self.config)
        self.router = Router(
            self.store,
            self.gate,
            max_redeliveries=self.config.max_redeliveries,
            id_prefix=self.id_prefix,
        )
        store, blocked = self.store, self.router.blocked
        self.store.room = lambda: blocked.wake_while(STORE, lambda: not store.busy)
        self.sessions: set[Session] = set()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._server: asyncio.Server | None = None
        self._metrics: MetricsRegistry | None = None

    @property
    def url(self) -> str:
        scheme = "stomp+ssl" if self.config.tls else "stomp"
        return f"{scheme}://{self.config.host}:{self.port}"

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load the store and rebuild destinations, without listening (in-memory use)."""
        durables, messages = self.store.open(loop)
        self.router.recover(durables, messages)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ssl_context = server_ssl_context(self.config)
        self.open(loop)
        try:
            self._server = await loop.create_server(
                lambda: Session(self),
                self.config.host,
                self.config.port,
                ssl=ssl_context,
                reuse_address=True,
                backlog=512,
            )
        except OSError as exc:
            await self.store.close()
            raise ConfigError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror}; "
                "choose another --port or stop what uses it"
            ) from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        if self.config.metrics_port is not None:
            self._metrics = broker_metrics(self)
            self.metrics_port = self._metrics.serve(self.config.metrics_port, self.config.host)
        log.info("broker %s listening on %s", self.config.name, self.url)

    async def stop(self) -> None:
        """Close the listener and every connection, then flush and close the store."""
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        # Let connection_lost callbacks run so unacked messages are back in their queues.
        await asyncio.sleep(0)
        await self.store.close()
        if self._metrics is not None:
            self._metrics.stop()
            self._metrics = None

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class BrokerThread:
    """Run an ``EmbeddedBroker`` on a background thread with its own event loop.

    ``start()`` returns once the broker listens (``port`` and ``url`` are then set);
    use as a context manager to stop it again.
    """

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.broker = EmbeddedBroker(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        assert self.broker.port is not None, "start() the broker first"
        return self.broker.port

    @property
    def url(self) -> str:
        return self.broker.url

    def start(self, timeout: float = 30.0) -> BrokerThread:
        self._thread = threading.Thread(target=self._run, name="msgbus-broker", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise MsgbusError(f"the embedded broker did not start within {timeout}s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.broker.start())
        except BaseException as exc:  # handed to the thread that called start()
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.broker.stop())
            loop.close()

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
