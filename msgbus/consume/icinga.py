"""Probe results as passive check results through Icinga 2's REST API.

Each ProbeResult becomes one POST to ``/v1/actions/process-check-result``. What Icinga
answers decides what happens to the message:

* 200: taken; the caller may acknowledge.
* 404 (no such service), other 4xx, or any answer whose per-object results are all 4xx
  (403 "Passive checks are disabled for object ..."): refused for this message only
  (:class:`BridgeRefused`); reported, the others go on.
* 401, 403 without per-object results (the ApiUser lacks a permission), an untrusted
  certificate: the bridge's own configuration is wrong (:class:`BridgeError`); it stops.
* other 5xx, connection errors, timeouts: Icinga is away (:class:`BridgeUnavailable`);
  :class:`IcingaSink` retries with the reconnect policy's back-off, nothing acknowledged.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from msgbus.config import IcingaConfig
from msgbus.consume.nagios import RETURN_CODES, NameRule
from msgbus.errors import BridgeError, BridgeRefused, BridgeUnavailable, ConfigError
from msgbus.schema.models import ProbeResult
from msgbus.schema.nagios import perfdata_items
from msgbus.transport.reconnect import Reconnect
from msgbus.transport.settings import ConnectionConfig

__all__ = ["ACTION", "IcingaApi", "IcingaSink", "check_result_payload", "refusal"]

ACTION = "/v1/actions/process-check-result"


def check_result_payload(result: ProbeResult, rule: NameRule) -> dict[str, Any]:
    """The process-check-result request for ``result``. The service is named, not
    filtered: Icinga answers 404 for an unknown name but 500 for a filter matching
    nothing. Execution times are the probe's, so Icinga shows when the check ran."""
    host, service = rule.names(result)
    output = result.summaryData
    if result.detailsData:
        output += "\n" + result.detailsData
    when = result.timestamp.timestamp()
    return {
        "type": "Service",
        "service": f"{host}!{service}",
        "exit_status": RETURN_CODES[result.metricStatus],
        "plugin_output": output,
        "performance_data": perfdata_items(result.performanceData or ""),
        "check_source": result.gatheredAt or "msgbus",
        "execution_start": when,
        "execution_end": when,
    }


class IcingaApi:
    """One keep-alive HTTPS connection to Icinga's API, opened again after any failure."""

    def __init__(self, config: IcingaConfig) -> None:
        if config.url is None:
            raise ConfigError("no Icinga API URL: give --icinga-url https://HOST:5665")
        self.url = config.url.rstrip("/")
        parts = urlsplit(self.url)
        self._host, self._port = parts.hostname or "", parts.port or 5665
        self._timeout = config.timeout
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if config.user and config.password:
            token = f"{config.user}:{config.password.get_secret_value()}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        try:
            self._tls = ssl.create_default_context(cafile=config.ca)
            if config.cert is not None:
                self._tls.load_cert_chain(config.cert, config.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot read the Icinga CA or client certificate ({exc}); check --icinga-ca, "
                "--icinga-cert and --icinga-key"
            ) from exc
        self._conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Icinga's JSON answer to ``method path``, raising as the module docstring says."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        reused = self._conn is not None
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._tls
            )
        try:
            self._conn.request(method, path, body=data, headers=self._headers)
            response = self._conn.getresponse()
            status, text = response.status, response.read().decode("utf-8", "replace")
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise BridgeError(
                f"Icinga API {self.url}: its certificate is not trusted ({exc.verify_message}); "
                "give Icinga's CA with --icinga-ca (e.g. /var/lib/icinga2/certs/ca.crt)"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if reused:  # Icinga closes idle connections: once more on a new one
                return self.request(method, path, body)
            raise BridgeUnavailable(f"Icinga API {self.url} did not answer: {exc!r}") from exc
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if status == 200:
            return answer
        raise refusal(self.url, path, status, answer if isinstance(answer, dict) else {})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def refusal(url: str, path: str, status: int, answer: dict[str, Any]) -> BridgeError:
    """The error for a non-200 answer (see the module docstring)."""
    results = [r for r in answer.get("results", ()) if isinstance(r, dict)]
    said = "; ".join(str(r.get("status", "")) for r in results) or str(answer.get("status", ""))
    where = f"Icinga API {url}{path} answered {status} ({said or 'no reason given'})"
    if status == 401:
        return BridgeError(
            f"{where}: the API user or password is wrong; fix --icinga-user/--icinga-password "
            "(an ApiUser object in Icinga's configuration)"
        )
    if status == 403 and not results:
        return BridgeError(
            f"{where}: the API user may not do this; grant its ApiUser the permission "
            '"actions/process-check-result"'
        )
    per_object = [r.get("code") for r in results]
    if 400 <= status < 500 or (
        per_object and all(isinstance(c, int) and 400 <= c < 500 for c in per_object)
    ):
        return BridgeRefused(where)
    return BridgeUnavailable(where)


class IcingaSink:
    """Submits results one by one; waits out an Icinga that is away (back-off of the
    connection settings) until ``until`` (``time.monotonic()``; None: for ever)."""

    def __init__(
        self,
        api: IcingaApi,
        rule: NameRule,
        settings: ConnectionConfig,
        *,
        until: float | None = None,
    ) -> None:
        self.api = api
        self.rule = rule
        self.until = until
        # Only ``until`` ends the waits: a signal ends the process, with nothing acknowledged.
        self._retry = Reconnect(f"Icinga API {api.url}", settings, threading.Event())

    def submit(self, result: ProbeResult) -> None:
        """Hand ``result`` to Icinga. Raises SchemaError (names it cannot carry) and
        BridgeRefused (Icinga refused it: it names the object) for this result alone;
        BridgeError when the configuration is wrong or Icinga stayed away too long."""
        payload = check_result_payload(result, self.rule)
        while True:
            try:
                self.api.request("POST", ACTION, payload)
            except BridgeRefused as exc:
                raise BridgeRefused(
                    f"Icinga refused the result for service {payload['service']}: {exc}; define "
                    "that service in Icinga with passive checks enabled, or change --host/--service"
                ) from exc
            except BridgeUnavailable as exc:
                self._retry.failed(exc)
                if not self._retry.wait(self.until):
                    raise BridgeUnavailable(
                        f"{exc}; gave up at the time limit, the message stays unacknowledged"
                    ) from exc
                continue
            self._retry.up(self.api.url)
            return

    def close(self) -> None:
        self.api.close()
