"""The API server's side of ``pods/log``, ``exec``, ``attach`` and ``portforward``.

As kube-apiserver does, the server checks the pod and the container itself, finds the
pod's node and its kubelet (the node's address by the default preference, Hostname,
InternalDNS, InternalIP, ExternalDNS, ExternalIP, and ``daemonEndpoints.kubeletEndpoint.Port``)
and proxies to it over TLS without verifying its certificate:

- ``GET pods/{name}/log`` to ``/containerLogs/{namespace}/{pod}/{container}``, streamed;
  a kubelet's error becomes a Status (its text as the message);
- exec, attach and portforward WebSockets to ``/exec/...``, ``/attach/...`` and
  ``/portForward/...`` with the client's ``Sec-WebSocket-Protocol`` offer passed on: the
  kubelet chooses, and its refusal (status and body) is passed back unchanged. Messages are
  relayed one for one, so the channel framing is the kubelet's.

A pod on no node has no log (204), except for lines a test appended itself with
``FakeApiServer.append_log``, which the server serves directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDictProxy

from ..core.descriptor import ResourceDescriptor
from . import _status as st
from ._registry import Registry, meta
from .kubelet.logs import LogBook, LogQuery, LogQueryError, serve_log

__all__ = ["KubeletProxy", "RefusedUpgrade", "UpgradeResponse", "container_for"]

Descriptor = ResourceDescriptor[Any, Any]
Obj = dict[str, Any]

ADDRESS_PREFERENCE = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
DEFAULT_KUBELET_PORT = 10250
DIAL_TIMEOUT = 5.0  # kube-apiserver's --kubelet-timeout
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_HOP_BY_HOP = ("connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
               "sec-websocket-accept", "sec-websocket-extensions", "transfer-encoding",
               "content-length", "keep-alive")


# ------------------------------------------------------------------ refused upgrades


class RefusedUpgrade:
    """The answer of a server that refused a WebSocket upgrade: status, headers, body."""

    def __init__(self, status: int, reason: str, headers: CIMultiDictProxy[str],
                 body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


REFUSED: contextvars.ContextVar[RefusedUpgrade | None] = contextvars.ContextVar(
    "kubeasync_refused_upgrade", default=None)


class UpgradeResponse(aiohttp.ClientResponse):
    """A client response that keeps the body of a refused upgrade.

    ``ClientSession.ws_connect`` raises ``WSServerHandshakeError`` on any status but 101
    and closes the response unread, but what a server says when it refuses is the error
    message (``pod does not exist``). This response class reads that body as soon as the
    head has arrived and leaves it in :data:`REFUSED` for the task that connected.
    """

    async def start(self, connection: Any) -> UpgradeResponse:
        await super().start(connection)
        if self.status != 101 and "upgrade" in self.request_info.headers.get(
                "Connection", "").lower():
            body = b""
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                body = await asyncio.wait_for(self.content.read(64 * 1024), DIAL_TIMEOUT)
            REFUSED.set(RefusedUpgrade(self.status, self.reason or "", self.headers, body))
        return self


# ------------------------------------------------------------------ checks shared with logs


def container_for(pod: Obj, requested: str) -> str:
    """The container a request means: the one named, or the pod's only one (400 otherwise),
    as kube-apiserver's ``validateContainer``."""
    name = str(meta(pod).get("name"))
    spec = pod.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    init_containers = [str(c.get("name")) for c in spec.get("initContainers") or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise st.bad_request(f"a container name must be specified for pod {name}")
        message = (f"a container name must be specified for pod {name}, choose one of:"
                   f" [{' '.join(containers)}]")
        if init_containers:
            message += f" or one of the init containers: [{' '.join(init_containers)}]"
        raise st.bad_request(message)
    if requested not in containers + init_containers:
        raise st.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _bool(query: Mapping[str, str], name: str) -> bool:
    return query.get(name) in _TRUE


def _kubelet_error(code: int, body: bytes, name: str) -> st.StatusError:
    """A kubelet's non-2xx answer to a log request, as kube-apiserver reports it
    (``GenericHttpResponseChecker``)."""
    text = body.decode("utf-8", errors="replace")
    details = {"name": name, "kind": "pods/log"}
    if code == 500:
        return st.StatusError(500, "InternalError", f"Internal error occurred: {text}",
                              {"causes": [{"message": text}]})
    if code == 400:
        return st.bad_request(text)
    if code == 404:
        return st.StatusError(404, "NotFound", "the server could not find the requested"
                              f" resource ( pods/log {name})", details)
    return st.StatusError(code, "", f"the server responded with the status code {code} but did"
                          f" not return more information ( pods/log {name})", details)


class KubeletProxy:
    """Finds the kubelet of a pod's node and proxies to it."""

    def __init__(self, registry: Registry, logs: LogBook, stopping: asyncio.Event) -> None:
        self.registry = registry
        self.book = logs
        self.stopping = stopping
        self._nodes = next((d for d in registry.resources
                            if d.group == "" and d.kind == "Node"), None)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False, limit=0),
                response_class=UpgradeResponse, auto_decompress=False, trust_env=False)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _kubelet(self, pod: Obj) -> str:
        """``https://host:port`` of the kubelet of the pod's node."""
        node_name = str((pod.get("spec") or {}).get("nodeName"))
        node = (self.registry.find(self._nodes, None, node_name)
                if self._nodes is not None else None)
        if node is None:
            raise st.StatusError(404, "NotFound", f'nodes "{node_name}" not found',
                                 {"name": node_name, "kind": "nodes"})
        status = node.get("status") or {}
        addresses = [a for a in status.get("addresses") or [] if isinstance(a, dict)]
        for kind in ADDRESS_PREFERENCE:
            address = next((a.get("address") for a in addresses if a.get("type") == kind), None)
            if address:
                break
        else:
            known = " ".join(f"{{{a.get('type')} {a.get('address')}}}" for a in addresses)
            raise st.StatusError(500, "", f"no preferred addresses found; known addresses:"
                                 f" [{known}]", {})
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        host = f"[{address}]" if ":" in str(address) else address
        return f"https://{host}:{port or DEFAULT_KUBELET_PORT}"

    # ------------------------------------------------------------ logs

    async def logs(self, request: web.Request, pod: Obj) -> web.StreamResponse:
        q = request.query
        name = str(meta(pod).get("name"))
        namespace = str(meta(pod).get("namespace") or "")
        container = container_for(pod, q.get("container", ""))
        try:
            query = LogQuery.parse(q)
        except LogQueryError as error:
            raise st.bad_request(str(error)) from None
        if not (pod.get("spec") or {}).get("nodeName"):
            return await self._unscheduled_logs(request, pod, container, query)
        kubelet = self._kubelet(pod)
        params: dict[str, str] = {}
        for flag in ("follow", "previous", "timestamps"):
            if _bool(q, flag):
                params[flag] = "true"
        for number in ("sinceSeconds", "tailLines", "limitBytes"):
            if q.get(number):
                params[number] = q[number]
        if q.get("sinceTime") and "sinceSeconds" not in params:
            params["sinceTime"] = q["sinceTime"]
        target = f"/containerLogs/{namespace}/{name}/{container}"
        url = f"{kubelet}{target}" + (f"?{urlencode(sorted(params.items()))}" if params else "")
        try:
            upstream = await self._http().get(
                url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=DIAL_TIMEOUT))
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            raise st.StatusError(500, "", f'Get "{url}": {_dial_error(kubelet, error)}',
                                 {}) from None
        try:
            if upstream.status >= 300:
                raise _kubelet_error(upstream.status, await upstream.content.read(64 * 1024),
                                     name)
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response
        finally:
            upstream.close()

    async def _unscheduled_logs(self, request: web.Request, pod: Obj, container: str,
                                query: LogQuery) -> web.StreamResponse:
        """A pod on no node: lines a test appended, served here; otherwise no log (204)."""
        name = str(meta(pod).get("name"))
        namespace = str(meta(pod).get("namespace") or "")
        book = self.book
        if query.previous and not book.has_previous(namespace, name, container):
            raise st.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found')
        if not query.previous and not book.has_any(namespace, name):
            return web.Response(status=204)
        uid = meta(pod).get("uid")
        pods = self._pods()

        def ended() -> bool:
            live = self.registry.find(pods, namespace, name)
            return (live is None or meta(live).get("uid") != uid
                    or (live.get("status") or {}).get("phase") in ("Succeeded", "Failed"))

        return await serve_log(request, book, (namespace, name, container), query,
                               ended=ended, stopping=self.stopping)

    def _pods(self) -> Descriptor:
        return next(d for d in self.registry.resources if d.group == "" and d.kind == "Pod")

    # ------------------------------------------------------------ exec, attach, portforward

    async def stream(self, request: web.Request, pod: Obj,
                     subresource: str) -> web.StreamResponse:
        q = request.query
        name = str(meta(pod).get("name"))
        namespace = str(meta(pod).get("namespace") or "")
        params: list[tuple[str, str]] = []
        if subresource == "portforward":
            target = f"/portForward/{namespace}/{name}"
            ports: list[str] = []
            for value in q.getall("ports", []):
                for text in value.split(","):
                    if not text.isdigit() or not 0 <= int(text) <= 0xFFFF:
                        raise st.bad_request(f'cannot convert to []int32: strconv.ParseUint:'
                                             f' parsing "{text}": invalid syntax')
                    ports.append(str(int(text)))
            if ports:
                params.append(("port", ",".join(ports)))
        else:
            container = container_for(pod, q.get("container", ""))
            target = f"/{subresource}/{namespace}/{name}/{container}"
            if subresource == "exec":
                params += [("command", c) for c in q.getall("command", [])]
            for flag, kubelet_flag in (("stderr", "error"), ("stdin", "input"),
                                       ("stdout", "output"), ("tty", "tty")):
                if _bool(q, flag):
                    params.append((kubelet_flag, "1"))
        if not (pod.get("spec") or {}).get("nodeName"):
            raise st.bad_request(f"pod {name} does not have a host assigned")
        kubelet = self._kubelet(pod)
        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade != "websocket":
            if upgrade:
                raise st.bad_request(f"kubeasync's embedded API server proxies {subresource}"
                                     " over WebSockets only; SPDY is not implemented")
            raise st.bad_request("Upgrade request required")
        offered = [p.strip() for p in ",".join(request.headers.getall(
            "Sec-WebSocket-Protocol", [])).split(",") if p.strip()]
        url = f"{kubelet}{target}" + (f"?{urlencode(params)}" if params else "")
        REFUSED.set(None)
        try:
            upstream = await self._http().ws_connect(
                url, protocols=offered, max_msg_size=0, autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0))
        except aiohttp.WSServerHandshakeError as error:
            refused = REFUSED.get()
            if refused is None:
                raise st.StatusError(500, "", f"error upgrading connection: {error}",
                                     {}) from None
            headers = {k: v for k, v in refused.headers.items()
                       if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=refused.status, body=refused.body, headers=headers)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            raise st.StatusError(500, "", f"error dialing backend:"
                                 f" {_dial_error(kubelet, error)}", {}) from None
        try:
            chosen = upstream.protocol
            downstream = web.WebSocketResponse(protocols=(chosen,) if chosen else (),
                                               max_msg_size=0, autoping=True)
            await downstream.prepare(request)
            await _relay(downstream, upstream)
            return downstream
        finally:
            await upstream.close()


def _dial_error(kubelet: str, error: BaseException) -> str:
    host = kubelet.removeprefix("https://")
    if isinstance(error, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return f"dial tcp {host}: connect: connection refused"
    if isinstance(error, asyncio.TimeoutError):
        return f"dial tcp {host}: i/o timeout"
    return f"dial tcp {host}: {error}"


async def _relay(downstream: web.WebSocketResponse,
                 upstream: aiohttp.ClientWebSocketResponse[Any]) -> None:
    """Copy messages both ways until either side closes, then close the other with its
    close code."""

    async def copy(source: Any, sink: Any) -> None:
        async for message in source:
            if message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.ERROR:
                break

    up = asyncio.ensure_future(copy(downstream, upstream))
    down = asyncio.ensure_future(copy(upstream, downstream))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            if upstream.closed:  # the kubelet ended it: so does the client's side
                await downstream.close(code=upstream.close_code or 1000)
            else:
                await upstream.close(code=downstream.close_code or 1000)
                await downstream.close()
