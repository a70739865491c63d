"""AMS's project and user routes, read-only, as far as one operator's gateway has them.

A gateway serves one project (``gateway.project``) to the users of its configuration
(``gateway.users``): the operator adds, changes and removes users and their tokens there,
and restarts. So the routes that read are served from that configuration, and those that
would change it (create, update, delete a project, user or member, ``:refreshToken``)
answer 501 (:mod:`msgbus.gateway.unserved`): a change made over REST would be undone
by the next restart, or would make the running gateway and its configuration disagree.

A user is shown as AMS shows one: a ``uuid`` (derived from project and name, so it is
the same after a restart), ``name``, ``token``, ``service_roles`` (none: there is no
service administrator but the operator) and, with ``details``, its one project with

* ``roles``: AMS's ``project_admin``, ``publisher`` and ``consumer`` for what the user
  may do (``admin``, ``write``, ``read``) on at least one of the project's topics under
  ``gateway.permissions`` and the ACLs; all three without permissions, where every user
  may do everything;
* ``topics``: those it may publish to; ``subscriptions``: those it may pull from.

The ``token`` is shown to its own user only (``/v1/users/profile``, or ``:byToken`` with
the token itself); other users' records show it empty, as AMS shows them to a project
administrator. Every user of the gateway may read these, as it may read topics.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from msgbus.gateway.amserror import AmsError
from msgbus.gateway.params import Flag, Name, PageSize, PageToken, User, page
from msgbus.gateway.service import Gateway
from msgbus.permissions import Action

__all__ = ["add_project_routes", "user_uuid"]

_ROLES: tuple[tuple[str, Action], ...] = (
    ("project_admin", "admin"),
    ("publisher", "write"),
    ("consumer", "read"),
)
_DESCRIPTION = "The project of this msgbus gateway; its users are gateway.users"


class ProjectOut(BaseModel):
    name: str
    description: str


class ProjectList(BaseModel):
    projects: list[ProjectOut]


class UserProject(BaseModel):
    project: str
    roles: list[str] = Field(description="project_admin, publisher, consumer")
    topics: list[str] = Field(description="The topics the user may publish to")
    subscriptions: list[str] = Field(description="The subscriptions the user may pull from")


class UserOut(BaseModel):
    uuid: str
    name: str
    token: str = Field(description="The user's token, shown to that user only; else empty")
    service_roles: list[str]
    projects: list[UserProject] | None = Field(None, description="With details only")


class UserList(BaseModel):
    users: list[UserOut]
    nextPageToken: str = Field(description="pageToken of the next page; empty: the last")
    totalSize: int


def user_uuid(project: str, name: str) -> str:
    """A user's AMS uuid: the same for the same project and name, restart after restart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"msgbus-gateway:{project}:{name}"))


def add_project_routes(app: FastAPI, gateway: Gateway) -> None:
    """The read-only project and user routes (see the module's text) of ``app``."""
    users = gateway.settings.users
    by_token = {u.token.get_secret_value(): name for name, u in users.items()}
    by_uuid = {user_uuid(gateway.project, name): name for name in users}

    def project_of(project: str) -> None:
        if project != gateway.project:
            raise AmsError(404, "Project doesn't exist")

    def shown(name: str, who: str, details: bool = True) -> dict[str, Any]:
        if name not in users:
            raise AmsError(404, "User doesn't exist")
        token = users[name].token.get_secret_value() if name == who else ""
        record: dict[str, Any] = {
            "uuid": user_uuid(gateway.project, name),
            "name": name,
            "token": token,
            "service_roles": [],
        }
        if details:
            record["projects"] = [_membership(gateway, name)]
        return record

    def listing(who: str, size: int, token: str, details: bool = True) -> dict[str, Any]:
        names, next_token = page(sorted(users), size, token)
        return {
            "users": [shown(n, who, details) for n in names],
            "nextPageToken": next_token,
            "totalSize": len(users),
        }

    @app.get("/v1/projects", response_model=ProjectList)
    def list_projects(who: User) -> dict[str, Any]:
        return {"projects": [{"name": gateway.project, "description": _DESCRIPTION}]}

    @app.get("/v1/projects/{project:name}", response_model=ProjectOut)
    def get_project(project: Name, who: User) -> dict[str, Any]:
        project_of(project)
        return {"name": gateway.project, "description": _DESCRIPTION}

    @app.get(
        "/v1/projects/{project:name}/members",
        response_model=UserList,
        response_model_exclude_none=True,
    )
    def list_members(
        project: Name, who: User, pageSize: PageSize = 0, pageToken: PageToken = ""
    ) -> dict[str, Any]:
        project_of(project)
        return listing(who, pageSize, pageToken)

    @app.get(
        "/v1/projects/{project:name}/members/{user}",
        response_model=UserOut,
        response_model_exclude_none=True,
    )
    def get_member(project: Name, user: str, who: User) -> dict[str, Any]:
        project_of(project)
        return shown(user, who)

    @app.get("/v1/users", response_model=UserList, response_model_exclude_none=True)
    def list_users(
        who: User,
        details: Flag = False,
        pageSize: PageSize = 0,
        pageToken: PageToken = "",
        nextPageToken: Annotated[
            str, Query(description="pageToken as argo-ams-library's list_users names it")
        ] = "",
        project: Annotated[str, Query(description="Only the members of this project")] = "",
    ) -> dict[str, Any]:
        if project and project != gateway.project:
            return {"users": [], "nextPageToken": "", "totalSize": 0}
        return listing(who, pageSize, pageToken or nextPageToken, details)

    # Before /v1/users/{user}: routes match in order.
    @app.get("/v1/users/profile", response_model=UserOut, response_model_exclude_none=True)
    def profile(who: User) -> dict[str, Any]:
        return shown(who, who)

    @app.get("/v1/users:byToken/{token}", response_model=UserOut, response_model_exclude_none=True)
    def user_by_token(token: str, who: User) -> dict[str, Any]:
        name = by_token.get(token)
        if name is None:
            raise AmsError(404, "User doesn't exist")
        return shown(name, name)  # whoever asks knows the token already

    @app.get("/v1/users:byUUID/{uuid}", response_model=UserOut, response_model_exclude_none=True)
    def user_by_uuid(uuid: str, who: User) -> dict[str, Any]:
        return shown(by_uuid.get(uuid, ""), who)

    @app.get("/v1/users/{user}", response_model=UserOut, response_model_exclude_none=True)
    def get_user(user: str, who: User) -> dict[str, Any]:
        return shown(user, who)


def _membership(gateway: Gateway, user: str) -> dict[str, Any]:
    """The user's project as AMS shows it: roles, topics and subscriptions."""
    topics = gateway.list_topics()["topics"]
    subs = gateway.list_subs()["subscriptions"]
    names = [str(t["name"]).rsplit("/", 1)[-1] for t in topics]
    roles = [role for role, action in _ROLES if any(_may(gateway, user, action, t) for t in names)]
    if not gateway.settings.permissions:
        roles = [role for role, _ in _ROLES]  # every user may do everything
    return {
        "project": gateway.project,
        "roles": roles,
        "topics": [t for t in names if _may(gateway, user, "write", t)],
        "subscriptions": [
            s for s, t in ((_last(s["name"]), _last(s["topic"])) for s in subs)
            if _may(gateway, user, "read", t, s)
        ],
    }  # fmt: skip


def _last(path: Any) -> str:
    return str(path).rsplit("/", 1)[-1]


def _may(gateway: Gateway, user: str, action: Action, topic: str, sub: str | None = None) -> bool:
    try:
        gateway.authorize(user, action, topic, sub)
    except AmsError:
        return False
    return True
