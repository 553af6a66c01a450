"""pytest fixtures for testing code that talks to Kubernetes, against the embedded server.

Enable it in your ``conftest.py``::

    pytest_plugins = ["kubeasync.testing.pytest_plugin"]

Fixtures (function-scoped; they need pytest-asyncio):

- ``fake_apiserver``: a started :class:`~kubeasync.testing.FakeApiServer`;
- ``kube``: a :class:`kubeasync.Client` connected to it;
- ``fake_apiserver_options``: the keyword arguments the server is built with; override
  this fixture to change them for a whole directory.

Per test, ``@pytest.mark.fake_apiserver(simulate=True, token="s3cret")`` adds options.
A test fails if one of the server's controllers raised, so a bug in the fake never
hides behind a passing test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ..api.client import Client
from ._server import FakeApiServer

__all__ = ["fake_apiserver", "fake_apiserver_options", "kube"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_apiserver(**options): keyword arguments for the fake_apiserver fixture's"
        " FakeApiServer (simulate=True, token=..., watch_history=...)",
    )


@pytest.fixture
def fake_apiserver_options() -> dict[str, Any]:
    """Options for every ``fake_apiserver`` in scope (override to change the defaults)."""
    return {}


@pytest_asyncio.fixture
async def fake_apiserver(
    request: pytest.FixtureRequest, fake_apiserver_options: dict[str, Any]
) -> AsyncIterator[FakeApiServer]:
    """A running in-memory API server on 127.0.0.1 (a fresh one for each test)."""
    options = dict(fake_apiserver_options)
    for marker in reversed(list(request.node.iter_markers("fake_apiserver"))):
        options.update(marker.kwargs)
    server = FakeApiServer(**options)
    async with server:
        yield server
    errors = server.errors
    if errors:
        raise AssertionError(f"the fake API server's controllers failed: {errors!r}")


@pytest_asyncio.fixture
async def kube(fake_apiserver: FakeApiServer) -> AsyncIterator[Client]:
    """A :class:`kubeasync.Client` connected to ``fake_apiserver``."""
    async with Client(fake_apiserver.config()) as client:
        yield client
