"""X.509 logins for the gateway, as ARGO's authn service gives them to AMS clients:
``GET /v1/service-types/ams/hosts/{host}:authx509`` over TLS with a client certificate
answers ``{"token": ...}``, the token of the gateway user whose ``dn`` is the
certificate's subject. argo-ams-library calls it when given a certificate, not a token.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from msgbus.config import GatewayConfig
from msgbus.security import same_dn

__all__ = ["AuthnServer", "subject_dn"]


_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "domainComponent": "DC",
}


def subject_dn(cert: dict[str, Any]) -> str:
    """The subject of ``ssl.SSLSocket.getpeercert()`` as RFC 4514 ``CN=x,O=y,C=z``."""
    rdns = reversed(cert.get("subject", ()))
    return ",".join(f"{_SHORT.get(k, k)}={v}" for rdn in rdns for k, v in rdn)


class AuthnServer:
    """Serves the X.509 → token exchange on its own port until :meth:`stop`."""

    def __init__(
        self, settings: GatewayConfig, host: str, port: int, cert: Path, key: Path, ca: Path
    ) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_REQUIRED  # no certificate, no token
        users = [(u.dn, u.token.get_secret_value()) for u in settings.users.values() if u.dn]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.split("?")[0].endswith(":authx509"):
                    return self._answer(404, {"error": {"code": 404, "message": "not found"}})
                assert isinstance(self.connection, ssl.SSLSocket)
                dn = subject_dn(self.connection.getpeercert() or {})
                token = next((t for d, t in users if same_dn(d, dn)), None)
                if token is None:
                    message = f"no gateway user has the certificate DN {dn!r}"
                    return self._answer(403, {"error": {"code": 403, "message": message}})
                return self._answer(200, {"token": token})

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the gateway logs its own requests

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="msgbus-authn", daemon=True
        )

    def start(self) -> AuthnServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
