"""The gateway's AMS routes beyond publish and pull: schemas (:mod:`.schemas`), ACLs
(:mod:`.acl`) and metrics (:mod:`.metrics`).

Who may do what: a schema acts only through the topics it is attached to, so creating one
is open to every user, and changing or deleting one takes ``admin`` on every topic that
has it; attaching and detaching take ``admin`` on the topic, as changing an ACL does.
Reading (get, list, ``:validate``, ``:acl``, ``:metrics``) is open to every user, as
reading topics is.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from msgbus.gateway.acl import Kind
from msgbus.gateway.amserror import AmsError
from msgbus.gateway.metrics import Counters, operational
from msgbus.gateway.params import Name, User
from msgbus.gateway.service import Gateway

__all__ = ["add_manage_routes"]


class SchemaIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type: str = Field(description="json, avro or wlcg (msgbus messages)")
    body: dict[str, Any] = Field(
        alias="schema", description="The JSON Schema, the Avro schema, or for wlcg {} or "
        '{"messageClass": NAME}'
    )  # fmt: skip


class SchemaUpdate(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str | None = Field(None, description="A new name: projects/PROJECT/schemas/NAME")
    type: str | None = None
    body: dict[str, Any] | None = Field(None, alias="schema")


class SchemaOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    uuid: str
    name: str
    type: str
    body: dict[str, Any] = Field(alias="schema")


class SchemaList(BaseModel):
    schemas: list[SchemaOut]


class Validated(BaseModel):
    message: str


class AttachRequest(BaseModel):
    schema_: str = Field("", alias="schema", description="projects/PROJECT/schemas/NAME")


class Acl(BaseModel):
    authorized_users: list[str]


class Metric(BaseModel):
    metric: str
    metric_type: str
    value_type: str
    resource_type: str
    resource_name: str
    timeseries: list[dict[str, Any]]
    description: str


class Metrics(BaseModel):
    metrics: list[Metric]


def add_manage_routes(app: FastAPI, gateway: Gateway, counters: Counters) -> None:
    base = "/v1/projects/{project:name}"

    def project_of(project: str) -> None:
        if project != gateway.project:
            raise AmsError(404, "Project doesn't exist")

    _schema_routes(app, gateway, f"{base}/schemas", project_of)
    _topic_routes(app, gateway, counters, f"{base}/topics/{{topic:name}}", project_of)
    _sub_routes(app, gateway, counters, f"{base}/subscriptions/{{sub:name}}", project_of)

    @app.get("/v1/metrics", response_model=Metrics)
    def metrics(who: User) -> dict[str, Any]:
        return operational()


def _schema_routes(app: FastAPI, gateway: Gateway, path: str, project_of: Any) -> None:
    registry = gateway.schemas

    def may_change(who: str, name: str) -> None:
        for topic in registry.topics_of(name):
            gateway.authorize(who, "admin", topic)

    @app.get(path, response_model=SchemaList, response_model_by_alias=True)
    def list_schemas(project: Name, who: User) -> dict[str, Any]:
        project_of(project)
        return registry.listing()

    @app.post(f"{path}/{{schema:name}}", response_model=SchemaOut)
    def create_schema(project: Name, schema: Name, body: SchemaIn, who: User) -> dict[str, Any]:
        project_of(project)
        return registry.create(schema, body.type, body.body)

    @app.get(f"{path}/{{schema:name}}", response_model=SchemaOut)
    def get_schema(project: Name, schema: Name, who: User) -> dict[str, Any]:
        project_of(project)
        return registry.get(schema)

    @app.put(f"{path}/{{schema:name}}", response_model=SchemaOut)
    def update_schema(project: Name, schema: Name, body: SchemaUpdate, who: User) -> dict[str, Any]:
        project_of(project)
        may_change(who, schema)
        return registry.update(schema, body.name, body.type, body.body)

    @app.delete(f"{path}/{{schema:name}}")
    def delete_schema(project: Name, schema: Name, who: User) -> dict[str, Any]:
        project_of(project)
        may_change(who, schema)
        registry.delete(schema)
        return {}

    # The body is the message itself for a JSON schema: any JSON, read as it came.
    @app.post(f"{path}/{{schema:name}}:validate", response_model=Validated)
    async def validate(project: Name, schema: Name, who: User, request: Request) -> Any:
        project_of(project)
        registry.validate(schema, await request.body())
        return {"message": "Message validated successfully"}


def _topic_routes(
    app: FastAPI, gateway: Gateway, counters: Counters, path: str, project_of: Any
) -> None:
    @app.post(f"{path}:attachSchema")
    def attach_schema(project: Name, topic: Name, body: AttachRequest, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.get_topic(topic)
        gateway.authorize(who, "admin", topic)
        gateway.schemas.attach(topic, body.schema_)
        return {}

    @app.post(f"{path}:detachSchema")
    def detach_schema(project: Name, topic: Name, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.get_topic(topic)
        gateway.authorize(who, "admin", topic)
        gateway.schemas.attach(topic, "")
        return {}

    @app.get(f"{path}:acl", response_model=Acl)
    def topic_acl(project: Name, topic: Name, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.get_topic(topic)
        return {"authorized_users": _allowed(gateway, "write", topic)}

    @app.post(f"{path}:modifyAcl")
    def modify_topic_acl(project: Name, topic: Name, body: Acl, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.get_topic(topic)
        _modify(gateway, who, "topics", topic, topic, body.authorized_users)
        return {}

    @app.get(f"{path}:metrics", response_model=Metrics)
    def topic_metrics(project: Name, topic: Name, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.get_topic(topic)
        full = gateway.topic_name(topic)
        subs = sum(1 for s in gateway.list_subs()["subscriptions"] if s["topic"] == full)
        return counters.topic(topic, subs)


def _sub_routes(
    app: FastAPI, gateway: Gateway, counters: Counters, path: str, project_of: Any
) -> None:
    @app.get(f"{path}:acl", response_model=Acl)
    def sub_acl(project: Name, sub: Name, who: User) -> dict[str, Any]:
        project_of(project)
        topic = _topic_of(gateway, sub)
        return {"authorized_users": _allowed(gateway, "read", topic, sub)}

    @app.post(f"{path}:modifyAcl")
    def modify_sub_acl(project: Name, sub: Name, body: Acl, who: User) -> dict[str, Any]:
        project_of(project)
        topic = _topic_of(gateway, sub)
        _modify(gateway, who, "subscriptions", sub, topic, body.authorized_users)
        return {}

    @app.get(f"{path}:metrics", response_model=Metrics)
    def sub_metrics(project: Name, sub: Name, who: User) -> dict[str, Any]:
        project_of(project)
        _topic_of(gateway, sub)
        return counters.subscription(sub, gateway.push_state(sub))


def _topic_of(gateway: Gateway, sub: str) -> str:
    return str(gateway.get_sub(sub)["topic"]).rsplit("/", 1)[-1]


def _allowed(gateway: Gateway, action: Any, topic: str, sub: str | None = None) -> list[str]:
    """The users who may ``action`` the topic (or subscription) now: groups and ACL."""
    allowed = []
    for user in gateway.settings.users:
        try:
            gateway.authorize(user, action, topic, sub)
        except AmsError:
            continue
        allowed.append(user)
    return sorted(allowed)


def _modify(
    gateway: Gateway, who: str, kind: Kind, name: str, topic: str, users: list[str]
) -> None:
    gateway.authorize(who, "admin", topic)
    gateway.acl.modify(kind, name, users, gateway.settings.users)
