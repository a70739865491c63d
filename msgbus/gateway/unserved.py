"""The AMS v1 routes argo-ams-library calls that ``msgbus gateway`` does not serve: each
answers a 501 naming itself (an AMS error body), so a client fails with a clear message
instead of a bare 404, and nothing is changed. Kept out of the OpenAPI document: they
are not part of the API the gateway offers."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request

from msgbus.gateway.service import not_served

__all__ = ["UNSERVED", "add_unserved_routes"]

_PROJECT = "/v1/projects/{project:name}"
_USER = "/v1/users/{user}"  # after /v1/users/profile, ...: routes match in order
_MEMBER = f"{_PROJECT}/members/{{user}}"

UNSERVED: tuple[tuple[str, str, str], ...] = (
    # (method, path, the AMS route's name as argo-ams-library calls it)
    ("GET", "/v1/metrics/va_metrics", "VA metrics (va_metrics)"),
    ("GET", "/v1/users/usageReport", "usage reports (usage_report)"),
    ("GET", "/v1/users/profile", "user management (get_user_profile)"),
    ("GET", "/v1/users:byToken/{token}", "user management (get_user_by_token)"),
    ("GET", "/v1/users:byUUID/{uuid}", "user management (get_user_by_uuid)"),
    ("GET", "/v1/users", "user management (list_users)"),
    ("POST", f"{_USER}:refreshToken", "user management (refresh_user_token)"),
    ("POST", _USER, "user management (create_user)"),
    ("PUT", _USER, "user management (update_user)"),
    ("GET", _USER, "user management (get_user)"),
    ("DELETE", _USER, "user management (delete_user)"),
    ("POST", f"{_MEMBER}:add", "project members (add_project_member)"),
    ("POST", f"{_MEMBER}:remove", "project members (remove_project_member)"),
    ("GET", _MEMBER, "project members (get_project_member)"),
    ("POST", _MEMBER, "project members (create_project_member)"),
    ("POST", _PROJECT, "project management (create_project)"),
    ("PUT", _PROJECT, "project management (update_project)"),
    ("GET", _PROJECT, "project management (get_project)"),
    ("DELETE", _PROJECT, "project management (delete_project)"),
)


def add_unserved_routes(app: FastAPI) -> None:
    """Route every :data:`UNSERVED` request of ``app`` to a 501 naming it."""
    for method, path, what in UNSERVED:
        app.add_api_route(path, _refusal(what), methods=[method], include_in_schema=False)


def _refusal(what: str) -> Callable[[Request], None]:
    def refuse(request: Request) -> None:
        raise not_served(f"{what}, {request.method} {request.url.path}", "nothing was changed")

    return refuse
