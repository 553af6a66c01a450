"""Secrets never appear in a repr, an exception message or a log record.

Every kind of secret is a recognizable string; a range of successes and failures is run
while everything printable is collected, and none of the strings may show up in it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme

import kubeasync
from kubeasync import ClusterConfig, RetryPolicy
from tests.helpers.fixtures import (  # noqa: F401 - pytest fixtures
    b64,
    ca_fixture,
    isolated_env_fixture,
    one_context_kubeconfig,
    write_kubeconfig,
)
from tests.helpers.tls_apiserver import serve

pytestmark = pytest.mark.usefixtures("isolated_env")

TOKEN = "tok-SECRET-bearer-1"
TOKEN_IN_FILE = "tok-SECRET-file-2"
PASSWORD = "pw-SECRET-basic-3"
ID_TOKEN = "oidc-SECRET-id-4"
REFRESH_TOKEN = "oidc-SECRET-refresh-5"
OIDC_CLIENT_SECRET = "oidc-SECRET-client-6"
EXEC_TOKEN_PREFIX = "exec-SECRET-token-7"
EXEC_ENV_VALUE = "env-SECRET-aws-8"
EXEC_ARG = "--password=arg-SECRET-9"
PLUGIN = Path(__file__).parent / "helpers" / "exec_plugin.py"


class Collector:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *objects: object) -> None:
        for obj in objects:
            self.texts += [str(obj), repr(obj)]

    def error(self, error: BaseException) -> None:
        self.add(error, *error.args)
        if error.__cause__ is not None:
            self.add(error.__cause__)


async def test_no_secret_in_reprs_errors_or_logs(
    ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_pem = ca.issue_cert("x.example").private_key_pem.bytes()
    key_body = key_pem.decode().splitlines()[2]  # a line from the middle of the key
    secrets = [TOKEN, TOKEN_IN_FILE, PASSWORD, ID_TOKEN, REFRESH_TOKEN, OIDC_CLIENT_SECRET,
               EXEC_TOKEN_PREFIX, EXEC_ENV_VALUE, "arg-SECRET-9", key_body, b64(key_pem)[40:80]]
    seen = Collector()
    (tmp_path / "token").write_text(TOKEN_IN_FILE)
    alice = ca.issue_cert("alice.example", common_name="alice")
    cluster = {"certificate-authority-data": b64(ca.cert_pem.bytes())}
    users: dict[str, dict[str, Any]] = {
        "token": {"token": TOKEN},
        "token-file": {"tokenFile": str(tmp_path / "token")},
        "basic": {"username": "admin", "password": PASSWORD},
        "oidc": {"auth-provider": {"name": "oidc", "config": {
            "id-token": ID_TOKEN, "refresh-token": REFRESH_TOKEN,
            "client-secret": OIDC_CLIENT_SECRET, "client-id": "k"}}},
        "client-cert": {"client-certificate-data": b64(alice.cert_chain_pems[0].bytes()),
                        "client-key-data": b64(alice.private_key_pem.bytes())},
        "exec-garbage": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
            "args": [str(PLUGIN), EXEC_ARG], "env": [
                {"name": "PLUGIN_STATE", "value": str(tmp_path)},
                {"name": "PLUGIN_MODE", "value": "garbage"},
                {"name": "PLUGIN_TOKEN", "value": EXEC_TOKEN_PREFIX},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": EXEC_ENV_VALUE}]}},
        "exec-token": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
            "args": [str(PLUGIN), EXEC_ARG], "env": [
                {"name": "PLUGIN_STATE", "value": str(tmp_path)},
                {"name": "PLUGIN_TOKEN", "value": EXEC_TOKEN_PREFIX},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": EXEC_ENV_VALUE}]}},
        "exec-missing": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "no-such-plugin-here",
            "args": [EXEC_ARG], "env": [{"name": "X", "value": EXEC_ENV_VALUE}]}},
    }
    broken_users: dict[str, dict[str, Any]] = {
        "invalid-base64": {"client-certificate-data": b64(alice.cert_chain_pems[0].bytes()),
                           "client-key-data": key_body + "%"},
        "mismatched-key": {"client-certificate-data": b64(alice.cert_chain_pems[0].bytes()),
                           "client-key-data": b64(key_pem)},
        "token-with-newline": {"token": f"{TOKEN}\n{TOKEN}"},
        "two-methods": {"token": TOKEN, "username": "admin", "password": PASSWORD},
        "wrong-type": {"token": TOKEN, "password": 5},
        "oidc-other": {"auth-provider": {"name": "azure", "config": {"access-token": ID_TOKEN}}},
    }

    with caplog.at_level(logging.DEBUG):
        async with serve(ca) as server:  # accepts nothing: every request ends in a 401
            for name, user in users.items():
                path = write_kubeconfig(tmp_path / f"{name}.yaml", one_context_kubeconfig(
                    server.url, cluster=cluster, user=user))
                config = ClusterConfig.from_kubeconfig(path)
                seen.add(config, config.auth)
                async with kubeasync.Client(config, retry=RetryPolicy(max_retries=0)) as kube:
                    seen.add(kube)
                    with pytest.raises(kubeasync.KubeError) as info:
                        await kube.version()
                    seen.error(info.value)
            # A wrong CA, so the failure is in TLS.
            wrong = ClusterConfig.from_token(server.url, TOKEN,
                                             ca_data=trustme.CA().cert_pem.bytes())
            async with kubeasync.Client(wrong, retry=RetryPolicy(max_retries=0)) as kube:
                with pytest.raises(kubeasync.TransportError) as transport_info:
                    await kube.version()
                seen.error(transport_info.value)
            # A token file that disappears after the first read is kept, with a warning.
            token_file = kubeasync.TokenFile(tmp_path / "token")
            token_file.read_now()
            (tmp_path / "token").unlink()
            seen.add(await token_file.headers() is not None, token_file)
        for name, user in broken_users.items():
            path = write_kubeconfig(tmp_path / f"{name}.yaml",
                                    one_context_kubeconfig("https://k.example", user=user))
            with pytest.raises(kubeasync.ConfigError) as config_info:
                ClusterConfig.from_kubeconfig(path)
            seen.error(config_info.value)
        malformed = tmp_path / "malformed.yaml"
        malformed.write_text(f"users:\n- name: a\n  user: {{token: {TOKEN}\n  x: [\n")
        with pytest.raises(kubeasync.ConfigError) as yaml_info:
            ClusterConfig.from_kubeconfig(malformed)
        seen.error(yaml_info.value)
        for code_built in (kubeasync.BearerToken(TOKEN), kubeasync.BasicAuth("u", PASSWORD),
                           kubeasync.ClientCertificate(b"cert", key_pem),
                           kubeasync.ExecPlugin("x", [EXEC_ARG], env={"K": EXEC_ENV_VALUE}),
                           ClusterConfig.from_token("https://k.example", TOKEN)):
            seen.add(code_built)

    for record in caplog.records:
        seen.texts.append(record.getMessage())
        if record.exc_info:
            seen.texts.append(logging.Formatter().formatException(record.exc_info))
    assert any("insecure" in t or "still using" in t for t in seen.texts)  # logs were captured
    everything = "\n".join(seen.texts)
    assert "Unauthorized" in everything and "not an ExecCredential" in everything
    leaked = [secret for secret in secrets if secret in everything]
    assert leaked == []
