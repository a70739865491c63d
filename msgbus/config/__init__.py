"""Typed configuration: YAML file, ``MSGBUS_*`` environment, command-line flags.

Precedence, highest first: flags (passed as overrides), environment, YAML file,
defaults. Everything is validated once, here; the rest of msgbus receives models.
Environment variables name nested fields with ``__``, e.g.
``MSGBUS_CONNECTION__BROKERS='["stomp://a:61613","stomp://b:61613"]'`` or
``MSGBUS_STORE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from msgbus.config.gateway import GatewayConfig, GatewayRetention, GatewayTopic, GatewayUser
from msgbus.config.section import Section as _Section
from msgbus.errors import ConfigError

# Transport settings belong to the transport layer; the configuration composes them.
from msgbus.transport.settings import ConnectionConfig, TLSConfig

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ConnectionConfig",
    "ConsumerConfig",
    "ControlConfig",
    "GatewayConfig",
    "GatewayRetention",
    "GatewayTopic",
    "GatewayUser",
    "IcingaConfig",
    "MetricsConfig",
    "MsgbusConfig",
    "PublisherConfig",
    "StoreConfig",
    "TLSConfig",
    "config_for",
    "deep_merge",
    "default_spool_dir",
    "describe_validation_error",
    "drop_none",
    "load_config",
    "read_environment",
    "read_yaml",
]

DEFAULT_CONFIG_FILE = Path("msgbus.yaml")
ENV_PREFIX = "MSGBUS_"
DEFAULT_DESTINATION = "/topic/grid.probe.metricOutput.EGEE.msgbus"


def default_spool_dir() -> Path:
    """Per-user spool location (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "msgbus" / "spool"


class PublisherConfig(_Section):
    destination: str = Field(
        DEFAULT_DESTINATION,
        description="STOMP destination results are sent to, unless --destination names another",
    )
    format: Literal["wlcg", "json"] = Field(
        "wlcg",
        description="Body format: WLCG key: value text, or JSON",
    )
    persistent: bool = Field(
        True,
        description="Send persistent messages (the broker keeps them on disk until delivered)",
    )
    window: int = Field(
        8192,
        ge=1,
        le=65_536,
        description="Unconfirmed messages in flight at most; on ActiveMQ each confirmation "
        "unit costs a journal sync, so large units keep confirmed sends near raw speed",
    )
    spool_dir: Path = Field(
        default_factory=default_spool_dir,
        description="Directory of the on-disk spool, where accepted messages wait while no "
        "broker answers",
    )
    spool_max_bytes: int = Field(
        1 << 30,
        ge=1024,
        description="Size bound of the spool; beyond it publishing fails with SpoolFull",
    )
    confirm: Literal["transaction", "receipt", "cumulative"] = Field(
        "transaction",
        description="How receipts confirm messages: a transaction per batch (a batch cut "
        "short by a full queue or disk is stored whole or not at all, so no consumer sees "
        "a duplicate), one receipt on the last SEND of a batch (faster on ActiveMQ, but "
        "what a refusal cut short is sent again: consumers that do not drop duplicates by "
        "msgbus-id see them), or a receipt per SEND; RabbitMQ always gets a receipt per "
        "SEND (see msgbus.publish.pipeline)",
    )
    batch: int = Field(
        2048,
        ge=1,
        le=4096,
        description="Messages per confirmation unit (transaction or cumulative receipt)",
    )
    retry_for: float = Field(
        10.0,
        ge=0,
        description="Seconds to keep trying the brokers before unconfirmed messages go to the"
        " spool",
    )
    sync: bool = Field(
        True,
        description="End each run's last message per destination with the msgbus-last "
        "and msgbus-skipped headers for the consumers' ledger (sent once the run's other "
        "messages are confirmed, not as a message of their own: other consumers see only "
        "the user's messages); "
        "off: no end-of-run headers, and numbers given up on count as missing",
    )
    wire: Literal["compact", "legacy"] = Field(
        "compact",
        description="How messages carry their number for the consumers' ledger: compact, "
        "one msgbus-seq header (producer/epoch/n), or legacy, the msgbus-producer, "
        "msgbus-epoch and msgbus-seq headers older msgbus consumers need to count "
        "them (they store compact ones once but count them as unnumbered)",
    )
    selectors: bool = Field(
        True,
        description="Copy a one-message body's selector fields (siteName, metricName, "
        "metricStatus, hostName, serviceFlavour) into headers, which broker selectors and "
        "routing filter on; off when nothing filters: ActiveMQ spends about 3 µs of CPU per "
        "header and frame, and these five are most of what a msgbus frame costs it more "
        "than a bare one (docs/performance.md)",
    )
    pack: int = Field(
        1,
        ge=1,
        le=1000,
        description="Messages per body (WLCG texts ended by EOT, or a JSON list, with a "
        "recordCount header), as MSG publishers packed bulk results: fewer, larger frames "
        "for the brokers and the consumers; only one-message bodies carry the selector "
        "headers (siteName, metricStatus, ...) that selectors and routing read",
    )
    sign_cert: Path | None = Field(
        None,
        description="Certificate (PEM) to S/MIME-sign every body with; needs sign_key and the"
        " signing extra",
    )
    sign_key: Path | None = Field(None, description="Private key (PEM) of sign_cert")
    encrypt_cert: Path | None = Field(
        None,
        description="Encrypt each (signed) body for this certificate's owner with AES-128, "
        "as APEL SSM's sender does with its server certificate (openssl smime -encrypt)",
    )


class ConsumerConfig(_Section):
    destination: str = Field(
        DEFAULT_DESTINATION,
        description="STOMP destination to consume: /queue/..., or /topic/... (durable with "
        "subscription)",
    )
    subscription: str | None = Field(
        None,
        description="Name of a durable topic subscription; none: a plain subscription that "
        "keeps nothing while away",
    )
    batch: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Messages written and committed in one transaction at most",
    )
    max_wait: float = Field(
        1.0,
        gt=0,
        description="Seconds to wait for a batch to fill after its first message; --drain "
        "stops after this long without messages",
    )
    ack: Literal["client", "client-individual"] = Field(
        "client",
        description="How committed batches are acknowledged: one cumulative ACK of the "
        "batch's last message (batches commit in order, so it covers exactly the committed "
        "ones; ActiveMQ spends ~20 us less CPU per message, measured), or one ACK per message",
    )
    allowed_signers: list[str] = Field(
        default_factory=list,
        description="Certificate DNs whose S/MIME-signed bodies are accepted (either DN "
        "notation); when set, unsigned bodies and other signers are dead-lettered",
    )
    signer_ca: Path | None = Field(
        default=None, description="CA file or directory the signers' certificates chain to"
    )
    decrypt_cert: Path | None = Field(
        None,
        description="This host's certificate: S/MIME-encrypted bodies (application/pkcs7-mime) "
        "are decrypted with it and decrypt_key before the signature check, as APEL SSM's "
        "receiver does",
    )
    decrypt_key: Path | None = Field(None, description="The private key of decrypt_cert")
    foreign: Literal["store", "dead-letter"] = Field(
        "store",
        description="Bodies in no msgbus format (APEL records, Avro, any bytes: no messageClass "
        "header, not empty, no EOT line and no field of a msgbus message type in them; see "
        "msgbus.schema.body.is_foreign): 'store' keeps them unmodified in the "
        "foreign_messages table (body, headers, verified signer), 'dead-letter' puts them "
        "among the dead letters as before",
    )
    selector: str | None = Field(
        None,
        description="JMS selector on message headers, e.g. \"voName = 'atlas'\" "
        "(ActiveMQ and the embedded broker; refused on RabbitMQ, which has none); such a "
        "consumer keeps no completeness ledger (it sees only part of each producer)",
    )
    ledger: bool = Field(
        True,
        description="Keep the completeness ledger (msgbus audit) in the same transaction "
        "as the rows; off only to measure its cost",
    )


