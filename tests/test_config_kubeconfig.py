"""Kubeconfig credentials and TLS settings, each against a real TLS server on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from pathlib import Path

import pytest
import trustme

import kubeasync
from kubeasync import ClusterConfig, RetryPolicy
from tests.helpers.connect_proxy import connect_proxy
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    b64,
    ca_file,
    ca_fixture,
    files_in,
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)
from tests.helpers.tls_apiserver import bearer, serve

pytestmark = pytest.mark.usefixtures("isolated_env")

NO_RETRY = RetryPolicy(max_retries=0)


async def test_token_from_kubeconfig_and_context_namespace(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("static-token"))
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes())},
                user={"token": "static-token"},
                namespace="team-a",
            ),
        )
        monkeypatch.setenv("KUBECONFIG", str(path))
        async with kubeasync.Client() as kube:
            assert kube.namespace == "team-a"
            assert (await kube.version()).git_version == "v1.30.0"
            pod = await kube.pods.get("web-0")
        assert pod.metadata is not None and pod.metadata.namespace == "team-a"
    assert server.unauthorized_answers == 0


async def test_certificate_authority_file_relative_to_the_kubeconfig(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    ca_file(ca, folder)
    async with serve(ca) as server:
        server.accept_only(bearer("t"))
        path = write_kubeconfig(
            folder / "config",
            one_context_kubeconfig(
                server.url, cluster={"certificate-authority": "ca.crt"}, user={"token": "t"}
            ),
        )
        monkeypatch.chdir(tmp_path)  # the relative path must not depend on the working folder
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
            await kube.version()


async def test_client_certificate_files_with_a_server_that_requires_them(
    ca: trustme.CA, tmp_path: Path
) -> None:
    issued = ca.issue_cert("alice.example.org", common_name="alice")
    (tmp_path / "pki").mkdir()
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "pki" / "alice.crt"))
    issued.private_key_pem.write_to_path(str(tmp_path / "pki" / "alice.key"))
    async with serve(ca, require_client_cert=True) as server:
        server.accepted_client_names = {"alice"}
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes())},
                user={"client-certificate": "pki/alice.crt", "client-key": "pki/alice.key"},
            ),
        )
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
            await kube.pods.get("web-0", namespace="default")
    assert server.seen_client_names == ["alice"]
    assert server.seen_authorizations == [None]


async def test_client_certificate_data_and_no_key_material_on_disk(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = ca.issue_cert("bob.example.org", common_name="bob")
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    async with serve(ca, require_client_cert=True) as server:
        server.accepted_client_names = {"bob"}
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes())},
                user={
                    "client-certificate-data": b64(issued.cert_chain_pems[0].bytes()),
                    "client-key-data": b64(issued.private_key_pem.bytes()),
                },
            ),
        )
        # With memfd_create (Linux) and with the temporary-file fallback (elsewhere).
        for memfd in (True, False):
            if not memfd:
                monkeypatch.delattr(os, "memfd_create", raising=False)
            async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
                await kube.version()
            assert files_in(private_tmp) == []
    assert server.seen_client_names == ["bob", "bob"]


async def test_without_a_client_certificate_the_handshake_fails_clearly(
    ca: trustme.CA, tmp_path: Path
) -> None:
    async with serve(ca, require_client_cert=True) as server:
        config = ClusterConfig.from_token(server.url, "t", ca_data=ca.cert_pem.bytes())
        async with kubeasync.Client(config, retry=NO_RETRY) as kube:
            with pytest.raises(kubeasync.TransportError):
                await kube.version()


async def test_basic_auth(ca: trustme.CA, tmp_path: Path) -> None:
    async with serve(ca) as server:
        # base64("admin:s3cret pass:word")
        server.accept_only("Basic YWRtaW46czNjcmV0IHBhc3M6d29yZA==")
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes())},
                user={"username": "admin", "password": "s3cret pass:word"},
            ),
        )
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
            await kube.version()


async def test_oidc_auth_provider_id_token(ca: trustme.CA, tmp_path: Path) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"))
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes())},
                user={
                    "auth-provider": {
                        "name": "oidc",
                        "config": {
                            "client-id": "kubernetes",
                            "client-secret": "oidc-client-secret",
                            "id-token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
                            "idp-issuer-url": "https://issuer.example",
                            "refresh-token": "oidc-refresh-token",
                        },
                    }
                },
            ),
        )
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
            await kube.version()


async def test_token_file_is_read_again_when_it_changes(ca: trustme.CA, tmp_path: Path) -> None:
    token_path = tmp_path / "token"
    token_path.write_text("first-token\n")
    async with serve(ca) as server:
        server.accept_only(bearer("first-token"))
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes())},
                user={"tokenFile": "token"},
            ),
        )
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
            await kube.version()
            # Rotated as kubelet does: a new file swapped in, the old token revoked.
            (tmp_path / "token.new").write_text("second-token-which-is-longer")
            os.replace(tmp_path / "token.new", token_path)
            server.accept_only(bearer("second-token-which-is-longer"))
            await kube.version()
    assert server.unauthorized_answers == 0  # the change was noticed before sending


async def test_token_file_rotation_missed_by_stat_recovers_through_the_401_refresh(
    ca: trustme.CA, tmp_path: Path
) -> None:
    token_path = tmp_path / "token"
    token_path.write_text("token-aaaa")
    async with serve(ca) as server:
        server.accept_only(bearer("token-aaaa"))
        config = ClusterConfig(
            server=server.url, ca_data=ca.cert_pem.bytes(), auth=kubeasync.TokenFile(token_path)
        )
        async with kubeasync.Client(config, retry=NO_RETRY) as kube:
            await kube.version()
            # Same inode, size and modification time: only the server can tell us.
            before = token_path.stat()
            token_path.write_text("token-bbbb")  # rewritten in place: same inode
            os.utime(token_path, ns=(before.st_atime_ns, before.st_mtime_ns))
            server.accept_only(bearer("token-bbbb"))
            await kube.version()
            await kube.version()
    assert server.unauthorized_answers == 1
    assert server.seen_authorizations[-2:] == [bearer("token-bbbb")] * 2


async def test_insecure_skip_tls_verify_connects_and_warns_once(
    ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("t"))
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url, cluster={"insecure-skip-tls-verify": True}, user={"token": "t"}
            ),
        )
        with caplog.at_level(logging.WARNING, logger="kubeasync"):
            for _ in range(3):
                async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
                    await kube.version()
    warnings = [r for r in caplog.records if "insecure-skip-tls-verify" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert server.url in warnings[0].getMessage()


async def test_tls_server_name_is_used_for_verification(ca: trustme.CA, tmp_path: Path) -> None:
    # The certificate names only kubernetes.internal, not the 127.0.0.1 we connect to.
    async with serve(ca, hostnames=["kubernetes.internal"]) as server:
        server.accept_only(bearer("t"))
        cluster = {"certificate-authority-data": b64(ca.cert_pem.bytes())}
        with_name = write_kubeconfig(
            tmp_path / "a",
            one_context_kubeconfig(
                server.url,
                cluster={**cluster, "tls-server-name": "kubernetes.internal"},
                user={"token": "t"},
            ),
        )
        without = write_kubeconfig(
            tmp_path / "b",
            one_context_kubeconfig(server.url, cluster=cluster, user={"token": "t"}),
        )
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(with_name)) as kube:
            await kube.version()
        async with kubeasync.Client(
            ClusterConfig.from_kubeconfig(without), retry=NO_RETRY
        ) as kube:
            with pytest.raises(kubeasync.TransportError, match=r"127\.0\.0\.1"):
                await kube.version()


async def test_a_wrong_certificate_authority_is_a_clear_tls_error(
    ca: trustme.CA, tmp_path: Path
) -> None:
    other_ca = trustme.CA()
    async with serve(ca) as server:
        server.accept_only(bearer("t"))
        config = ClusterConfig.from_token(server.url, "t", ca_data=other_ca.cert_pem.bytes())
        async with kubeasync.Client(config) as kube:
            with pytest.raises(kubeasync.TransportError) as info:
                await kube.version()
    message = str(info.value)
    assert "TLS verification of the server failed" in message
    assert "certificate verify failed" in message
    assert server.seen_authorizations == []  # the token never left the client


async def test_only_the_given_certificate_authority_is_trusted(ca: trustme.CA) -> None:
    config = ClusterConfig.from_token("https://127.0.0.1:1", "t", ca_data=ca.cert_pem.bytes())
    context = config.ssl_context()
    assert context is not None
    assert len(context.get_ca_certs()) == 1
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_kubeconfig_files_merge_as_kubectl_merges_them(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(ca) as server:
        server.accept_only(bearer("token-from-first"))
        first_dir, second_dir = tmp_path / "first", tmp_path / "second"
        first_dir.mkdir()
        second_dir.mkdir()
        ca_file(ca, second_dir)
        (first_dir / "token").write_text("token-from-first")
        first = write_kubeconfig(
            first_dir / "config",
            {
                # No current-context here: it comes from the second file.
                "users": [{"name": "shared", "user": {"tokenFile": "token"}}],
                "contexts": [
                    {"name": "dev", "context": {"cluster": "shared", "user": "shared",
                                                "namespace": "from-first"}},
                ],
            },
        )
        second = write_kubeconfig(
            second_dir / "config",
            {
                "current-context": "dev",
                "clusters": [
                    # The CA path is relative to this file's folder, not the first file's.
                    {"name": "shared", "cluster": {"server": server.url,
                                                   "certificate-authority": "ca.crt"}},
                ],
                "users": [{"name": "shared", "user": {"token": "token-from-second"}}],
                "contexts": [
                    {"name": "dev", "context": {"cluster": "shared", "user": "shared",
                                                "namespace": "from-second"}},
                    {"name": "other", "context": {"cluster": "shared", "namespace": "other"}},
                ],
            },
        )
        third = write_kubeconfig(tmp_path / "third", {"current-context": "other"})
        missing = tmp_path / "missing"
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, [missing, first, second, third])))

        config = ClusterConfig.autodetect()
        assert config.namespace == "from-first"  # the first file to define "dev" wins
        assert config.server == server.url
        assert str(first) in config.source and str(second) in config.source
        async with kubeasync.Client() as kube:
            await kube.version()  # with the first file's user and the second's CA
        assert ClusterConfig.from_kubeconfig(context="other").namespace == "other"
        assert ClusterConfig.from_kubeconfig([third, second]).namespace == "other"


async def test_client_picks_a_context_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = one_context_kubeconfig("https://one.example:6443", user={"token": "a"})
    data["clusters"].append({"name": "two", "cluster": {"server": "https://two.example"}})
    data["contexts"].append({"name": "two", "context": {"cluster": "two", "user": "test",
                                                        "namespace": "ns-two"}})
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", data)))
    async with kubeasync.Client(context="two") as kube:
        assert kube.config.server == "https://two.example"
        assert kube.namespace == "ns-two"
    async with kubeasync.Client(context="two", namespace="mine") as kube:
        assert kube.namespace == "mine"
    async with kubeasync.Client() as kube:
        assert kube.config.server == "https://one.example:6443"
        assert kube.namespace == "default"


async def test_proxy_url_tunnels_through_the_proxy(ca: trustme.CA, tmp_path: Path) -> None:
    async with serve(ca) as server, connect_proxy() as proxy:
        server.accept_only(bearer("t"))
        path = write_kubeconfig(
            tmp_path / "config",
            one_context_kubeconfig(
                server.url,
                cluster={"certificate-authority-data": b64(ca.cert_pem.bytes()),
                         "proxy-url": proxy.url},
                user={"token": "t"},
            ),
        )
        async with kubeasync.Client(ClusterConfig.from_kubeconfig(path)) as kube:
            await kube.version()
    assert proxy.tunnels == [server.url.removeprefix("https://")]
    assert server.seen_authorizations == [bearer("t")]
