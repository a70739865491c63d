"""The HTTP side of ``msgbus gateway``: the subset of the ARGO Messaging Service (AMS)
v1 API that publishers and pull consumers use, with its OpenAPI document at
``/openapi.json``. Every request carries a user's token (``x-api-key`` header or
``?key=``); errors are AMS error bodies (``{"error": {"code", "message", "status"}}``).
"""

from __future__ import annotations

import base64
import platform
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from msgbus import __version__
from msgbus.errors import MsgbusError
from msgbus.gateway.manage import add_manage_routes
from msgbus.gateway.offsets import add_offset_routes
from msgbus.gateway.params import Name, PageSize, PageToken, User
from msgbus.gateway.projects import add_project_routes
from msgbus.gateway.service import AmsError, Gateway
from msgbus.gateway.unserved import add_unserved_routes

__all__ = ["make_app"]

_MAX_BODY = 32 * 1024 * 1024  # a publish of many messages, base64: well above any real one


_PUSH_CONFIG = (
    "AMS's: pushEndpoint (https), maxMessages, retryPolicy {type: linear|slowstart, period "
    "ms}, authorizationHeader {type: autogen|disabled}, base64Decode; empty: pull"
)


class MessageIn(BaseModel):
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Any names and values; pulls return them as given"
    )
    data: str | None = Field("", description="The body, base64-encoded: any bytes")


class PublishRequest(BaseModel):
    messages: list[MessageIn] = Field(min_length=1, max_length=10_000)


class PublishResponse(BaseModel):
    messageIds: list[str]


class TopicOut(BaseModel):
    name: str


class TopicIn(BaseModel):
    schema_: str = Field(
        "", alias="schema", description="A schema to attach: projects/P/schemas/S, or S"
    )


class TopicShown(TopicOut):
    schema_: str | None = Field(
        None, alias="schema", description="The schema attached: projects/P/schemas/S"
    )


class TopicList(BaseModel):
    topics: list[TopicOut]
    nextPageToken: str = Field(description="pageToken of the next page; empty: the last")
    totalSize: int


class SubscriptionIn(BaseModel):
    # Other fields are taken and ignored, as AMS ignores what it does not know.
    model_config = ConfigDict(extra="allow")

    topic: str = Field(description="projects/PROJECT/topics/TOPIC")
    ackDeadlineSeconds: int | None = Field(None, ge=1, le=600)
    pushConfig: dict[str, Any] | None = Field(None, description=_PUSH_CONFIG)


class SubscriptionOut(BaseModel):
    name: str
    topic: str
    pushConfig: dict[str, Any]
    ackDeadlineSeconds: int
    pushStatus: str | None = Field(None, description="A push subscription's endpoint state")


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]
    nextPageToken: str = Field(description="pageToken of the next page; empty: the last")
    totalSize: int


class PullRequest(BaseModel):
    # argo-ams-library sends both as strings ("1", "false").
    maxMessages: int = Field(1, ge=1, le=10_000)
    returnImmediately: bool = False


class MessageOut(BaseModel):
    messageId: str
    attributes: dict[str, str]
    data: str
    publishTime: str


class Received(BaseModel):
    ackId: str
    message: MessageOut


class PullResponse(BaseModel):
    receivedMessages: list[Received]


class AckRequest(BaseModel):
    ackIds: list[str] = Field(min_length=1, max_length=10_000)


class PushConfigRequest(BaseModel):
    pushConfig: dict[str, Any] = Field(default_factory=dict, description=_PUSH_CONFIG)


class StatusOut(BaseModel):
    status: str


class VersionOut(BaseModel):
    release: str
    compiler: str
    os: str
    architecture: str


class DeadlineRequest(BaseModel):
    ackDeadlineSeconds: int = Field(ge=1, le=600)


class ErrorDetail(BaseModel):
    code: int
    message: str
    status: str


class ErrorBody(BaseModel):
    error: ErrorDetail


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 408, 409, 413, 503)
}


