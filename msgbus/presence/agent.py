"""The presence and control agent a long-running component attaches.

``ComponentAgent`` runs its own broker connection on its own thread: it announces the
component on the presence topic (at start, every ``control.presence_interval`` and on
clean stop), listens on the component's control queue and on the broadcast topics of
its kind, its site and everyone, checks each request (msgbus.presence.auth) and
answers on the request's ``reply-to`` with its ``correlation-id``. Handlers run on the
agent's thread, so the component's methods they call must be thread-safe.

Built-in commands: ``status`` (identity, state and the component's ``stats()``),
``logs`` (the last ``args.lines`` lines the ``msgbus`` loggers emitted) and, given a
``reload`` callable that re-reads the configuration, ``reload`` (control settings
apply at once; the reply lists the changed sections that need a restart). The
component adds its own, e.g. ``pause``, ``resume``, ``drain``, ``stop``. Its state
is ``state()``, else ``stats()["state"]``, else "running".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from msgbus import __version__
from msgbus.config import MsgbusConfig
from msgbus.errors import ControlError, MsgbusError, TransportError
from msgbus.presence.auth import Authorizer
from msgbus.presence.logbuffer import LogBuffer
from msgbus.presence.messages import (
    CONTENT_TYPE,
    SIGNATURE_HEADER,
    Announcement,
    ControlReply,
    ControlRequest,
    Destinations,
    default_name,
    parse,
)
from msgbus.stomp.frames import ErrorFrame, MessageFrame
from msgbus.transport.connection import Connection, broker_error
from msgbus.transport.failover import opener
from msgbus.transport.link import Link

__all__ = ["ComponentAgent", "Handler", "local_agent", "no_args"]

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], object]
"""A command: receives the request's ``args``, returns a JSON-able result."""

_LOG_ROOT = "msgbus"
_DEFAULT_LOG_LINES = 100
# Destinations a reply may go to (ActiveMQ, RabbitMQ, the embedded broker).
_REPLY_PREFIXES = (
    "/queue/",
    "/topic/",
    "/temp-queue/",
    "/temp-topic/",
    "/remote-temp-queue/",
    "/remote-temp-topic/",
    "/reply-queue/",
    "/exchange/",
    "/amq/queue/",
)
_LOCAL: dict[str, ComponentAgent] = {}
_LOCAL_LOCK = threading.Lock()


def no_args(method: Callable[[], object]) -> Handler:
    """A handler calling ``method()`` (e.g. ``consumer.pause``) and answering its result."""
    return lambda args: method()


def _subscriber(destination: str, id: str) -> Callable[[Connection], None]:
    return lambda conn: conn.subscribe(destination, id=id)


def local_agent(name: str) -> ComponentAgent | None:
    """The running agent of this process with that name (DIRAC's "local source")."""
    with _LOCAL_LOCK:
        return _LOCAL.get(name)


