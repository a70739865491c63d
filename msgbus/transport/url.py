"""Broker URLs: ``stomp://[user:pass@]host:port`` and ``stomp+ssl://host:port``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["DEFAULT_PORTS", "BrokerURL"]

DEFAULT_PORTS = {"stomp": 61613, "stomp+ssl": 61614}


class BrokerURL(BaseModel):
    """One broker endpoint. Built from a URL string wherever configuration accepts one."""

    model_config = ConfigDict(frozen=True)

    scheme: str = "stomp"
    host: str
    port: int = Field(61613, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = Field(default=None, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return cls.parse_fields(value)
        return value

    @staticmethod
    def parse_fields(url: str) -> dict[str, Any]:
        parts = urlsplit(url.strip())
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError(
                f"broker URL {url!r} must start with stomp:// or stomp+ssl:// "
                "(e.g. stomp://user:pass@broker.example.org:61613)"
            )
        if not parts.hostname:
            raise ValueError(f"broker URL {url!r} has no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError(f"broker URL {url!r} has an invalid port") from None
        return {
            "scheme": parts.scheme,
            "host": parts.hostname,
            "port": port,
            "user": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
        }

    @property
    def tls(self) -> bool:
        return self.scheme == "stomp+ssl"

    def __str__(self) -> str:
        """The URL without its password, safe for logs."""
        auth = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"
