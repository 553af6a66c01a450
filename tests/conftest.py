"""Shared test configuration.

Fixtures for the embedded API server come from kubeasync's own pytest plugin
(``kubeasync.testing.pytest_plugin``), the same one users enable in their suites. The
``api`` fixture adds raw HTTP access to it, for tests that pin the wire behaviour.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from kubeasync.testing import FakeApiServer

pytest_plugins = ["kubeasync.testing.pytest_plugin", "pytester"]


class Lines:
    """Reads a chunked stream as lines, splitting bytes on b"\\n" (never readline())."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self._buffer = b""
        self.ended = False

    async def line(self, timeout: float = 2.0) -> bytes | None:
        while b"\n" not in self._buffer:
            chunk = await asyncio.wait_for(self.response.content.readany(), timeout)
            if not chunk:
                self.ended = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    async def event(self, timeout: float = 2.0) -> dict[str, Any] | None:
        line = await self.line(timeout)
        return None if line is None else json.loads(line)

    async def events(self, n: int, timeout: float = 2.0) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            event = await self.event(timeout)
            assert event is not None, f"stream ended after {out}"
            out.append(event)
        return out

    async def rest(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Every remaining event until the server ends the stream."""
        out = []
        while (event := await self.event(timeout)) is not None:
            out.append(event)
        return out


class Api:
    """Raw HTTP requests to the fake server: ``status, body = await api("GET", path)``."""

    def __init__(self, session: aiohttp.ClientSession, server: FakeApiServer) -> None:
        self.session = session
        self.server = server

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        response = await self.raw(method, path, body, content_type=content_type,
                                  headers=headers)
        async with response:
            data = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(data)
            return response.status, data.decode()

    async def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        all_headers = dict(headers or {})
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", content_type)
        return await self.session.request(method, self.server.url + path, data=data,
                                          headers=all_headers)

    async def stream(self, path: str) -> tuple[aiohttp.ClientResponse, Lines]:
        response = await self.raw("GET", path)
        return response, Lines(response)


@pytest_asyncio.fixture
async def api(fake_apiserver: FakeApiServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, fake_apiserver)

