"""Log lines as text, as they arrive."""

from __future__ import annotations

from ..core.params import DEFAULT_MAX_LINE_BYTES
from ..core.request import Request
from ..transport.policy import Session
from .response import ResponseStream

__all__ = ["LogStream"]


class LogStream(ResponseStream):
    """Log lines as text, as they arrive: ``async for line in api.stream_logs(...)``.

    Lines come without their newline; invalid UTF-8 is replaced (U+FFFD), never raised; a
    last line without a newline is yielded too; the iteration ends when the server ends
    the stream (with ``follow=True``: when the container stops or the pod goes away).
    ``idle_timeout`` bounds the silence between two chunks (``None``: none, the default
    when following a quiet container).
    """

    def __init__(
        self,
        session: Session,
        request: Request,
        *,
        idle_timeout: float | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        super().__init__(session, request, read_timeout=idle_timeout, retry=True,
                         max_line_bytes=max_line_bytes)

    def __aiter__(self) -> LogStream:
        return self

    async def __aenter__(self) -> LogStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_now()

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        lines = self._lines
        try:
            while True:
                line = lines.next_line()
                if line is not None:
                    text = line.decode("utf-8", "replace")
                    return text[:-1] if text.endswith("\n") else text
                chunk = await self._read()
                if not chunk:
                    tail = lines.tail()
                    self.close_now()
                    if tail:
                        return tail.decode("utf-8", "replace")
                    raise StopAsyncIteration
                lines.feed(chunk)
        except BaseException:
            self.close_now()
            raise

    def __repr__(self) -> str:
        return f"<LogStream {self.request.target}>"