class ComponentAgent:
    """Presence + control for one component; ``start()`` it, ``stop()`` it on exit."""

    def __init__(
        self,
        config: MsgbusConfig,
        *,
        kind: str,
        name: str | None = None,
        stats: Callable[[], Mapping[str, object]] | None = None,
        state: Callable[[], str] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        reload: Callable[[], MsgbusConfig] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name or config.name or default_name(kind)
        self.site = config.site
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = time.time()
        self._config = config
        self._auth = Authorizer(config.control, not_before=self.started_at)
        self._dest = Destinations(config.control.prefix)
        self._stats = stats or dict
        self._state = state or self._state_from_stats
        self._reload = reload
        self._handlers: dict[str, Handler] = {
            "status": lambda args: self.status_info(),
            "logs": self._cmd_logs,
        }
        if reload is not None:
            self._handlers["reload"] = self._cmd_reload
        self._handlers.update(handlers or {})
        self.logs = LogBuffer(config.control.log_lines)
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start announcing and answering; (re)connects in the background with back-off."""
        if self._thread is not None:
            return
        logging.getLogger(_LOG_ROOT).addHandler(self.logs)
        with _LOCAL_LOCK:
            _LOCAL[self.name] = self
        self._thread = threading.Thread(
            target=self._run, name=f"msgbus-agent-{self.name}", daemon=True
        )
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """True once the agent is connected and subscribed (for tests and start-up)."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Announce ``stop``, disconnect and end the thread (bounded by ``timeout``)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with _LOCAL_LOCK:
            if _LOCAL.get(self.name) is self:
                del _LOCAL[self.name]
        logging.getLogger(_LOG_ROOT).removeHandler(self.logs)

    def __enter__(self) -> ComponentAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reconfigure(self, config: MsgbusConfig) -> None:
        """Apply a re-read configuration's control section (call from a ``reload``)."""
        self._config = config
        self._auth = self._auth.reconfigured(config.control)

    # -- what the component looks like -------------------------------------------

    def state(self) -> str:
        return "stopping" if self._stopping.is_set() else self._state()

    def stats(self) -> dict[str, object]:
        """The component's ``stats()``; a failing one must not end the control channel."""
        try:
            return dict(self._stats())
        except Exception as exc:  # the component's code, run on our thread
            log.warning("%s: stats() failed: %s: %s", self.name, type(exc).__name__, exc)
            return {}

    def announcement(self, event: str = "alive") -> Announcement:
        counters = {
            key: float(value)
            for key, value in self.stats().items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        return Announcement.model_validate(
            {
                "event": event,
                "name": self.name,
                "kind": self.kind,
                "site": self.site,
                "host": self.host,
                "pid": self.pid,
                "version": __version__,
                "state": "stopped" if event == "stop" else self.state(),
                "started_at": self.started_at,
                "sent_at": time.time(),
                "interval": self._config.control.presence_interval,
                "control": self._dest.queue(self.name),
                "counters": counters,
            }
        )

    def execute(self, request: ControlRequest) -> object:
        """Run one (already authorised) command locally; ControlError if unknown."""
        handler = self._handlers.get(request.command)
        if handler is None:
            offered = ", ".join(sorted(self._handlers))
            raise ControlError(
                f"{self.kind} {self.name!r} has no command {request.command!r}; it offers: "
                f"{offered}"
            )
        return handler(request.args)

    def status_info(self) -> dict[str, Any]:
        """What the ``status`` command answers: the announcement, full stats, commands."""
        info = self.announcement().model_dump(exclude={"type", "event"})
        info["stats"] = self.stats()
        info["commands"] = sorted(self._handlers)
        return info

    def _state_from_stats(self) -> str:
        state = self.stats().get("state")
        return state if isinstance(state, str) else "running"

    def _cmd_reload(self, args: Mapping[str, Any]) -> object:
        """Re-read the configuration: control settings apply now, others need a restart."""
        assert self._reload is not None
        new = self._reload()
        old = self._config
        changed = [
            section
            for section in type(new).model_fields
            if section != "control" and getattr(new, section) != getattr(old, section)
        ]
        self.reconfigure(new)
        restart = ", ".join(changed) or "nothing"
        log.info("%s: configuration reloaded; restart needed for: %s", self.name, restart)
        return {"applied": ["control"], "restart_needed": changed}

    def _cmd_logs(self, args: Mapping[str, Any]) -> object:
        lines = args.get("lines", _DEFAULT_LOG_LINES)
        if not isinstance(lines, int) or lines < 0:
            raise ControlError(f"logs: 'lines' must be a non-negative integer, not {lines!r}")
        return {"lines": self.logs.lines(lines)}

    # -- the agent thread ----------------------------------------------------------

    def _run(self) -> None:
        cfg = self._config.connection.without_client_id()
        targets = [self._dest.queue(self.name), self._dest.kind(self.kind), self._dest.everyone()]
        if self.site:
            targets.append(self._dest.site(self.site))
        link = Link(
            f"{self.name}: control connection",
            cfg,
            open=opener(cfg),
            subscriptions=[_subscriber(d, f"control-{i}") for i, d in enumerate(targets)],
            stop=self._stopping,
        )
        # Any failure, a bug included, must not silently end presence for good.
        link.run(self._serve, retry=(Exception,))
        link.close()

    def _serve(self, conn: Connection) -> None:
        try:
            self._announce(conn, "start")
            self._connected.set()
            next_announce = time.monotonic() + self._config.control.presence_interval
            while not self._stopping.is_set():
                frame = conn.receive(min(0.25, max(next_announce - time.monotonic(), 0.0)))
                if isinstance(frame, MessageFrame):
                    self._handle(conn, frame)
                elif isinstance(frame, ErrorFrame):
                    raise broker_error(conn.url, frame)
                if time.monotonic() >= next_announce:
                    self._announce(conn, "alive")
                    next_announce = time.monotonic() + self._config.control.presence_interval
            self._announce(conn, "stop")
        except TransportError:
            raise
        except Exception:
            log.exception("%s: control channel failed", self.name)
            raise
        finally:
            self._connected.clear()

    def _announce(self, conn: Connection, event: str) -> None:
        body = self.announcement(event).model_dump_json().encode()
        conn.send(self._config.control.presence_topic, body, {"content-type": CONTENT_TYPE})

    def _handle(self, conn: Connection, frame: MessageFrame) -> None:
        try:
            request = parse(frame.body)
        except ControlError as exc:
            log.warning(
                "%s: ignored a message on %s: %s", self.name, frame.headers.get("destination"), exc
            )
            return
        if not isinstance(request, ControlRequest):
            return
        if not request.target.matches(self.name, self.kind, self.site):
            return  # another component whose name folds to the same queue
        try:
            self._auth.check(request, frame.body, frame.headers.get(SIGNATURE_HEADER))
        except ControlError as exc:
            log.warning(
                "%s: refused control command %r from %r: %s",
                self.name,
                request.command,
                request.sender,
                exc,
            )
            self._reply(conn, frame, request, ok=False, error=str(exc))
            return
        log.info("%s: control command %r from %r", self.name, request.command, request.sender)
        try:
            result = self.execute(request)
        except MsgbusError as exc:
            self._reply(conn, frame, request, ok=False, error=str(exc))
            return
        except Exception as exc:  # a failing handler must not end the control channel
            log.exception("%s: command %r failed", self.name, request.command)
            error = f"command {request.command!r} failed: {type(exc).__name__}: {exc}"
            self._reply(conn, frame, request, ok=False, error=error)
            return
        self._reply(conn, frame, request, ok=True, result=result)

    def _reply(
        self,
        conn: Connection,
        frame: MessageFrame,
        request: ControlRequest,
        *,
        ok: bool,
        result: object = None,
        error: str | None = None,
    ) -> None:
        reply_to = frame.headers.get("reply-to")
        if not reply_to:
            return
        if not reply_to.startswith(_REPLY_PREFIXES):
            # A broker may answer a send to a destination it does not know with ERROR and
            # a disconnect: one odd request must not cut the control channel.
            log.warning("%s: not replying to %r: not a STOMP destination", self.name, reply_to)
            return
        reply = ControlReply(
            request_id=request.id,
            name=self.name,
            kind=self.kind,
            site=self.site,
            command=request.command,
            ok=ok,
            result=result,
            error=error,
        )
        headers = {"correlation-id": request.id, "content-type": CONTENT_TYPE}
        conn.send(reply_to, reply.model_dump_json(fallback=str).encode(), headers)
