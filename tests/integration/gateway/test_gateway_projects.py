"""AMS's project and user routes on ``msgbus gateway`` with the unmodified
argo-ams-library: what reads them (profile, users by name, token and uuid, the user
list and its pages, the project and its members) answers from ``gateway.users`` and
``gateway.permissions``, each user's roles, topics and subscriptions following its
groups and the ACLs; what would change them answers 501 naming the route, and nothing
changes. ``GET /v1/projects`` and the member list have no library call: plain HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsServiceException,
    AmsUser,
)

from tests.fixtures.gateway import GROUPS, PROJECT, READER, TOKEN, Gateway

pytestmark = pytest.mark.parametrize("ams_gateway", [GROUPS], indirect=True, ids=["acl"])


def _get(gateway: Gateway, path: str, token: str = TOKEN) -> Any:
    answer = requests.get(f"{gateway.url}{path}", headers={"x-api-key": token}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _membership(user: AmsUser) -> tuple[str, list[str], list[str], list[str]]:
    [project] = user.projects
    return project.project, project.roles, project.topics, project.subscriptions


def test_users_read_their_profile_and_each_other_from_the_gateways_configuration(
    ams_gateway: Gateway,
) -> None:
    probe, reader = ams_gateway.ams(), ams_gateway.ams(READER)
    probe.create_topic("results")
    reader.create_sub("db", "results")
    me = probe.get_user_profile()
    assert (me.name, me.token, me.service_roles) == ("probe", TOKEN, [])
    assert _membership(me) == (PROJECT, ["project_admin", "publisher"], ["results"], [])
    them = probe.get_user("reader")
    assert (them.name, them.token) == ("reader", "")  # another user's token is not shown
    assert _membership(them) == (PROJECT, ["consumer"], [], ["db"])
    # An ACL entry shows in the user's subscriptions.
    probe.modifyacl_sub("db", ["probe"])
    assert _membership(probe.get_user_profile())[3] == ["db"]
    by_token = probe.get_user_by_token(READER)
    assert (by_token.name, by_token.token) == ("reader", READER)
    assert probe.get_user_by_uuid(them.uuid).name == "reader"
    assert reader.get_user_profile().uuid == them.uuid  # derived: the same every time
    assert probe.get_project_member("reader").uuid == them.uuid
    lookups: list[Callable[[], object]] = [
        lambda: probe.get_user("nobody"),
        lambda: probe.get_user_by_token("guess"),
    ]
    for missing in lookups:
        with pytest.raises(AmsServiceException) as refused:
            missing()
        assert refused.value.code == 404 and "User doesn't exist" in refused.value.msg


def test_the_user_list_pages_and_the_project_is_the_configured_one(ams_gateway: Gateway) -> None:
    ams = ams_gateway.ams()
    everyone = ams.list_users()
    assert [u.name for u in everyone.users] == ["probe", "reader"]
    assert (everyone.total_size, everyone.next_page_token) == (2, "")
    first = ams.list_users(page_size=1)
    assert [u.name for u in first.users] == ["probe"] and first.next_page_token
    rest = ams.list_users(page_size=1, next_page_token=first.next_page_token)
    assert [u.name for u in rest.users] == ["reader"] and rest.next_page_token == ""
    project = ams.get_project(PROJECT)
    assert project["name"] == PROJECT and "gateway.users" in project["description"]
    assert _get(ams_gateway, "/v1/projects")["projects"] == [project]
    members = _get(ams_gateway, f"/v1/projects/{PROJECT}/members", READER)
    assert [(u["name"], u["token"]) for u in members["users"]] == [
        ("probe", ""),
        ("reader", READER),
    ]
    with pytest.raises(AmsServiceException) as elsewhere:
        ams.get_project("another")
    assert elsewhere.value.code == 404


def test_what_would_change_users_or_projects_is_a_501_naming_it_and_changes_nothing(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    calls: dict[str, Callable[[], object]] = {
        "create_user": lambda: ams.create_user(AmsUser(name="new")),
        "update_user": lambda: ams.update_user("reader", email="x@y", service_roles=[],
                                               projects=[]),
        "delete_user": lambda: ams.delete_user("reader"),
        "refresh_user_token": lambda: ams.refresh_user_token("reader"),
        "create_project": lambda: ams.create_project("another", "more"),
        "update_project": lambda: ams.update_project(PROJECT, description="new"),
        "delete_project": lambda: ams.delete_project(PROJECT),
        "add_project_member": lambda: ams.add_project_member("reader", roles=["publisher"]),
        "create_project_member": lambda: ams.create_project_member("new"),
        "remove_project_member": lambda: ams.remove_project_member("reader", PROJECT),
    }  # fmt: skip
    for name, call in calls.items():
        with pytest.raises(AmsServiceException) as refused:
            call()
        assert refused.value.code == 501, name
        assert f"({name})" in refused.value.msg and "nothing was changed" in refused.value.msg
    assert [u.name for u in ams.list_users().users] == ["probe", "reader"]
    assert ams.get_user_by_token(READER).token == READER
    assert ams.get_project(PROJECT)["name"] == PROJECT
