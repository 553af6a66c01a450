"""What every streamed answer shares: open it lazily, read chunks, close it at once.

``close_now()`` is synchronous so that it can run from ``__del__``: an iterator dropped by
``break`` closes its connection right there, not at the next garbage collection. A stream
whose client was closed ends: its iteration stops instead of waiting on a dead connection.
"""

from __future__ import annotations

from ..core.errors import KubeError
from ..core.params import DEFAULT_MAX_LINE_BYTES
from ..core.request import Request
from ..transport.base import ByteStream
from ..transport.policy import Session
from .framing import LineFramer

__all__ = ["ResponseStream"]


class ResponseStream:
    """One streamed request: the answer is opened at the first read."""

    def __init__(
        self,
        session: Session,
        request: Request,
        *,
        read_timeout: float | None,
        retry: bool,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self._session = session
        self.request = request
        self._read_timeout = read_timeout
        self._retry = retry
        self._lines = LineFramer(max_line_bytes)
        self._body: ByteStream | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def _read(self) -> bytes:
        """The next chunk of the body, ``b""`` at its end (or once the client closed)."""
        body = self._body
        if body is None:
            body = self._body = await self._session.open_stream(
                self.request, read_timeout=self._read_timeout, retry=self._retry
            )
            self._session.track(self)
        try:
            return await body.read()
        except KubeError:
            if self._session.closed or self._closed:
                return b""  # closed under us: the end, not a failure
            raise

    def close_now(self) -> None:
        self._closed = True
        body, self._body = self._body, None
        if body is not None:
            body.close()

    async def aclose(self) -> None:
        """Close the connection (at once; nothing is drained). Safe to call twice."""
        self.close_now()

    def __del__(self) -> None:
        if getattr(self, "_body", None) is not None:
            self.close_now()