class StoreConfig(_Section):
    """How long the store may take: a stalled database must surface, not hang."""

    connect_timeout: float = Field(
        10.0, gt=0, description="Seconds to open a database connection before it counts as down"
    )
    statement_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a batch write may take; then it is logged, counted "
        "(store_stalls_total), its connection cut and the batch retried (nothing acked)",
    )


class MetricsConfig(_Section):
    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics over HTTP on this port (0: any free one); none:"
        " not served",
    )
    textfile: Path | None = Field(
        None,
        description="Write the metrics to this file for node-exporter's textfile collector "
        "when the command ends",
    )


class ControlConfig(_Section):
    """Presence and the control channel (see msgbus.presence)."""

    allowed_users: list[str] = Field(
        default_factory=list,
        description="Users whose control commands other than status a component runs",
    )
    presence_topic: str = Field(
        "/topic/msgbus.presence",
        description="Topic where components announce themselves",
    )
    presence_interval: float = Field(
        10.0,
        gt=0,
        description="Seconds between a component's presence announcements",
    )
    lost_after: float = Field(
        30.0,
        gt=0,
        description="Seconds without an announcement after which a component shows as lost",
    )
    prefix: str = Field(
        "msgbus.control",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Prefix of the control destinations: /queue/<prefix>.<name>, "
        "/topic/<prefix>.kind.<k>, ...",
    )
    reply_prefix: str = Field(
        "/temp-queue/",
        description="Where replies come back (ActiveMQ and RabbitMQ both offer /temp-queue/)",
    )
    user: str | None = Field(
        None,
        description="Identity msgbus ctl claims (default: connection.login, else the OS user)",
    )
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        repr=False,
        description="Per-user HMAC secrets: a user with a secret must sign every command with it",
    )
    max_clock_skew: float = Field(
        120.0,
        gt=0,
        description="Seconds a signed command's time may differ from the component's clock",
    )
    log_lines: int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Log lines a component keeps for msgbus ctl to read",
    )

    def destinations(self) -> list[str]:
        """Every presence and control destination, as wildcards: each component needs
        them (brokers open them to every user, networks forward them), and each
        component authorizes control requests itself (msgbus.presence.auth)."""
        return [self.presence_topic, f"/queue/{self.prefix}.>", f"/topic/{self.prefix}.>"]


