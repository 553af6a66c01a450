"""Fixtures shared by the configuration and authentication tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

ENVIRONMENT_READ_BY_KUBEASYNC = (
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "KUBEASYNC_SERVICE_ACCOUNT_DIR",
    "POD_NAMESPACE",
)


@pytest.fixture(scope="session", name="ca")
def ca_fixture() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(name="isolated_env")
def isolated_env_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No KUBECONFIG, no in-cluster variables, and a HOME without ~/.kube."""
    for name in ENVIRONMENT_READ_BY_KUBEASYNC:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield home


def write_kubeconfig(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_context_kubeconfig(
    server: str,
    *,
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    namespace: str | None = None,
    name: str = "test",
) -> dict[str, Any]:
    """A kubeconfig with one context ``name`` using cluster and user of the same name."""
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace is not None:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": name, "user": user or {}}],
        "contexts": [{"name": name, "context": context}],
    }


def ca_file(ca: trustme.CA, directory: Path) -> Path:
    path = directory / "ca.crt"
    ca.cert_pem.write_to_path(str(path))
    return path


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def files_in(directory: str | os.PathLike[str]) -> list[str]:
    return sorted(os.listdir(directory))
