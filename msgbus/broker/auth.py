"""Who may connect and how much they may use: logins, TLS client certificates, limits."""

from __future__ import annotations

import hmac
import ssl

from msgbus.broker.config import BrokerConfig
from msgbus.errors import ConfigError

__all__ = ["Gatekeeper", "LimitExceeded", "server_ssl_context"]


class LimitExceeded(Exception):
    """A configured limit refuses the request; the text goes into the ERROR frame."""


def server_ssl_context(config: BrokerConfig) -> ssl.SSLContext | None:
    """The TLS context of the listener, or None without ``tls`` configured."""
    tls = config.tls
    if tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    password = tls.key_password.get_secret_value() if tls.key_password else None
    try:
        ctx.load_cert_chain(tls.cert, tls.key, password)
        if tls.client_ca is not None:
            ctx.load_verify_locations(cafile=tls.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the broker TLS certificate/key/CA ({tls.cert}, {tls.key}, "
            f"{tls.client_ca}): {exc}; check the tls section of the broker configuration"
        ) from None
    return ctx


class Gatekeeper:
    """Authentication and per-broker limits, consulted by every session."""

    def __init__(self, config: BrokerConfig) -> None:
        self._users = {name: pw.get_secret_value().encode() for name, pw in config.users.items()}
        self.limits = config.limits
        self.connections = 0

    def admit_connection(self) -> None:
        if self.connections >= self.limits.max_connections:
            raise LimitExceeded(
                f"the broker is at its limit of {self.limits.max_connections} connections; "
                "retry later or raise limits.max_connections"
            )
        self.connections += 1

    def release_connection(self) -> None:
        self.connections -= 1

    def authenticate(self, login: str | None, passcode: str | None) -> bool:
        """True when the login is allowed (anyone, if no users are configured)."""
        if not self._users:
            return True
        expected = self._users.get(login or "")
        # Compare even for unknown users so a wrong login costs the same as a wrong password.
        given = (passcode or "").encode()
        return hmac.compare_digest(expected or b"\0" + given, given) and expected is not None

    def check_subscriptions(self, count: int) -> None:
        if count >= self.limits.max_subscriptions:
            raise LimitExceeded(
                f"this connection already has {count} subscriptions, the limit is "
                f"{self.limits.max_subscriptions}; unsubscribe first"
            )

    def check_destinations(self, count: int) -> None:
        if count >= self.limits.max_destinations:
            raise LimitExceeded(
                f"the broker already holds {count} queues, the limit is "
                f"{self.limits.max_destinations}; reuse destination names"
            )

    def check_depth(self, name: str, depth: int) -> None:
        if depth >= self.limits.max_queue_depth:
            raise LimitExceeded(
                f"{name} holds {depth} messages, the limit is {self.limits.max_queue_depth}; "
                "consume from it or raise limits.max_queue_depth"
            )
