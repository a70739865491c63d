"""AMS push subscriptions: their configuration (``pushConfig`` as AMS reads and shows it)
and the worker that POSTs a subscription's messages to its endpoint.

A :class:`Pusher` is one thread per push subscription. It takes up to ``maxMessages``
messages from the subscription's durable STOMP subscription, POSTs them in AMS's push
format (``{"message": ..., "subscription": ...}`` for one, ``{"messages": [...]}`` for
more) and acknowledges them at the broker only after a 2xx. Otherwise it keeps the same
batch and tries again after the retry policy's wait (``linear``: ``period`` ms each time;
``slowstart``: from 1 s, doubled per failure up to a day, halved per success down to
300 ms, as AMS). Nothing but the batch in flight is held in memory: it stays
unacknowledged at the broker, which hands it out again to the next connection after a
restart, so delivery is at least once. Unlike AMS, a linear subscription that has
messages waiting pushes the next batch at once after a success (AMS pushes once per
period): the period is the wait after a failure.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from msgbus.gateway.amserror import AmsError
from msgbus.stomp.frames import MessageFrame

__all__ = ["PushConfig", "PushState", "Pusher", "parse_push_config", "verify_endpoint"]

_SLOWSTART = (0.3, 1.0, 86400.0)  # seconds: lowest, first, highest wait (AMS's)
_IDLE = 1.0  # seconds a pusher waits for a message before looking whether it should stop


@dataclass(frozen=True)
class PushConfig:
    """A push subscription's configuration, kept in the gateway's state."""

    endpoint: str
    max_messages: int = 1
    retry_type: str = "linear"
    period_ms: int = 3000
    auth_type: str = "autogen"
    auth_value: str = ""
    base64_decode: bool = False
    verification_hash: str = ""
    verified: bool = False

    def shown(self) -> dict[str, Any]:
        """As AMS shows it in a subscription."""
        return {
            "type": "http_endpoint",
            "pushEndpoint": self.endpoint,
            "maxMessages": self.max_messages,
            "authorizationHeader": {"type": self.auth_type, "value": self.auth_value},
            "retryPolicy": {"type": self.retry_type, "period": self.period_ms},
            "verificationHash": self.verification_hash,
            "verified": self.verified,
            "base64Decode": self.base64_decode,
        }

    def state(self) -> dict[str, Any]:
        return asdict(self)


def parse_push_config(raw: Mapping[str, Any], old: PushConfig | None) -> PushConfig | None:
    """The configuration of a ``pushConfig`` request body; None: a pull subscription.
    A new endpoint gets a new verification hash and is unverified again, as on AMS."""
    kind = raw.get("type") or "http_endpoint"
    if kind != "http_endpoint":
        raise AmsError(
            501,
            f"Not implemented: msgbus gateway pushes to http_endpoint only, not {str(kind)[:40]}"
            " (mattermost is not served); nothing was changed",
        )
    endpoint = raw.get("pushEndpoint") or ""
    if not endpoint:
        return None
    if not isinstance(endpoint, str) or not _https(endpoint):
        raise AmsError(400, "Push endpoint should be addressed by a valid https url")
    retry = raw.get("retryPolicy") or {}
    auth = raw.get("authorizationHeader") or {}
    if not isinstance(retry, dict) or not isinstance(auth, dict):
        raise AmsError(400, "retryPolicy and authorizationHeader must be objects")
    config = PushConfig(
        endpoint=endpoint,
        max_messages=_int(raw.get("maxMessages", 1), "maxMessages", 1, 10_000),
        retry_type=str(retry.get("type") or "linear"),
        period_ms=_int(retry.get("period", 3000), "retryPolicy.period", 1, 86_400_000),
        auth_type=str(auth.get("type") or "autogen"),
        base64_decode=raw.get("base64Decode") is True,
    )
    if config.retry_type not in ("linear", "slowstart"):
        raise AmsError(400, "Retry policy can only be of 'linear' or 'slowstart' type")
    if config.auth_type not in ("autogen", "disabled"):
        raise AmsError(400, "Authorization header type can only be 'autogen' or 'disabled'")
    keep = old is not None and old.endpoint == endpoint
    value = ""
    if config.auth_type == "autogen":
        same = old is not None and old.auth_type == "autogen"
        value = old.auth_value if same and old is not None else secrets.token_hex(20)
    return replace(
        config,
        auth_value=value,
        verification_hash=old.verification_hash if keep and old else secrets.token_hex(20),
        verified=bool(keep and old and old.verified),
    )


def _https(url: str) -> bool:
    try:
        where = urlsplit(url)
        return where.scheme == "https" and bool(where.hostname) and where.port != 0
    except ValueError:  # a bad IPv6 address or port
        return False


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AmsError(400, f"{name} must be a whole number from {low} to {high}")
    return value


def verify_endpoint(config: PushConfig, context: ssl.SSLContext, timeout: float) -> None:
    """AMS's ownership check: ``GET https://host:port/ams_verificationHash`` must answer
    200 with the subscription's verification hash as its whole body; else a 401."""
    where = urlsplit(config.endpoint)
    url = f"https://{where.netloc}/ams_verificationHash"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            body = answer.read(1024).decode("utf-8", "replace").strip()
    except (OSError, ValueError) as exc:
        raise AmsError(401, f"Endpoint verification failed: GET {url}: {exc}") from None
    if body != config.verification_hash:
        raise AmsError(
            401,
            f"Endpoint verification failed: GET {url} answered {body[:80]!r}, not the "
            "subscription's verificationHash",
        )


