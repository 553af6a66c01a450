"""A tiny TLS API server on 127.0.0.1 that checks credentials, for the config/auth tests.

It answers ``/version`` and ``GET /api/v1/namespaces/{ns}/pods/{name}`` for requests whose
Authorization header, or client certificate common name, it currently accepts, and 401
(a Kubernetes Status) otherwise. Tests change what it accepts to simulate rotation.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiohttp import web

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}
VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0", "platform": "linux/amd64"}


def bearer(token: str) -> str:
    return f"Bearer {token}"


@dataclass
class TlsApiServer:
    url: str
    accepted_authorizations: set[str] = field(default_factory=set)
    accepted_client_names: set[str] = field(default_factory=set)
    seen_authorizations: list[str | None] = field(default_factory=list)
    seen_client_names: list[str | None] = field(default_factory=list)
    unauthorized_answers: int = 0

    def accept_only(self, *authorizations: str) -> None:
        self.accepted_authorizations = set(authorizations)

    def _allowed(self, request: web.Request) -> bool:
        authorization = request.headers.get("Authorization")
        client_name = _client_common_name(request)
        self.seen_authorizations.append(authorization)
        self.seen_client_names.append(client_name)
        return authorization in self.accepted_authorizations or (
            client_name is not None and client_name in self.accepted_client_names
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._allowed(request):
            self.unauthorized_answers += 1
            return web.json_response(UNAUTHORIZED, status=401)
        if request.path == "/version":
            return web.json_response(VERSION)
        parts = request.path.strip("/").split("/")
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            return web.json_response(_pod(parts[3], parts[5]))
        return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)


def _pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


def _client_common_name(request: web.Request) -> str | None:
    transport = request.transport
    peercert = transport.get_extra_info("peercert") if transport is not None else None
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@contextlib.asynccontextmanager
async def serve(
    ca: trustme.CA,
    *,
    hostnames: Iterable[str] = ("127.0.0.1", "localhost"),
    require_client_cert: bool = False,
) -> AsyncIterator[TlsApiServer]:
    """Serve over TLS with a certificate for ``hostnames`` issued by ``ca``.

    Client certificates issued by ``ca`` are checked when presented, and required when
    ``require_client_cert`` (the handshake fails without one).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hostnames).configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    app = web.Application()
    server = TlsApiServer(url="")
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"https://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
