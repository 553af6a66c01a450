"""Bad input: every problem is a ConfigError naming the file, the context and the field."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from kubeasync import ClusterConfig, ConfigError
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    b64,
    ca_fixture,
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)

pytestmark = pytest.mark.usefixtures("isolated_env")

SERVER = "https://k.example:6443"


def load_error(tmp_path: Path, data: dict[str, Any], context: str | None = None) -> str:
    path = write_kubeconfig(tmp_path / "kube" / "config", data)
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig(path, context=context)
    message = str(info.value)
    assert str(path) in message
    return message


def with_user(**user: Any) -> dict[str, Any]:
    return one_context_kubeconfig(SERVER, user=user)


def with_cluster(**cluster: Any) -> dict[str, Any]:
    return one_context_kubeconfig(SERVER, cluster=cluster, user={"token": "t"})


def encrypted_key(issued: trustme.LeafCert) -> str:
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    return b64(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ))


BROKEN_PEM = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param(with_user(token=123), ["user 'test'", "token: must be a string"],
                     id="token-not-a-string"),
        pytest.param(with_user(token="two\nlines"), ["user 'test'", "whitespace"],
                     id="token-with-newline"),
        pytest.param(with_user(**{"client-key-data": "not*base64",
                                  "client-certificate-data": "QUJD"}),
                     ["user 'test'", "client-key-data: not valid base64"], id="invalid-base64"),
        pytest.param(with_user(**{"client-certificate-data": b64(BROKEN_PEM)}),
                     ["user 'test'", "client-key: missing"], id="certificate-without-key"),
        pytest.param(with_user(**{"client-certificate": "c.crt",
                                  "client-certificate-data": "QUJD", "client-key-data": "QUJD"}),
                     ["client-certificate-data: both"], id="certificate-file-and-data"),
        pytest.param(with_user(token="a", username="u", password="p"),
                     ["more than one authentication method (token, basic auth)"],
                     id="two-auth-methods"),
        pytest.param(with_user(**{"auth-provider": {"name": "gcp", "config": {}}}),
                     ["auth-provider: name", "'gcp' is not supported", "gke-gcloud-auth-plugin"],
                     id="removed-auth-provider"),
        pytest.param(with_user(**{"auth-provider": {"name": "oidc", "config": {}}}),
                     ["auth-provider: config: id-token: missing"], id="oidc-without-id-token"),
        pytest.param(with_user(tokenFile="no-such-token"),
                     ["user 'test'", "tokenFile", "no-such-token", "No such file"],
                     id="missing-token-file"),
        pytest.param(with_user(exec={"command": "x"}), ["exec: apiVersion: missing"],
                     id="exec-without-api-version"),
        pytest.param(with_user(exec={"command": "x",
                                     "apiVersion": "client.authentication.k8s.io/v1alpha1"}),
                     ["user 'test'", "exec.apiVersion", "v1alpha1", "not supported"],
                     id="exec-old-api-version"),
        pytest.param(with_user(exec={"command": "x", "apiVersion":
                                     "client.authentication.k8s.io/v1", "env": [{"name": "A"}]}),
                     ["exec: env[0]"], id="exec-bad-env"),
        pytest.param(with_user(token="t", **{"as-groups": ["admins"]}),
                     ["user 'test'", "as-groups: needs as, the user to impersonate"],
                     id="impersonation-groups-without-user"),
        pytest.param(with_user(token="t", **{"as": "jane", "as-groups": "admins"}),
                     ["user 'test'", "as-groups: must be a list"],
                     id="impersonation-groups-not-a-list"),
        pytest.param(with_user(token="t", **{"as": "jane", "as-user-extra": {"scopes": "view"}}),
                     ["user 'test'", "as-user-extra['scopes']: must be a list of strings"],
                     id="impersonation-extra-not-a-list"),
        pytest.param(with_user(token="t", **{"as": "jane\nX-Injected: 1"}),
                     ["user 'test'", "as: contains control characters"],
                     id="impersonation-header-injection"),
        pytest.param(with_cluster(**{"certificate-authority": "missing-ca.crt"}),
                     ["cluster 'test'", "certificate-authority", "missing-ca.crt", "No such file"],
                     id="unreadable-ca-file"),
        pytest.param(with_cluster(**{"certificate-authority-data": "%%%"}),
                     ["cluster 'test'", "certificate-authority-data: not valid base64"],
                     id="ca-invalid-base64"),
        pytest.param(with_cluster(**{"certificate-authority-data": b64(b"hello")}),
                     ["cluster 'test'", "certificate-authority-data", "no PEM certificate"],
                     id="ca-not-a-certificate"),
        pytest.param(with_cluster(**{"certificate-authority-data": b64(BROKEN_PEM)}),
                     ["cluster 'test'", "certificate-authority-data", "not valid"],
                     id="ca-broken-certificate"),
        pytest.param(with_cluster(**{"insecure-skip-tls-verify": "yes"}),
                     ["insecure-skip-tls-verify: must be true or false"], id="bool-as-string"),
        pytest.param(with_cluster(**{"insecure-skip-tls-verify": True,
                                     "certificate-authority-data": "QUJD"}),
                     ["insecure-skip-tls-verify", "together with a certificate authority"],
                     id="insecure-with-ca"),
        pytest.param(with_cluster(**{"proxy-url": "socks5://proxy:1080"}),
                     ["proxy-url", "socks5:// proxies are not supported"], id="socks-proxy"),
        pytest.param(one_context_kubeconfig("k.example:6443"),
                     ["cluster 'test'", "server: must be an http(s) URL"], id="server-not-a-url"),
    ],
)
def test_bad_field(tmp_path: Path, data: dict[str, Any], fragments: list[str]) -> None:
    message = load_error(tmp_path, data)
    assert "context 'test'" in message
    for fragment in fragments:
        assert fragment in message


def test_missing_context_lists_the_contexts(tmp_path: Path) -> None:
    message = load_error(tmp_path, with_user(token="t"), context="prod")
    assert "context 'prod' not found (contexts: test)" in message


def test_no_current_context(tmp_path: Path) -> None:
    data = with_user(token="t")
    del data["current-context"]
    assert "no context given and no current-context set" in load_error(tmp_path, data)


def test_context_naming_a_missing_cluster_or_user(tmp_path: Path) -> None:
    data = with_user(token="t")
    data["contexts"][0]["context"]["user"] = "nobody"
    assert "context 'test': user: user 'nobody' not found (users: test)" in load_error(
        tmp_path, data
    )
    data["contexts"][0]["context"]["cluster"] = "nowhere"
    assert "context 'test': cluster: cluster 'nowhere' not found (clusters: test)" in load_error(
        tmp_path, data
    )


def test_cluster_without_server(tmp_path: Path) -> None:
    data = with_user(token="t")
    del data["clusters"][0]["cluster"]["server"]
    assert "context 'test', cluster 'test': server: missing" in load_error(tmp_path, data)


def test_malformed_yaml_gives_the_position_but_not_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("users:\n- name: a\n  user:\n    token: tok-SECRET-1\n   bad: [\n")
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig(path)
    message = str(info.value)
    assert str(path) in message and "not valid YAML at line" in message
    assert "SECRET" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- a\n- b\n", "must be a YAML mapping, not a list"),
        ("clusters: {a: b}\n", "clusters must be a list, not a mapping"),
        ("contexts:\n- context: {cluster: a}\n", "contexts[0] has no name"),
        ("current-context: [a]\n", "current-context must be a string"),
    ],
)
def test_malformed_structure(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_kubeconfig(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_unreadable_or_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ClusterConfig.from_kubeconfig(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"cannot read .*Is a directory"):
        ClusterConfig.from_kubeconfig(tmp_path)


def test_client_key_that_does_not_match_the_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    alice, bob = ca.issue_cert("alice.example"), ca.issue_cert("bob.example")
    message = load_error(tmp_path, with_user(**{
        "client-certificate-data": b64(alice.cert_chain_pems[0].bytes()),
        "client-key-data": b64(bob.private_key_pem.bytes()),
    }))
    assert "context 'test', user 'test': client-certificate-data and" in message
    assert "the key does not belong to the certificate" in message


def test_encrypted_client_key_fails_without_prompting(ca: trustme.CA, tmp_path: Path) -> None:
    issued = ca.issue_cert("alice.example")
    message = load_error(tmp_path, with_user(**{
        "client-certificate-data": b64(issued.cert_chain_pems[0].bytes()),
        "client-key-data": encrypted_key(issued),
    }))
    assert "user 'test': client-key-data: the key is encrypted" in message


def test_client_key_that_is_not_a_key(ca: trustme.CA, tmp_path: Path) -> None:
    issued = ca.issue_cert("alice.example")
    message = load_error(tmp_path, with_user(**{
        "client-certificate-data": b64(issued.cert_chain_pems[0].bytes()),
        "client-key-data": base64.b64encode(b"just text").decode(),
    }))
    assert "user 'test': client-key-data: not a PEM private key" in message
