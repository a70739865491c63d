"""AMS's error answer, which every part of the gateway raises."""

from __future__ import annotations

from typing import Any

from msgbus.errors import MsgbusError

__all__ = ["AmsError"]


class AmsError(MsgbusError):
    """An AMS error answer: HTTP ``code``, AMS ``status`` word and the message."""

    def __init__(self, code: int, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self._status = status

    @property
    def status(self) -> str:
        """AMS's word for ``code``, unless one was given: AMS answers a 409 that is not
        "already exists" (a time out of bounds, a verified endpoint) with CONFLICT."""
        if self._status is not None:
            return self._status
        return {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHORIZED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            408: "TIMEOUT",
            409: "ALREADY_EXISTS",
            413: "INVALID_ARGUMENT",  # AMS's word for a message too large
            501: "NOT_IMPLEMENTED",
        }.get(self.code, "UNAVAILABLE")

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self), "status": self.status}}
