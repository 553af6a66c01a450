"""The ``exec`` subresource: run a command in a container, over a WebSocket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ...core.descriptor import Capability, ResourceDescriptor, Wire
from ...core.params import ExecParams
from ...core.request import Request, RequestBuilder
from ..resource import ResourceApi
from ._registry import capability

if TYPE_CHECKING:  # the streams are imported when first used: `import kubeasync` stays light
    from ...streams.exec import ExecResult, ExecSession

__all__ = ["EXEC", "ExecApi", "exec_request"]

T = TypeVar("T")
L = TypeVar("L")

EXEC = Capability(
    "exec", Wire.WEBSOCKET, request="the command and streams (PodExecOptions, in the query)",
    response="stdout, stderr and the exit status (v5/v4.channel.k8s.io)",
    methods=("exec", "exec_stream"),
)


def exec_request(descriptor: ResourceDescriptor[Any, Any], name: str, namespace: str | None,
                 params: ExecParams) -> Request:
    """``GET .../pods/{name}/exec?command=...&stdin=...`` to upgrade (sans-IO)."""
    if params.command is None:
        raise ValueError("exec needs a command")
    path = RequestBuilder(descriptor).object_path(name, namespace, "exec")
    # A command runs once per request: a connection is retried only before it is made.
    return Request("GET", path, params.query, {}, idempotent=False)


@capability(EXEC)
class ExecApi(ResourceApi[T, L]):
    """The API of a resource with an ``exec`` subresource (pods)."""

    async def exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        namespace: str | None = None,
        container: str | None = None,
        stdin: bytes | None = None,
        tty: bool = False,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``command`` (an argv: ``["sh", "-c", "..."]`` for a shell line) in the pod
        and wait for it to end.

        ``stdin`` is sent and then closed. Returns its stdout, stderr and exit code; a
        non-zero exit is a result, not an error. With ``tty=True`` stderr is merged into
        stdout. ``timeout`` bounds the whole call (default: none once connected).

        Raises:
            NotFound, BadRequest, Forbidden: the server refused (no such pod or container,
                not allowed), with its message.
            ApiError: the command could not run (the server's Status, typed).
            RequestTimeout: it did not end within ``timeout``.
            ExitStatusUnknown: the connection ended before the exit status (on a server
                speaking only ``v4.channel.k8s.io``, closing stdin closes the connection).
        """
        from ...streams.exec import run_exec

        params = ExecParams(command, container, stdin=stdin is not None, tty=tty)
        request = exec_request(self.descriptor, name, self._namespace(namespace), params)
        return await run_exec(self._session, request, stdin=stdin, tty=tty, timeout=timeout)

    def exec_stream(
        self,
        name: str,
        command: Sequence[str],
        *,
        namespace: str | None = None,
        container: str | None = None,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
        timeout: float | None = None,
    ) -> ExecSession:
        """``async with api.exec_stream(...) as proc:`` a running command: write
        ``proc.stdin`` (``await proc.stdin.close()`` ends it), read ``proc.stdout`` and
        ``proc.stderr`` as they come, ``await proc.resize(w, h)`` its terminal and
        ``await proc.wait()`` for its exit code. Leaving the block (or cancelling) closes
        the connection. ``timeout`` bounds connecting."""
        from ...streams.exec import ExecSession

        params = ExecParams(command, container, stdin=stdin, stdout=stdout, stderr=stderr,
                            tty=tty)
        request = exec_request(self.descriptor, name, self._namespace(namespace), params)
        return ExecSession(self._session, request, stdin=stdin, tty=tty, timeout=timeout)
