"""What a connection needs to know: brokers, login, time-outs, heart-beats, TLS.

Owned by the transport layer and composed into ``msgbus.config.MsgbusConfig``
(section ``connection``), so the transport never imports the whole configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from msgbus.transport.url import BrokerURL

__all__ = ["ConnectionConfig", "TLSConfig"]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TLSConfig(_Settings):
    """Grid X.509 style TLS: client certificate and key, CA file or CA directory."""

    cert: Path | None = Field(None, description="Client certificate (PEM), e.g. hostcert.pem")
    key: Path | None = Field(None, description="Its private key (PEM); default: inside cert")
    key_password: SecretStr | None = Field(
        default=None, repr=False, description="Passphrase of an encrypted key"
    )
    ca_file: Path | None = Field(None, description="CA certificates that may sign the broker's")
    ca_path: Path | None = Field(
        None, description="A hashed CA directory, e.g. /etc/grid-security/certificates"
    )
    check_hostname: bool = Field(True, description="The broker's certificate must name its host")


class ConnectionConfig(_Settings):
    """How to reach the brokers; ``stomp[+ssl]://[user:pass@]host:port`` URLs."""

    brokers: list[BrokerURL] = Field(
        default_factory=lambda: [BrokerURL(host="127.0.0.1", port=61613)],
        min_length=1,
        description="Failover list: the first that answers is used",
    )
    failover: Literal["ordered", "random"] = Field(
        "ordered", description="Try brokers in the listed order, or shuffled (load spreading)"
    )
    login: str | None = Field(None, description="STOMP login, unless the URL carries one")
    passcode: SecretStr | None = Field(default=None, repr=False, description="STOMP passcode")
    vhost: str | None = Field(
        None, description="The CONNECT host header (RabbitMQ: the virtual host, e.g. /)"
    )
    client_id: str | None = Field(
        None, description="Names durable subscriptions; one connection per id at a time"
    )
    heartbeat_ms: tuple[int, int] = Field(
        (10_000, 10_000), description="STOMP heart-beats: (can send every, want every) ms"
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds for TCP, TLS and login")
    receipt_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for a receipt, and for a blocked write"
    )
    disconnect_timeout: float = Field(5.0, gt=0, description="Seconds for a polite DISCONNECT")
    reconnect_initial_delay: float = Field(
        0.5, gt=0, description="First wait after a lost or refused connection (seconds)"
    )
    reconnect_max_delay: float = Field(
        30.0, gt=0, description="Longest wait between attempts (jittered back-off)"
    )
    tls: TLSConfig = Field(
        default_factory=TLSConfig, description="Client certificate and the CAs to trust"
    )

    def without_client_id(self) -> ConnectionConfig:
        """These settings for a side connection (presence, control, statistics): a
        broker refuses a second connection with a client-id already connected."""
        return self.model_copy(update={"client_id": None})
