"""The status page's HTTP server (stdlib ThreadingHTTPServer).

Routes: ``/`` the page (one static HTML+JS file); ``/api/latest?site=&vo=&metric=``
the newest result per site and metric plus the filter menus; ``/api/history?site=
&metric=[&host=][&limit=]`` one metric's results, oldest first; ``/api/events`` a
server-sent-events stream of cells as results arrive; ``/api/gaps[?site=]`` and
``/api/stale[?site=]`` what ``msgbus audit`` reports (missing ranges, silent series).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from msgbus.dashboard.data import filters, history, latest, select
from msgbus.dashboard.live import BrokerFeed, Hub, StorePoller
from msgbus.dashboard.metrics import DashboardMetrics
from msgbus.errors import ConfigError, StoreError
from msgbus.store.audit import audit
from msgbus.store.database import Store

__all__ = ["Dashboard"]

log = logging.getLogger(__name__)

_KEEPALIVE = 15.0  # proxies drop idle streams; a comment line keeps this one open
_POLL = 0.5
_PAGE = resources.files("msgbus.dashboard").joinpath("static/index.html").read_text("utf-8")
_ROUTES = {
    "/": "page",
    "/index.html": "page",
    "/api/latest": "latest",
    "/api/history": "history",
    "/api/events": "events",
    "/api/gaps": "gaps",
    "/api/stale": "stale",
}
_INITIAL = '<script id="initial" type="application/json">'
_MAX_HISTORY = 5000


class _BadRequest(Exception):
    pass


class Dashboard:
    """Serves the page and API for ``store``; live updates from ``feed`` or by polling."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        feed: BrokerFeed | None = None,
        poll_interval: float = 2.0,
        metrics: DashboardMetrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or DashboardMetrics()
        self.hub = feed.hub if feed is not None else Hub()
        self.source = feed or StorePoller(lambda: latest(store), self.hub, poll_interval)
        self._closing = threading.Event()
        try:
            self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the dashboard on {host}:{port}: {exc.strerror}; choose another "
                "--port"
            ) from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="msgbus-dashboard-http", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> None:
        self.source.start()
        self._thread.start()

    def stop(self) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.source.stop()

    # -- request handling -----------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        dashboard = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "msgbus-dashboard"

            def do_GET(self) -> None:
                dashboard._get(self)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s " + format, self.address_string(), *args)

        return Handler

    def _get(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items() if v[-1]}
        route = _ROUTES.get(parts.path, "other")
        started = time.perf_counter()
        code = HTTPStatus.OK
        try:
            if route == "page":
                self._send(req, HTTPStatus.OK, self._page(params), "text/html; charset=utf-8")
            elif route == "latest":
                self._json(req, self._latest(params))
            elif route == "history":
                self._json(req, self._history(params))
            elif route in ("gaps", "stale"):
                self._json(req, self._audit(route, params))
            elif route == "events":
                self._events(req)
                return  # a stream is counted while open, not timed
            else:
                code = HTTPStatus.NOT_FOUND
                self._json(req, {"error": f"no such page {parts.path}"}, code)
        except _BadRequest as exc:
            code = HTTPStatus.BAD_REQUEST
            self._json(req, {"error": str(exc)}, code)
        except StoreError as exc:
            code = HTTPStatus.SERVICE_UNAVAILABLE
            self._json(req, {"error": str(exc)}, code)
        except (BrokenPipeError, ConnectionResetError):
            return  # the browser went away
        self.metrics.requests.labels(route, str(code.value)).inc()
        self.metrics.request_latency.labels(route).observe(time.perf_counter() - started)

    def _page(self, params: dict[str, str]) -> bytes:
        """The page with the current results inside, so it draws them while parsing."""
        initial = self._latest({})
        if "site" in params and "metric" in params:
            initial["history"] = self._history({"site": params["site"], "metric": params["metric"]})
        data = json.dumps(initial).replace("</", "<\\/")
        return _PAGE.replace(_INITIAL + "null", _INITIAL + data, 1).encode()

    def _latest(self, params: dict[str, str]) -> dict[str, Any]:
        cells = latest(self.store)
        chosen = select(
            cells, site=params.get("site"), vo=params.get("vo"), metric=params.get("metric")
        )
        return {"cells": chosen, "filters": filters(cells)}

    def _history(self, params: dict[str, str]) -> dict[str, Any]:
        site, metric = params.get("site"), params.get("metric")
        if site is None or metric is None:
            raise _BadRequest("/api/history needs site= and metric=")
        try:
            limit = int(params.get("limit", "200"))
        except ValueError:
            raise _BadRequest("limit= must be an integer") from None
        if not 1 <= limit <= _MAX_HISTORY:
            raise _BadRequest(f"limit= must be between 1 and {_MAX_HISTORY}")
        cells = history(self.store, site, metric, host=params.get("host"), limit=limit)
        return {"site": site, "metric": metric, "cells": cells}

    def _audit(self, route: str, params: dict[str, str]) -> dict[str, Any]:
        report = audit(self.store, now=datetime.now(timezone.utc), site=params.get("site"))
        data = report.as_json()
        if route == "gaps":
            return {"missing": data["missing"], "gaps": data["gaps"]}
        return {"stale": data["stale"]}

    def _events(self, req: BaseHTTPRequestHandler) -> None:
        req.send_response(HTTPStatus.OK)
        req.send_header("Content-Type", "text/event-stream")
        req.send_header("Cache-Control", "no-cache")
        req.end_headers()
        q = self.hub.subscribe()
        self.metrics.requests.labels("events", "200").inc()
        self.metrics.streams.inc()
        try:
            req.wfile.write(b": connected\n\n")
            req.wfile.flush()
            quiet = 0.0
            while not self._closing.is_set():
                try:
                    cell = q.get(timeout=_POLL)
                except queue.Empty:
                    quiet += _POLL
                    if quiet < _KEEPALIVE:
                        continue
                    req.wfile.write(b": keep-alive\n\n")
                else:
                    req.wfile.write(b"data: " + json.dumps(cell).encode() + b"\n\n")
                    self.metrics.events.inc()
                quiet = 0.0
                req.wfile.flush()
        finally:
            self.hub.unsubscribe(q)
            self.metrics.streams.dec()

    @staticmethod
    def _json(
        req: BaseHTTPRequestHandler, data: object, status: HTTPStatus = HTTPStatus.OK
    ) -> None:
        body = json.dumps(data).encode()
        Dashboard._send(req, status, body, "application/json")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: HTTPStatus, body: bytes, ctype: str) -> None:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        req.wfile.write(body)
