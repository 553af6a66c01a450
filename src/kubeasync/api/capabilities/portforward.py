"""The ``portforward`` subresource: TCP connections to a pod's ports, over WebSockets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ...core.descriptor import Capability, ResourceDescriptor, Wire
from ...core.request import Request, RequestBuilder
from ..resource import ResourceApi
from ._registry import capability

if TYPE_CHECKING:  # imported when first used
    from ...streams.portforward import PortForward, PortReader, PortWriter

__all__ = ["PORTFORWARD", "PortForwardApi", "port_forward_request"]

T = TypeVar("T")
L = TypeVar("L")

PORTFORWARD = Capability(
    "portforward", Wire.WEBSOCKET, request="the ports (PodPortForwardOptions, in the query)",
    response="one TCP connection per port (v4.channel.k8s.io)",
    methods=("port_forward", "open_port"),
)


def port_forward_request(descriptor: ResourceDescriptor[Any, Any], name: str,
                         namespace: str | None, ports: int | Sequence[int]) -> Request:
    """``GET .../pods/{name}/portforward?ports=80`` to upgrade (sans-IO)."""
    from ...streams.portforward import validate_ports

    path = RequestBuilder(descriptor).object_path(name, namespace, "portforward")
    query = tuple(("ports", str(port)) for port in validate_ports(ports))
    return Request("GET", path, query, {}, idempotent=False)


@capability(PORTFORWARD)
class PortForwardApi(ResourceApi[T, L]):
    """The API of a resource with a ``portforward`` subresource (pods)."""

    def port_forward(
        self,
        name: str,
        ports: int | Sequence[int],
        *,
        namespace: str | None = None,
        local_port: int | Sequence[int] = 0,
        address: str = "127.0.0.1",
        timeout: float | None = None,
    ) -> PortForward:
        """``async with api.port_forward("web-0", 80) as fwd:`` listens on
        ``address:fwd.local_port`` (``local_port=0``: a free port; with several ports,
        ``fwd.local_ports[80]``) until the block ends; each accepted connection gets its
        own WebSocket to the pod. A port the server reports an error for (nothing listens
        there) ends that connection, with the server's reason logged."""
        from ...streams.portforward import PortForward, validate_ports

        ns = self._namespace(namespace)
        requests = {port: port_forward_request(self.descriptor, name, ns, port)
                    for port in validate_ports(ports)}
        return PortForward(self._session, requests.__getitem__, list(requests),
                           local_port=local_port, address=address, timeout=timeout)

    async def open_port(
        self,
        name: str,
        port: int,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> tuple[PortReader, PortWriter]:
        """One connection to ``port`` of the pod, without a listener: a ``(reader,
        writer)`` pair shaped like asyncio's streams. The server's error (nothing listens
        on the port) is raised by the reader as
        :class:`~kubeasync.streams.portforward.PortForwardError`."""
        from ...streams.portforward import open_port

        request = port_forward_request(self.descriptor, name, self._namespace(namespace), port)
        return await open_port(self._session, request, port, timeout=timeout)