class IcingaConfig(_Section):
    """Icinga 2's REST API, where ``msgbus nagios-bridge`` submits check results when
    ``url`` is set (instead of Nagios' command file)."""

    url: str | None = Field(
        None,
        pattern=r"^https://[^/?#]+/?$",
        description="Icinga 2 API (https://HOST:5665): nagios-bridge submits results there "
        "instead of Nagios' command file",
    )
    user: str | None = Field(None, description="ApiUser name, allowed actions/process-check-result")
    password: SecretStr | None = Field(None, repr=False, description="Its password")
    ca: Path | None = Field(
        None,
        description="Icinga's own CA, which signs its API certificates, e.g. "
        "/var/lib/icinga2/certs/ca.crt",
    )
    cert: Path | None = Field(
        None,
        description="Client certificate, for an ApiUser with client_cn instead of a password",
    )
    key: Path | None = Field(None, description="Private key of cert")
    timeout: float = Field(30.0, gt=0, description="Seconds one API request may take")

    @model_validator(mode="after")
    def _credentials(self) -> IcingaConfig:
        if self.url is not None and self.cert is None and (not self.user or not self.password):
            raise ValueError("the Icinga API needs a user and a password, or a client cert")
        if self.key is not None and self.cert is None:
            raise ValueError("a client key needs its cert")
        return self


