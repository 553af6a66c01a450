"""A stand-in for the transport's ``connect_websocket`` (the lead's ``Session`` method),
so the exec, attach and port-forward client logic runs against real servers before the
transport seam lands. It does what that method is specified to do, with aiohttp: the
client's credentials and TLS settings, the offered subprotocols, a typed ApiError (with the
server's Status or text) when the upgrade is refused, ``receive() -> None`` once closed.
It is not a mock of the protocol: every byte goes over a real socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
from yarl import URL

import kubeasync
from kubeasync.core.errors import RequestTimeout, TransportError, api_error_from_response
from kubeasync.core.request import Request
from kubeasync.testing._kubelet_proxy import REFUSED, UpgradeResponse


class StandInWebSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse[Any]) -> None:
        self._ws = ws

    @property
    def protocol(self) -> str | None:
        return self._ws.protocol

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def send(self, data: bytes) -> None:
        if self._ws.closed:
            raise TransportError("the WebSocket is closed")
        try:
            await self._ws.send_bytes(bytes(data))
        except (ConnectionError, aiohttp.ClientError) as error:
            raise TransportError(f"the WebSocket is closed: {error}") from None

    async def receive(self) -> bytes | None:
        while True:
            message = await self._ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                data: bytes = message.data
                return data
            if message.type == aiohttp.WSMsgType.TEXT:
                return str(message.data).encode()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None

    async def close(self) -> None:
        await self._ws.close()


class StandInSession:
    """``connect_websocket`` for one kubeasync Client's cluster."""

    def __init__(self, kube: kubeasync.Client) -> None:
        self.config = kube.config
        self._http: aiohttp.ClientSession | None = None
        self.connections = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            ssl = self.config.ssl_context()
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl if ssl is not None else False, limit=0),
                response_class=UpgradeResponse, trust_env=False)
        return self._http

    async def connect_websocket(self, request: Request, *, protocols: Sequence[str],
                                timeout: float | None = None) -> StandInWebSocket:
        headers = dict(request.headers)
        headers.update(await self.config.auth.headers())
        url = URL(self.config.server + request.path, encoded=True).update_query(request.query)
        REFUSED.set(None)
        try:
            ws = await asyncio.wait_for(self._client().ws_connect(
                url, protocols=list(protocols), headers=headers, max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0)), timeout)
        except aiohttp.WSServerHandshakeError as error:
            refused = REFUSED.get()
            body = refused.body if refused is not None else b""
            reason = refused.reason if refused is not None else error.message
            raise api_error_from_response(
                error.status, body, content_type=(error.headers or {}).get("Content-Type", ""),
                http_reason=reason, method=request.method, path=request.path) from None
        except asyncio.TimeoutError:
            raise RequestTimeout(f"{request.method} {request.path}: no upgrade within"
                                 f" {timeout} s") from None
        except aiohttp.ClientError as error:
            raise TransportError(f"{request.method} {request.path}: {error}") from None
        self.connections += 1
        return StandInWebSocket(ws)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
