"""The sections of ``msgbus gateway`` (the AMS-compatible REST gateway): its users,
topics, retention log and limits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StringConstraints, model_validator

from msgbus.config.section import Section as _Section
from msgbus.permissions import DEFAULT_GROUP, Permission, require_known_groups

__all__ = ["GatewayConfig", "GatewayRetention", "GatewayTopic", "GatewayUser"]


class GatewayUser(_Section):
    """One user of ``msgbus gateway``: the token it sends (``x-api-key`` or ``?key=``),
    for X.509 logins the certificate DN that is given that token, and its groups."""

    token: SecretStr = Field(repr=False, description="The user's AMS token")
    dn: str | None = Field(
        None, description="Certificate DN (either notation) exchanged for the token"
    )
    groups: list[str] = Field(
        default_factory=list, description="Groups gateway.permissions name (none: users)"
    )

    def member_of(self) -> frozenset[str]:
        return frozenset(self.groups or [DEFAULT_GROUP])


_AMS_NAME = r"^[A-Za-z0-9_.-]{1,200}$"


class GatewayTopic(_Section):
    """What ``msgbus gateway`` checks on one AMS topic (``gateway.topics.<name>``)."""

    schema_: Literal["wlcg"] | None = Field(
        None,
        alias="schema",
        description="wlcg: published data must be valid msgbus messages (WLCG text or its "
        "JSON form; the messageClass and content-type attributes choose model and format), "
        "as msgbus publish checks them, else a 400 naming message and field; none: any bytes "
        "(a schema attached with :attachSchema replaces this one)",
    )


class GatewayRetention(_Section):
    """The retention log of ``msgbus gateway`` (``gateway.retention``): AMS's replay
    (``:offsets``, ``:modifyOffset``, ``:timeToOffset``) over every message of a topic,
    published through the gateway or over STOMP. A message leaves the log once it is
    outside these limits *and* every subscription of its topic acknowledged it."""

    enabled: bool = Field(
        False,
        description="true: a durable subscription per topic fills the log (in state_dir) "
        "and subscriptions are served from it, by offset; false: straight from the broker, "
        "and the offset routes answer 501",
    )
    max_age: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="Seconds a message is kept; then it leaves once acknowledged (7 days)",
    )
    max_messages: int | None = Field(
        None, ge=1, description="Most messages kept per topic (the newest); none: no limit"
    )
    max_bytes: int | None = Field(
        None,
        ge=1,
        description="Most bytes (bodies and headers as JSON) kept per topic, of the newest "
        "messages; none: no limit",
    )


class GatewayConfig(_Section):
    """``msgbus gateway``: an ARGO AMS-compatible REST front to the brokers.

    ``permissions`` are the embedded broker's (:mod:`msgbus.permissions`), on the STOMP
    destination an AMS topic maps to: ``write`` publishes, ``read`` subscribes, pulls and
    acknowledges, ``admin`` creates and deletes topics. Without them every user may do
    everything, as before they existed. A topic takes any bytes unless ``topics`` gives
    it a schema or one is attached to it (``:attachSchema``), as on AMS.
    """

    project: str = Field("msgbus", pattern=r"^[A-Za-z0-9_.-]+$", description="AMS project")
    topic_prefix: str = Field(
        "/topic/ams.",
        pattern=r"^/topic/[A-Za-z0-9_.-]*$",
        description="AMS topic T is the STOMP destination <topic_prefix>T",
    )
    users: dict[str, GatewayUser] = Field(default_factory=dict, description="By user name")
    permissions: list[Permission] = Field(
        default_factory=list,
        description="Per destination pattern (topic_prefix included, e.g. /topic/ams.>), "
        "the groups that may read, write and admin; none: every user may do everything",
    )
    topics: dict[Annotated[str, StringConstraints(pattern=_AMS_NAME)], GatewayTopic] = Field(
        default_factory=dict,
        description="Per AMS topic name, what the gateway checks on it; a topic not named "
        "here takes any bytes, as an AMS topic without a schema does",
    )
    max_message_bytes: int = Field(
        3 * 1024 * 1024,
        ge=1024,
        description="Largest message a publish takes (decoded data plus attribute names and "
        "values); a larger one is a 413 for the request. Keep it under the broker's frame "
        "limit (the embedded broker's max_frame_bytes, 4 MiB by default)",
    )
    ack_deadline: int = Field(10, ge=1, le=600, description="Default ackDeadlineSeconds")
    retry_window: float = Field(
        600.0,
        ge=0,
        description="Seconds during which a message published again (same topic, data and "
        "attributes) is taken as a retry: it keeps its msgbus-id and is not sent twice; "
        "0: every publish is sent",
    )
    state_dir: Path = Field(
        Path("gateway-state"),
        description="Where topics, subscriptions, schemas, ACL lists and metrics counts are kept",
    )
    push_ca: Path | None = Field(
        None,
        description="CA bundle (PEM) the certificates of push endpoints are verified "
        "against; none: the system's trusted CAs. Endpoints are https only, as on AMS",
    )
    push_timeout: float = Field(
        10.0, gt=0, description="Seconds a push POST (or an endpoint verification) may take"
    )
    push_verify: bool = Field(
        False,
        description="true: a push subscription pushes only once :verifyPushEndpoint "
        "verified its endpoint, as on AMS; false: at once (argo-ams-library 1.0.0 has no "
        "call to verify)",
    )
    retention: GatewayRetention = Field(
        default_factory=GatewayRetention,
        description="The retention log AMS replay reads (off unless enabled)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_validate_bodies(cls, data: Any) -> Any:
        # Removed: AMS validates only topics that have a schema, so msgbus does too.
        if isinstance(data, Mapping) and "validate_bodies" in data:
            instead = (
                "name each topic to validate under gateway.topics (e.g. topics: {probes: "
                "{schema: wlcg}}) and remove validate_bodies"
                if data["validate_bodies"]
                else "remove it: topics not named under gateway.topics take any bytes"
            )
            gone = "gateway.validate_bodies is gone (topics are checked per topic)"
            raise ValueError(f"{gone}; {instead}")
        return data

    @model_validator(mode="after")
    def _check_permissions(self) -> GatewayConfig:
        require_known_groups((u.member_of() for u in self.users.values()), self.permissions)
        return self
