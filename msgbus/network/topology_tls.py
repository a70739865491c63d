"""The topology's ``tls`` section: Java stores for ActiveMQ, PEM files for RabbitMQ."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Tls"]


class Tls(BaseModel):
    """Key and trust material for STOMP+SSL (and ActiveMQ's bridges). ActiveMQ reads Java
    stores (JKS or PKCS12), RabbitMQ PEM files. With a truststore (RabbitMQ: a CA file),
    client certificates are required unless ``need_client_auth`` says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    keystore: Path | None = Field(
        None,
        description="Engine activemq: key store (JKS or PKCS12) with the brokers' key and "
        "certificate",
    )
    keystore_password: str | None = Field(None, description="Its password")
    truststore: Path | None = Field(
        None,
        description="Engine activemq: trust store of the CAs that sign client and peer "
        "certificates",
    )
    truststore_password: str | None = Field(None, description="Its password")
    cert_file: Path | None = Field(
        None, description="Engine rabbitmq: the nodes' certificate (PEM, ssl_options.certfile)"
    )
    key_file: Path | None = Field(
        None, description="Engine rabbitmq: its private key (PEM, ssl_options.keyfile)"
    )
    ca_file: Path | None = Field(
        None,
        description="Engine rabbitmq: CAs that sign client certificates (PEM, "
        "ssl_options.cacertfile)",
    )
    cert_login: bool = Field(
        False,
        description="Engine rabbitmq: a client certificate's common name is its login (no "
        "passcode; the user must exist): stomp.ssl_cert_login with the EXTERNAL mechanism of "
        "rabbitmq_auth_mechanism_ssl",
    )
    need_client_auth: bool | None = Field(
        None,
        description="Require client certificates (default: when there is a truststore or "
        "CA file)",
    )

    @property
    def client_auth(self) -> bool:
        trusted = self.truststore is not None or self.ca_file is not None
        return trusted if self.need_client_auth is None else self.need_client_auth

    def relative_to(self, base: Path) -> Tls:
        """Relative paths taken from ``base`` (the topology file's directory)."""
        fields = ("keystore", "truststore", "cert_file", "key_file", "ca_file")
        paths = {f: base / p for f in fields if (p := getattr(self, f)) is not None}
        return self.model_copy(update=paths)

    def check_engine(self, engine: str) -> None:
        """ValueError naming what ``engine`` needs and lacks (or would ignore)."""
        java = ("keystore", "keystore_password")
        pem = ("cert_file", "key_file")
        needed, foreign = (java, pem) if engine == "activemq" else (pem, java)
        missing = [f"tls.{f}" for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"engine {engine} with TLS needs {', '.join(missing)}")
        ignored = [f"tls.{f}" for f in foreign if getattr(self, f) is not None]
        if self.cert_login and engine == "activemq":
            ignored.append("tls.cert_login")
        if ignored:
            raise ValueError(f"engine {engine} does not read {', '.join(ignored)}: remove it")
        if engine == "rabbitmq" and self.cert_login and not self.client_auth:
            raise ValueError("tls.cert_login needs client certificates: set tls.ca_file")
