"""One raw watch request, decoded into typed events until the server ends it."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from ..core.backoff import positive_number
from ..core.codec import GC_PAUSE_THRESHOLD, gc_paused
from ..core.errors import DecodeError, TransportError
from ..core.params import DEFAULT_MAX_LINE_BYTES
from ..core.request import Request
from ..transport.policy import Session
from .events import StreamEvent, event_decoder
from .response import ResponseStream

__all__ = ["WatchStream"]

T = TypeVar("T")


class WatchStream(ResponseStream, Generic[T]):
    """One raw watch request: ``async for event in stream`` until the server ends it.

    No retries, no relist: ``ERROR`` events (410 Expired included) are yielded as they
    come, and failures raise (:class:`~kubeasync.ApiError` for a non-2xx answer,
    :class:`~kubeasync.TransportError` for a cut or stalled connection,
    :class:`~kubeasync.StreamError` for a line over ``max_line_bytes``,
    :class:`~kubeasync.DecodeError` for a line that is not an event).

    Args:
        session: the session to send through.
        request: the watch request (``api.watch_stream()`` builds it).
        model: the type objects decode into.
        idle_timeout: seconds without a byte after which the connection counts as stalled
            (raises :class:`~kubeasync.RequestTimeout`); ``None`` waits forever.
        max_line_bytes: the longest event accepted.
    """

    def __init__(
        self,
        session: Session,
        request: Request,
        model: type[T],
        *,
        idle_timeout: float | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if idle_timeout is not None:
            idle_timeout = positive_number(idle_timeout, "idle_timeout")
        super().__init__(session, request, read_timeout=idle_timeout, retry=False,
                         max_line_bytes=max_line_bytes)
        self._decode = event_decoder(model).decode
        self.events = 0
        """How many events this stream has produced."""

    def __aiter__(self) -> WatchStream[T]:
        return self

    async def __aenter__(self) -> WatchStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_now()

    async def __anext__(self) -> StreamEvent[T]:
        if self._closed:
            raise StopAsyncIteration
        lines = self._lines
        try:
            while True:
                line = lines.next_line()
                if line is None:
                    chunk = await self._read()
                    if not chunk:
                        self._end()
                    lines.feed(chunk)
                    continue
                try:
                    if len(line) < GC_PAUSE_THRESHOLD:
                        event = self._decode(line)
                    else:
                        with gc_paused():
                            event = self._decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    if not line.strip():
                        continue  # a keep-alive blank line from a proxy
                    raise DecodeError(
                        f"{self.request.method} {self.request.path}: not a watch event: {exc}"
                    ) from None
                self.events += 1
                return event
        except BaseException:
            self.close_now()
            raise

    def _end(self) -> Any:
        tail = self._lines.tail()
        closed_under_us = self._closed or self._session.closed
        self.close_now()
        if tail.strip() and not closed_under_us:
            # The API server ends every event with a newline: a tail is a cut event.
            raise TransportError(
                f"{self.request.method} {self.request.path}: the stream ended in the middle"
                f" of an event ({len(tail)} bytes)"
            )
        raise StopAsyncIteration

    def __repr__(self) -> str:
        return f"<WatchStream {self.request.target}>"
