"""One exec plugin run per wave of requests, whatever the credential it returns.

The real plugin (tests/helpers/exec_plugin.py) runs as a subprocess and counts its runs;
the embedded API server accepts only its token. Issue 18, defect 8: a plugin returning
an already-expired credential ran twice per request, one run at a time (50 concurrent
lists: 100 runs, 100 warnings).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

import kubeasync
from kubeasync import ClusterConfig, ConfigError, RetryPolicy
from kubeasync.testing import FakeApiServer
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)

pytestmark = pytest.mark.usefixtures("isolated_env")

PLUGIN = Path(__file__).parent / "helpers" / "exec_plugin.py"
TOKEN = "exec-fixed-token"
EXPIRED_WARNING = "has already expired"


class Plugin:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.state = tmp_path / "plugin-state"
        self.state.mkdir()

    def config(self, server: str, **env: str) -> ClusterConfig:
        variables = {"PLUGIN_STATE": str(self.state), "PLUGIN_FIXED_TOKEN": TOKEN, **env}
        exec_section: dict[str, Any] = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(PLUGIN)],
            "interactiveMode": "Never",
            "env": [{"name": k, "value": v} for k, v in variables.items()],
        }
        path = write_kubeconfig(self.tmp_path / "config",
                                one_context_kubeconfig(server, user={"exec": exec_section}))
        return ClusterConfig.from_kubeconfig(path)

    @property
    def runs(self) -> int:
        return len(list(self.state.glob("run-*")))


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(tmp_path)


def expired_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if EXPIRED_WARNING in r.getMessage()]


def pod_lists(server: FakeApiServer) -> int:
    return sum(1 for method, path in server.requests
               if method == "GET" and path.startswith("/api/v1/namespaces/default/pods"))


async def test_an_expired_credential_serves_the_requests_that_waited_for_it(
    plugin: Plugin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kubeasync.auth")
    async with FakeApiServer(token=TOKEN) as server:
        # Expired a minute ago; the plugin takes a moment, as a real one does.
        config = plugin.config(server.url, PLUGIN_EXPIRES_IN="-60", PLUGIN_DELAY="0.2")
        async with kubeasync.Client(config) as kube:
            lists = await asyncio.gather(*(kube.pods.list() for _ in range(50)))
            assert all(result.items == [] for result in lists)
            assert plugin.runs == 1
            assert len(expired_warnings(caplog)) == 1
            # The next request does not reuse the expired credential: it runs the plugin,
            # once (the request takes its headers and its client certificate from one run).
            await kube.pods.list()
            assert plugin.runs == 2
            await kube.pods.list()
            assert plugin.runs == 3
        assert len(expired_warnings(caplog)) == 3
        assert pod_lists(server) == 52  # every request sent once: no 401, no repeat


async def test_a_valid_credential_is_fetched_once_for_every_request(plugin: Plugin) -> None:
    async with FakeApiServer(token=TOKEN) as server:
        config = plugin.config(server.url, PLUGIN_EXPIRES_IN="3600", PLUGIN_DELAY="0.2")
        async with kubeasync.Client(config) as kube:
            await asyncio.gather(*(kube.pods.list() for _ in range(50)))
            for _ in range(3):
                await kube.pods.list()
    assert plugin.runs == 1


async def test_a_failing_run_fails_every_request_that_waited_for_it(plugin: Plugin) -> None:
    async with FakeApiServer(token=TOKEN) as server:
        config = plugin.config(server.url, PLUGIN_MODE="fail", PLUGIN_DELAY="0.2")
        async with kubeasync.Client(config, retry=RetryPolicy(max_retries=0)) as kube:
            results = await asyncio.gather(*(kube.pods.list() for _ in range(20)),
                                           return_exceptions=True)
            assert plugin.runs == 1
            assert all(isinstance(r, ConfigError) and "exit code 3" in str(r) for r in results)
            # A later request tries again: the plugin may work now.
            with pytest.raises(ConfigError, match="exit code 3"):
                await kube.pods.list()
            assert plugin.runs == 2
        assert pod_lists(server) == 0  # nothing was sent without a credential
