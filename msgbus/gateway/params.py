"""What every gateway route takes: AMS names in paths, the user a token names, and
AMS's paging of lists."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from pydantic import BeforeValidator
from starlette.convertors import Convertor, register_url_convertor

from msgbus.gateway.amserror import AmsError

__all__ = ["Flag", "Name", "PageSize", "PageToken", "User", "page"]

_NAME = r"^[A-Za-z0-9_.-]{1,200}$"


class _NameConvertor(Convertor[str]):
    """Path segments that are AMS names: no ``:``, so ``{sub}:pull`` routes only to pull."""

    regex = "[A-Za-z0-9_.-]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("name", _NameConvertor())
Name = Annotated[str, Path(pattern=_NAME)]


def _user(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    key: Annotated[str | None, Query()] = None,
) -> str:
    """The user whose token the request carries (``x-api-key``, else ``?key=``)."""
    given = x_api_key or key
    tokens: dict[str, str] = request.app.state.tokens
    for token, name in tokens.items():
        if given is not None and secrets.compare_digest(given.encode(), token.encode()):
            return name
    raise AmsError(401, "Unauthorized: a valid token (x-api-key header or ?key=) is needed")


# Module level: FastAPI resolves the (string) annotations of routes in this namespace.
User = Annotated[str, Depends(_user)]


def _digits(value: object) -> object:
    """A query's whole number as digits only: pydantic alone would take ``+0.0`` and
    ``5_0`` (schemathesis sends such strings to check that they are refused)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number, digits only")
    return value


PageSize = Annotated[
    int, BeforeValidator(_digits), Query(ge=0, description="Entries per page; 0: all")
]
PageToken = Annotated[str, Query(description="nextPageToken of the page before")]

# Go's strconv.ParseBool, which AMS reads flags with (argo-ams-library sends "True").
_FLAGS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}


def _flag(value: object) -> object:
    """A query's flag as AMS reads it: pydantic alone would take ``yes`` and ``on`` too."""
    if isinstance(value, str) and value not in _FLAGS:
        raise ValueError("must be true or false")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


def page(names: Sequence[str], size: int, token: str) -> tuple[list[str], str]:
    """One page of sorted ``names`` as AMS pages lists: ``size`` 0 is all of them; the
    token names the first of the next page, so a deleted name does not break paging."""
    if size < 0:
        raise AmsError(400, "Invalid page size")
    start = 0
    if token:
        try:
            first = base64.b64decode(token, altchars=b"-_", validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AmsError(400, "Invalid page token") from None
        start = next((i for i, n in enumerate(names) if n >= first), len(names))
    if size == 0:
        return list(names[start:]), ""
    shown, rest = list(names[start : start + size]), names[start + size :]
    return shown, base64.urlsafe_b64encode(rest[0].encode()).decode("ascii") if rest else ""