def make_app(gateway: Gateway) -> FastAPI:
    """The FastAPI application serving ``gateway``."""
    app = FastAPI(
        title="msgbus gateway (ARGO AMS v1 subset)",
        version=__version__,
        responses=_ERRORS,
        # argo-ams-library sends JSON without a Content-Type; the CSRF this check guards
        # against needs a browser's cookies, and the API takes tokens only.
        strict_content_type=False,
        max_body_size=_MAX_BODY,
    )
    tokens = {user.token.get_secret_value(): name for name, user in gateway.settings.users.items()}

    @app.exception_handler(AmsError)
    async def _ams(request: Request, exc: AmsError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.code)

    @app.exception_handler(MsgbusError)
    async def _msgbus(request: Request, exc: MsgbusError) -> JSONResponse:
        # A broker that cannot be reached: the client may retry (AMS uses 503 too).
        return JSONResponse(AmsError(503, str(exc)).body(), status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (unparsable JSON, unknown path, wrong method): AMS bodies.
        return JSONResponse(
            AmsError(exc.status_code, str(exc.detail)).body(),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return JSONResponse(AmsError(400, f"Invalid argument: {where}").body(), status_code=400)

    app.state.tokens = tokens
    counters = gateway.counters
    base = "/v1/projects/{project:name}"

    def project_of(project: str) -> None:
        if project != gateway.project:
            raise AmsError(404, "Project doesn't exist")

    @app.get("/v1/status", response_model=StatusOut)
    def status() -> dict[str, Any]:
        return {"status": "ok"}  # AMS's health check: the service answers

    @app.get("/v1/version", response_model=VersionOut)
    def version() -> dict[str, Any]:
        return {
            "release": f"msgbus {__version__}",
            "compiler": f"{platform.python_implementation()} {platform.python_version()}",
            "os": platform.system().lower(),
            "architecture": platform.machine(),
        }

    @app.get(f"{base}/topics", response_model=TopicList)
    def list_topics(
        project: Name, who: User, pageSize: PageSize = 0, pageToken: PageToken = ""
    ) -> dict[str, Any]:
        project_of(project)
        return gateway.list_topics(pageSize, pageToken)

    @app.put(
        f"{base}/topics/{{topic:name}}", response_model=TopicShown, response_model_exclude_none=True
    )
    def create_topic(
        project: Name, topic: Name, who: User, body: TopicIn | None = None
    ) -> dict[str, Any]:
        project_of(project)
        # A schema that does not exist refuses the request before the topic is made.
        schema = gateway.schemas.resolve(body.schema_) if body and body.schema_ else ""
        created = gateway.create_topic(who, topic)
        if schema:
            try:
                gateway.schemas.attach(topic, schema)
            except AmsError:  # deleted meanwhile: no topic without the schema it asked for
                gateway.delete_topic(who, topic)
                raise
        return {**created, "schema": gateway.schemas.ref_of(topic)}

    @app.get(
        f"{base}/topics/{{topic:name}}", response_model=TopicShown, response_model_exclude_none=True
    )
    def get_topic(project: Name, topic: Name, who: User) -> dict[str, Any]:
        project_of(project)
        return {**gateway.get_topic(topic), "schema": gateway.schemas.ref_of(topic)}

    @app.delete(f"{base}/topics/{{topic:name}}")
    def delete_topic(project: Name, topic: Name, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.delete_topic(who, topic)
        gateway.schemas.forget_topic(topic)
        gateway.acl.forget("topics", topic)
        counters.forget(topic=topic)
        return {}

    @app.post(f"{base}/topics/{{topic:name}}:publish", response_model=PublishResponse)
    def publish(project: Name, topic: Name, body: PublishRequest, who: User) -> dict[str, Any]:
        project_of(project)
        ids = gateway.publish(who, topic, [m.model_dump() for m in body.messages])
        size = sum(len(base64.b64decode(m.data or "")) for m in body.messages)
        counters.published(topic, len(ids), size)
        return {"messageIds": ids}

    @app.get(
        f"{base}/subscriptions", response_model=SubscriptionList, response_model_exclude_none=True
    )
    def list_subs(
        project: Name, who: User, pageSize: PageSize = 0, pageToken: PageToken = ""
    ) -> dict[str, Any]:
        project_of(project)
        return gateway.list_subs(pageSize, pageToken)

    @app.put(
        f"{base}/subscriptions/{{sub:name}}",
        response_model=SubscriptionOut,
        response_model_exclude_none=True,
    )
    def create_sub(project: Name, sub: Name, body: SubscriptionIn, who: User) -> dict[str, Any]:
        project_of(project)
        return gateway.create_sub(who, sub, body.topic, body.ackDeadlineSeconds, body.pushConfig)

    @app.get(
        f"{base}/subscriptions/{{sub:name}}",
        response_model=SubscriptionOut,
        response_model_exclude_none=True,
    )
    def get_sub(project: Name, sub: Name, who: User) -> dict[str, Any]:
        project_of(project)
        return gateway.get_sub(sub)

    @app.delete(f"{base}/subscriptions/{{sub:name}}")
    def delete_sub(project: Name, sub: Name, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.delete_sub(who, sub)
        gateway.acl.forget("subscriptions", sub)
        counters.forget(sub=sub)
        return {}

    @app.post(f"{base}/subscriptions/{{sub:name}}:pull", response_model=PullResponse)
    def pull(project: Name, sub: Name, body: PullRequest, who: User) -> dict[str, Any]:
        project_of(project)
        got = gateway.pull(who, sub, body.maxMessages, body.returnImmediately)
        size = sum(len(base64.b64decode(r["message"]["data"])) for r in got)
        counters.pulled(sub, len(got), size)
        return {"receivedMessages": got}

    @app.post(f"{base}/subscriptions/{{sub:name}}:acknowledge")
    def acknowledge(project: Name, sub: Name, body: AckRequest, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.acknowledge(who, sub, body.ackIds)
        return {}

    @app.post(f"{base}/subscriptions/{{sub:name}}:modifyAckDeadline")
    def modify_ack_deadline(
        project: Name, sub: Name, body: DeadlineRequest, who: User
    ) -> dict[str, Any]:
        project_of(project)
        gateway.modify_ack_deadline(who, sub, body.ackDeadlineSeconds)
        return {}

    @app.post(f"{base}/subscriptions/{{sub:name}}:modifyPushConfig")
    def modify_push_config(
        project: Name, sub: Name, body: PushConfigRequest, who: User
    ) -> dict[str, Any]:
        project_of(project)
        gateway.modify_push_config(who, sub, body.pushConfig)
        return {}

    @app.post(f"{base}/subscriptions/{{sub:name}}:verifyPushEndpoint")
    def verify_push_endpoint(project: Name, sub: Name, who: User) -> dict[str, Any]:
        project_of(project)
        gateway.verify_push_endpoint(who, sub)
        return {}

    add_manage_routes(app, gateway, counters)
    add_offset_routes(app, gateway)
    add_unserved_routes(app)  # first: /v1/users/usageReport is not a user
    add_project_routes(app, gateway)
    return app