@dataclass
class PushState:
    """What a pusher reports: shown in the subscription and its metrics, and kept in the
    gateway's state (:mod:`msgbus.gateway.metrics`)."""

    state: str = "starting"
    pushed: int = 0
    pushed_bytes: int = 0
    failures: int = 0
    last_error: str = ""

    def status(self) -> str:
        """AMS's ``pushStatus`` line."""
        error = f"; last error: {self.last_error}" if self.last_error else ""
        return f"{self.state}: {self.pushed} messages pushed, {self.failures} failed pushes{error}"


Receive = Callable[[int, float], tuple[object, list[MessageFrame]]]
"""(max messages, seconds to wait) -> (the connection they came on, the messages)."""
Ack = Callable[[object, list[MessageFrame]], None]


class Pusher:
    """The thread pushing one subscription's messages (see the module's text)."""

    def __init__(
        self,
        subscription: str,
        config: PushConfig,
        receive: Receive,
        ack: Ack,
        context: ssl.SSLContext,
        timeout: float,
        to_message: Callable[[MessageFrame], dict[str, Any]],
        status: PushState,
    ) -> None:
        self.subscription = subscription
        self.config = config
        self.status = status  # kept by the gateway: counts go on across pushers and restarts
        self._receive, self._ack, self._context, self._timeout = receive, ack, context, timeout
        self._to_message = to_message
        self._stop = threading.Event()
        self._wait = _SLOWSTART[1]
        self._thread = threading.Thread(target=self._run, name=f"push {subscription}", daemon=True)

    def start(self) -> Pusher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Asks the thread to stop, without waiting: a POST in flight may take the whole
        push timeout, and its batch is no longer acknowledged (``ack`` refuses a retired
        pusher), so the broker hands it out again."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        batch: tuple[object, list[MessageFrame]] | None = None
        while not self._stop.is_set():
            try:
                if batch is None:
                    batch = self._receive(self.config.max_messages, _IDLE)
                    if not batch[1] or self._stop.is_set():  # retired meanwhile: not ours
                        batch = None
                        continue
                self._post(batch[1])
                self._ack(*batch)
            except Exception as exc:  # every failure waits and tries again
                self._failed(exc)
                if not isinstance(exc, (urllib.error.URLError, OSError, _Refused)):
                    batch = None  # the broker link: what it handed out comes back
                continue
            self._succeeded(batch[1])
            batch = None

    def _post(self, frames: list[MessageFrame]) -> None:
        body = json.dumps(self._body(frames)).encode()
        request = urllib.request.Request(self.config.endpoint, body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self.config.auth_type == "autogen":
            request.add_header("Authorization", self.config.auth_value)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context):
                pass  # 2xx: urlopen raises HTTPError for every other answer
        except urllib.error.HTTPError as exc:
            raise _Refused(f"{self.config.endpoint} answered {exc.code} {exc.reason}") from None

    def _body(self, frames: list[MessageFrame]) -> dict[str, Any]:
        sub = self.subscription
        messages = [{"message": self._message(f), "subscription": sub} for f in frames]
        if self.config.max_messages == 1:
            return messages[0]
        return {"messages": messages}

    def _message(self, frame: MessageFrame) -> dict[str, Any]:
        message = self._to_message(frame)
        if self.config.base64_decode:
            # As AMS's push server: the data decoded, as text (bytes not UTF-8 replaced).
            message["data"] = frame.body.decode("utf-8", "replace")
        return message

    def _failed(self, exc: Exception) -> None:
        self.status.failures += 1
        self.status.state = "failing"
        self.status.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {exc}"
        if self.config.retry_type == "slowstart":
            self._wait = min(self._wait * 2, _SLOWSTART[2])
            wait = self._wait
        else:
            wait = self.config.period_ms / 1000
        self._stop.wait(wait)

    def _succeeded(self, frames: list[MessageFrame]) -> None:
        self.status.state = "active"
        self.status.pushed += len(frames)
        self.status.pushed_bytes += sum(len(f.body) for f in frames)
        if self.config.retry_type == "slowstart":
            self._wait = max(self._wait / 2, _SLOWSTART[0])
            self._stop.wait(self._wait)


class _Refused(Exception):
    """The endpoint answered, but not with a 2xx."""
