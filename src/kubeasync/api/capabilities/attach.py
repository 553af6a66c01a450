"""The ``attach`` subresource: the streams of a container's running process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ...core.descriptor import Capability, ResourceDescriptor, Wire
from ...core.params import ExecParams
from ...core.request import Request, RequestBuilder
from ..resource import ResourceApi
from ._registry import capability

if TYPE_CHECKING:  # imported when first used
    from ...streams.exec import ExecSession

__all__ = ["ATTACH", "AttachApi", "attach_request"]

T = TypeVar("T")
L = TypeVar("L")

ATTACH = Capability(
    "attach", Wire.WEBSOCKET, request="the streams (PodAttachOptions, in the query)",
    response="the container's output (v5/v4.channel.k8s.io)", methods=("attach",),
)


def attach_request(descriptor: ResourceDescriptor[Any, Any], name: str, namespace: str | None,
                   params: ExecParams) -> Request:
    """``GET .../pods/{name}/attach?stdin=...`` to upgrade (sans-IO)."""
    if params.command is not None:
        raise ValueError("attach takes no command: it joins the container's own process")
    path = RequestBuilder(descriptor).object_path(name, namespace, "attach")
    return Request("GET", path, params.query, {}, idempotent=False)


@capability(ATTACH)
class AttachApi(ResourceApi[T, L]):
    """The API of a resource with an ``attach`` subresource (pods)."""

    def attach(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
        timeout: float | None = None,
    ) -> ExecSession:
        """``async with api.attach(...) as proc:`` the container's main process, as
        :meth:`~kubeasync.api.capabilities.exec.ExecApi.exec_stream` gives a command:
        its output from now on, its stdin (if the container has ``stdin: true``), and
        ``await proc.wait()`` until the container ends (0). ``tty`` must match the
        container's own ``tty``."""
        from ...streams.exec import ExecSession

        params = ExecParams(None, container, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        request = attach_request(self.descriptor, name, self._namespace(namespace), params)
        return ExecSession(self._session, request, stdin=stdin, tty=tty, timeout=timeout)
