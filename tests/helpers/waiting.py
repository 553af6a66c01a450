"""Waiting for a real cluster to get somewhere: one polling helper, one fast backoff."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from kubeasync import Backoff

FAST = Backoff(initial=0.05, maximum=0.5)
"""A watcher backoff for tests: reconnects within half a second."""


async def eventually(
    check: Callable[[], Any | Awaitable[Any]], what: str, timeout: float = 30
) -> Any:
    """Poll ``check`` (plain or async) until it returns something true, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"never happened within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)
