"""In-cluster configuration and autodetection, with a temporary service-account folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import trustme

import kubeasync
from kubeasync import ClusterConfig, ConfigError
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    ca_fixture,
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)
from tests.helpers.tls_apiserver import bearer, serve

pytestmark = pytest.mark.usefixtures("isolated_env")


def service_account(folder: Path, ca: trustme.CA, *, token: str = "sa-token-1",
                    namespace: str | None = "workloads") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(token)
    ca.cert_pem.write_to_path(str(folder / "ca.crt"))
    if namespace is not None:
        (folder / "namespace").write_text(namespace + "\n")
    return folder


def pod_environment(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)


async def test_client_autodetects_the_in_cluster_service_account(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = service_account(tmp_path / "sa", ca)
    monkeypatch.setenv("KUBEASYNC_SERVICE_ACCOUNT_DIR", str(folder))
    async with serve(ca) as server:
        server.accept_only(bearer("sa-token-1"))
        pod_environment(monkeypatch, server.url)
        async with kubeasync.Client() as kube:
            assert kube.namespace == "workloads"
            pod = await kube.pods.get("web-0")
    assert pod.metadata is not None and pod.metadata.namespace == "workloads"
    assert str(folder) in kube.config.source


async def test_in_cluster_folder_as_a_parameter_and_default_namespace(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = service_account(tmp_path / "sa", ca, namespace=None)
    async with serve(ca) as server:
        server.accept_only(bearer("sa-token-1"))
        pod_environment(monkeypatch, server.url)
        config = ClusterConfig.in_cluster(folder)
        assert config.namespace == "default"
        async with kubeasync.Client(config) as kube:
            await kube.version()
    monkeypatch.setenv("POD_NAMESPACE", "from-downward-api")
    assert ClusterConfig.in_cluster(folder).namespace == "from-downward-api"


async def test_the_rotated_service_account_token_is_read_again(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = service_account(tmp_path / "sa", ca, token="sa-token-1")
    async with serve(ca) as server:
        server.accept_only(bearer("sa-token-1"))
        pod_environment(monkeypatch, server.url)
        config = ClusterConfig.in_cluster(folder)
        assert isinstance(config.auth, kubeasync.TokenFile)
        assert config.auth.max_age <= 60  # bound tokens rotate: read at least once a minute
        async with kubeasync.Client(config) as kube:
            await kube.version()
            # A rewrite that keeps inode, size and mtime is only caught by the age limit.
            token = folder / "token"
            before = token.stat()
            token.write_text("sa-token-2")
            os.utime(token, ns=(before.st_atime_ns, before.st_mtime_ns))
            server.accept_only(bearer("sa-token-2"))
            config.auth.max_age = 0.05
            await asyncio.sleep(0.06)
            await kube.version()
    assert server.unauthorized_answers == 0


def test_in_cluster_without_the_environment_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        ClusterConfig.in_cluster(tmp_path)


def test_in_cluster_without_a_token_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match=str(tmp_path / "token")):
        ClusterConfig.in_cluster(tmp_path)


def test_in_cluster_ipv6_service_host(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    config = ClusterConfig.in_cluster(service_account(tmp_path, ca))
    assert config.server == "https://[fd00::1]:443"


# ------------------------------------------------------------------ autodetection order


def kubeconfig_at(path: Path, server: str) -> Path:
    return write_kubeconfig(path, one_context_kubeconfig(server, user={"token": "t"}))


def test_autodetect_prefers_kubeconfig_then_home_then_in_cluster(
    ca: trustme.CA, tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("KUBEASYNC_SERVICE_ACCOUNT_DIR", str(service_account(tmp_path / "sa", ca)))
    assert ClusterConfig.autodetect().server == "https://10.0.0.1:443"

    kubeconfig_at(isolated_env / ".kube" / "config", "https://home.example")
    assert ClusterConfig.autodetect().server == "https://home.example"

    env_file = kubeconfig_at(tmp_path / "env-config", "https://env.example")
    monkeypatch.setenv("KUBECONFIG", str(env_file))
    assert ClusterConfig.autodetect().server == "https://env.example"

    # KUBECONFIG naming only missing files: as kubectl, not ~/.kube/config but in-cluster.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    assert ClusterConfig.autodetect().server == "https://10.0.0.1:443"


def test_explicit_config_wins_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_at(tmp_path / "c", "https://env.example")))
    config = ClusterConfig.from_token("https://mine.example", "t")
    assert kubeasync.Client(config).config is config


def test_when_nothing_is_found_the_error_lists_what_was_tried(isolated_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        kubeasync.Client()
    message = str(info.value)
    assert "KUBECONFIG (not set)" in message
    assert str(isolated_env / ".kube" / "config") in message
    assert "in-cluster" in message and "KUBERNETES_SERVICE_HOST" in message


def test_a_broken_kubeconfig_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "config"
    broken.write_text("clusters: [\n")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match=str(broken)):
        ClusterConfig.autodetect()


def test_a_context_without_a_kubeconfig_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="context 'dev' was asked for"):
        kubeasync.Client(context="dev")


def test_config_and_context_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        kubeasync.Client(ClusterConfig.from_token("https://k.example", "t"), context="dev")


async def test_a_config_built_in_code(ca: trustme.CA, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    async with serve(ca) as server:
        server.accept_only(bearer("from-my-vault"))
        for config in (
            ClusterConfig.from_token(server.url, "from-my-vault", ca_data=ca.cert_pem.bytes()),
            ClusterConfig.from_token(server.url, "from-my-vault", ca_file=tmp_path / "ca.pem",
                                     namespace="apps"),
            ClusterConfig(server=server.url, auth=kubeasync.BearerToken("from-my-vault"),
                          ca_data=ca.cert_pem.bytes()),
        ):
            async with kubeasync.Client(config) as kube:
                await kube.version()
    assert server.unauthorized_answers == 0
