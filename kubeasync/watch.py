"""Watch streams and log streams (placeholder: being written in the streaming issue).

This module will hold the line framing of chunked streams, :class:`WatchStream` (one raw
watch request), the resilient :class:`Watcher`, and :func:`stream_lines` for pod logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from .request import Request
from .session import Session

T = TypeVar("T")


class WatchStream(Generic[T]):
    def __init__(self, session: Session, request: Request, descriptor: Any) -> None:
        raise NotImplementedError("watch streams arrive with the streaming issue")


class Watcher(Generic[T]):
    def __init__(self, api: Any, **options: Any) -> None:
        raise NotImplementedError("the resilient watcher arrives with the streaming issue")


def stream_lines(session: Session, request: Request) -> AsyncIterator[str]:
    raise NotImplementedError("log streaming arrives with the streaming issue")
