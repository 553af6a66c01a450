"""Exec credential plugins, run for real (a small Python script), against a TLS server."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trustme

import kubeasync
from kubeasync import ClusterConfig, ConfigError, RetryPolicy
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    b64,
    ca_fixture,
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)
from tests.helpers.tls_apiserver import bearer, serve

pytestmark = pytest.mark.usefixtures("isolated_env")

PLUGIN = Path(__file__).parent / "helpers" / "exec_plugin.py"
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


class Plugin:
    """Writes a kubeconfig whose user runs the test plugin, and reads what the plugin saw."""

    def __init__(self, tmp_path: Path, ca: trustme.CA) -> None:
        self.state = tmp_path / "plugin-state"
        self.state.mkdir()
        self.tmp_path = tmp_path
        self.ca = ca

    def kubeconfig(self, server: str, *, env: dict[str, str] | None = None,
                   **exec_fields: Any) -> Path:
        exec_section: dict[str, Any] = {
            "apiVersion": V1,
            "command": sys.executable,
            "args": [str(PLUGIN)],
            "interactiveMode": "Never",
            "env": [{"name": k, "value": v}
                    for k, v in {"PLUGIN_STATE": str(self.state), **(env or {})}.items()],
        }
        exec_section.update(exec_fields)
        return write_kubeconfig(
            self.tmp_path / "config",
            one_context_kubeconfig(
                server,
                cluster={"certificate-authority-data": b64(self.ca.cert_pem.bytes())},
                user={"exec": exec_section},
            ),
        )

    def config(self, server: str, **kwargs: Any) -> ClusterConfig:
        return ClusterConfig.from_kubeconfig(self.kubeconfig(server, **kwargs))

    @property
    def runs(self) -> int:
        return len(list(self.state.glob("run-*")))

    def seen(self, run: int) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.state / f"info-{run}.json").read_text())
        return result


@pytest.fixture
def plugin(tmp_path: Path, ca: trustme.CA) -> Plugin:
    return Plugin(tmp_path, ca)


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
async def test_exec_plugin_token(plugin: Plugin, ca: trustme.CA, api_version: str) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("exec-1"))
        config = plugin.config(server.url, apiVersion=api_version, provideClusterInfo=True)
        assert plugin.runs == 0  # nothing runs before the first request
        async with kubeasync.Client(config) as kube:
            await kube.version()
            await kube.pods.get("web-0")
    assert plugin.runs == 1
    seen = plugin.seen(1)
    assert seen["stdin"] == ""  # no terminal, no stdin
    assert seen["info"]["apiVersion"] == api_version
    assert seen["info"]["kind"] == "ExecCredential"
    assert seen["info"]["spec"]["interactive"] is False
    cluster = seen["info"]["spec"]["cluster"]
    assert cluster["server"] == server.url
    assert cluster["certificate-authority-data"] == b64(ca.cert_pem.bytes())


async def test_exec_plugin_credential_is_cached_until_its_expiry(
    plugin: Plugin, ca: trustme.CA
) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("exec-1"), bearer("exec-2"))
        # Shorter than twice the default margin (10 s): renewed after half its life.
        config = plugin.config(server.url, env={"PLUGIN_EXPIRES_IN": "0.8"})
        async with kubeasync.Client(config) as kube:
            for _ in range(3):
                await kube.version()
            assert plugin.runs == 1
            await asyncio.sleep(0.5)
            await kube.version()
            assert plugin.runs == 2
    assert server.seen_authorizations == [bearer("exec-1")] * 3 + [bearer("exec-2")]


def test_the_expiry_margin_renews_a_credential_before_it_expires() -> None:
    plugin = kubeasync.ExecPlugin("get-token", expiry_margin=30)
    in_one_hour = datetime.now(timezone.utc) + timedelta(hours=1)
    renew_at = plugin._renew_at(in_one_hour)
    assert renew_at == pytest.approx(in_one_hour.timestamp() - 30)
    naive_utc = in_one_hour.replace(tzinfo=None)
    assert plugin._renew_at(naive_utc) == pytest.approx(renew_at)


async def test_concurrent_requests_share_one_plugin_run(plugin: Plugin, ca: trustme.CA) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("exec-1"))
        config = plugin.config(server.url, env={"PLUGIN_DELAY": "0.2"})
        async with kubeasync.Client(config) as kube:
            await asyncio.gather(*(kube.version() for _ in range(20)))
            assert plugin.runs == 1
            # The identity provider revokes the credential: every request in flight gets a
            # 401, and all of them together cause one more run.
            server.accept_only(bearer("exec-2"))
            await asyncio.gather(*(kube.version() for _ in range(20)))
    assert plugin.runs == 2
    assert server.unauthorized_answers == 20
    assert server.seen_authorizations[-20:] == [bearer("exec-2")] * 20


async def test_a_plugin_run_does_not_block_the_event_loop(plugin: Plugin, ca: trustme.CA) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with serve(ca) as server:
        server.accept_only(bearer("exec-1"))
        config = plugin.config(server.url, env={"PLUGIN_DELAY": "0.4"})
        ticker = asyncio.create_task(tick())
        try:
            async with kubeasync.Client(config) as kube:
                await kube.version()
        finally:
            ticker.cancel()
    assert ticks >= 20


async def test_exec_plugin_client_certificate(
    plugin: Plugin, ca: trustme.CA, tmp_path: Path
) -> None:
    issued = ca.issue_cert("carol.example.org", common_name="carol")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "carol.crt"))
    issued.private_key_pem.write_to_path(str(tmp_path / "carol.key"))
    async with serve(ca, require_client_cert=True) as server:
        server.accepted_client_names = {"carol"}
        config = plugin.config(server.url, env={
            "PLUGIN_MODE": "cert",
            "PLUGIN_CERT": str(tmp_path / "carol.crt"),
            "PLUGIN_KEY": str(tmp_path / "carol.key"),
        })
        async with kubeasync.Client(config) as kube:
            await kube.version()
            await kube.version()
    assert server.seen_client_names == ["carol", "carol"]
    assert plugin.runs == 1


async def test_a_relative_plugin_command_is_relative_to_the_kubeconfig(
    plugin: Plugin, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "get-token"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{PLUGIN}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.chdir("/")
    async with serve(ca) as server:
        server.accept_only(bearer("exec-1"))
        config = plugin.config(server.url, command="bin/get-token", args=[])
        async with kubeasync.Client(config) as kube:
            await kube.version()


async def expect_config_error(config: ClusterConfig, match: str) -> ConfigError:
    async with kubeasync.Client(config, retry=RetryPolicy(max_retries=0)) as kube:
        with pytest.raises(ConfigError, match=match) as info:
            await kube.version()
    return info.value


async def test_a_failing_plugin_is_a_config_error_with_its_stderr(
    plugin: Plugin, ca: trustme.CA
) -> None:
    async with serve(ca) as server:
        config = plugin.config(server.url, env={"PLUGIN_MODE": "fail"})
        error = await expect_config_error(config, "exit code 3")
    message = str(error)
    assert "the identity provider refused us" in message
    assert str(plugin.tmp_path / "config") in message and "context 'test'" in message
    assert "user 'test'" in message
    assert server.seen_authorizations == []


async def test_a_failing_plugin_that_prints_its_secret_env_has_it_hidden(
    plugin: Plugin, ca: trustme.CA
) -> None:
    async with serve(ca) as server:
        config = plugin.config(server.url, env={"PLUGIN_MODE": "fail",
                                                "AWS_SECRET_ACCESS_KEY": "env-SECRET-key-1",
                                                "PLUGIN_ECHO_ENV": "AWS_SECRET_ACCESS_KEY"})
        error = await expect_config_error(config, "exit code 3")
    message = str(error)
    assert "the identity provider refused us" in message
    assert "=(hidden)" in message
    assert "env-SECRET-key-1" not in message


async def test_garbage_output_is_a_config_error_that_does_not_echo_it(
    plugin: Plugin, ca: trustme.CA
) -> None:
    async with serve(ca) as server:
        config = plugin.config(server.url, env={"PLUGIN_MODE": "garbage",
                                                "PLUGIN_TOKEN": "leaky"})
        error = await expect_config_error(config, "not an ExecCredential")
    assert "leaky" not in str(error)


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("wrong-version", "apiVersion 'client.authentication.k8s.io/v1alpha1'"),
        ("empty", "neither status.token nor status.clientCertificateData"),
    ],
)
async def test_a_wrong_exec_credential_is_a_config_error(
    plugin: Plugin, ca: trustme.CA, mode: str, match: str
) -> None:
    async with serve(ca) as server:
        await expect_config_error(plugin.config(server.url, env={"PLUGIN_MODE": mode}), match)


async def test_a_plugin_that_hangs_is_stopped_after_the_timeout(
    plugin: Plugin, ca: trustme.CA
) -> None:
    async with serve(ca) as server:
        config = plugin.config(server.url, env={"PLUGIN_MODE": "sleep"})
        assert isinstance(config.auth, kubeasync.ExecPlugin)
        config.auth.timeout = 0.5
        started = time.monotonic()
        await expect_config_error(config, "did not finish within 0.5 s")
    assert time.monotonic() - started < 5
    pid = int((plugin.state / "pid-1").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_missing_plugin_shows_the_install_hint(plugin: Plugin, ca: trustme.CA) -> None:
    async with serve(ca) as server:
        config = plugin.config(
            server.url,
            command="kubeasync-test-no-such-plugin",
            installHint="Install it with: pip install no-such-plugin",
        )
        error = await expect_config_error(config, "was not found")
    assert "kubeasync-test-no-such-plugin" in str(error)
    assert "Install it with: pip install no-such-plugin" in str(error)


def test_interactive_mode_always_is_refused_when_loading(plugin: Plugin) -> None:
    with pytest.raises(ConfigError, match="interactiveMode Always") as info:
        plugin.config("https://k.example", interactiveMode="Always")
    assert str(plugin.tmp_path / "config") in str(info.value)


@pytest.mark.parametrize("mode", ["IfAvailable", "Never"])
async def test_other_interactive_modes_run_without_stdin(
    plugin: Plugin, ca: trustme.CA, mode: str
) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("exec-1"))
        async with kubeasync.Client(plugin.config(server.url, interactiveMode=mode)) as kube:
            await kube.version()
    assert plugin.seen(1)["info"]["spec"]["interactive"] is False