class MsgbusConfig(BaseModel):
    """The whole msgbus configuration."""

    # validate_default as pydantic-settings' BaseSettings did: defaults are checked too.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    name: str | None = Field(
        None,
        description="This component's name in presence and control (default: kind@host:pid)",
    )
    site: str | None = Field(
        None,
        description="The site this component runs at (presence; msgbus probe's siteName)",
    )
    connection: ConnectionConfig = Field(
        default_factory=ConnectionConfig,
        description="How to reach the brokers",
    )
    publisher: PublisherConfig = Field(
        default_factory=PublisherConfig,
        description="msgbus publish, msgbus probe and Publisher",
    )
    consumer: ConsumerConfig = Field(
        default_factory=ConsumerConfig,
        description="msgbus consume and Consumer",
    )
    store_url: str = Field(
        "sqlite:///msgbus.db",
        description="SQLAlchemy URL of the relational store, e.g. "
        "postgresql+psycopg://user@host/db",
    )
    store: StoreConfig = Field(default_factory=StoreConfig, description="Time limits of the store")
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,
        description="Prometheus metrics of long-running and short-lived commands",
    )
    control: ControlConfig = Field(
        default_factory=ControlConfig,
        description="Presence and the control channel",
    )
    gateway: GatewayConfig = Field(
        default_factory=GatewayConfig,
        description="msgbus gateway, the ARGO AMS-compatible REST API",
    )
    icinga: IcingaConfig = Field(
        default_factory=IcingaConfig,
        description="Icinga 2's REST API for msgbus nagios-bridge",
    )


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_environment() -> dict[str, Any]:
    """The ``MSGBUS_*`` variables as a nested mapping (values still to be validated)."""
    if not any(key[:7].upper() == ENV_PREFIX for key in os.environ):
        return {}
    # Imported only when there is something to read: pydantic-settings and what it
    # imports (asyncio, ssl, email, importlib.metadata) cost a one-shot run ~70 ms.
    from pydantic_settings import EnvSettingsSource, SettingsError

    # The source reads the fields of any pydantic model; MsgbusConfig is validated once,
    # by load_config, from the merged file, environment and flags.
    source = EnvSettingsSource(
        MsgbusConfig,  # type: ignore[arg-type]
        case_sensitive=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
    )
    try:
        return source()
    except SettingsError as exc:
        raise ConfigError(f"invalid MSGBUS_* environment variable: {exc}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # here: a run without a configuration file does not pay for it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
    return data


def describe_validation_error(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{where}: {err['msg']}")
    return f"invalid configuration ({source}): " + "; ".join(problems)


def config_for(
    urls: Sequence[str], section: Literal["publisher", "consumer"], settings: Mapping[str, Any]
) -> MsgbusConfig:
    """A configuration for the library's ``from_url`` constructors: brokers from ``urls``;
    of ``settings``, connection fields (``login``, ``tls``, ...) go to ``connection``,
    top-level ones (``store_url``, ``name``, ``site``) to the top, the rest to
    ``section``. ``MSGBUS_*`` variables still apply; ``msgbus.yaml`` is not read."""
    data: dict[str, Any] = {"connection": {"brokers": list(urls)}, section: {}}
    top = set(MsgbusConfig.model_fields) - {"connection", section}
    for key, value in settings.items():
        if key in ConnectionConfig.model_fields:
            data["connection"][key] = value
        elif key in top:
            data[key] = value
        else:
            data[section][key] = value
    try:
        return MsgbusConfig(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "keyword arguments")) from None


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> MsgbusConfig:
    """Load and validate the configuration.

    ``path`` is an explicit ``--config`` file (must exist); without it ``msgbus.yaml``
    in the working directory is read when present. ``overrides`` are flag values as
    a nested mapping; ``None`` values (flags not given) are ignored.
    """
    source = "defaults and MSGBUS_* environment"
    file_data: dict[str, Any] = {}
    if path is not None:
        file_data = read_yaml(path)
        source = f"{path} and MSGBUS_* environment"
    elif DEFAULT_CONFIG_FILE.is_file():
        file_data = read_yaml(DEFAULT_CONFIG_FILE)
        source = f"{DEFAULT_CONFIG_FILE} and MSGBUS_* environment"
    data = deep_merge(deep_merge(file_data, read_environment()), drop_none(overrides or {}))
    try:
        return MsgbusConfig(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            inner = drop_none(value)
            if inner:
                out[key] = inner
        elif value is not None and value != ():
            out[key] = value
    return out
