"""Finding a configuration the way kubectl does: kubeconfig files, then in-cluster."""

from __future__ import annotations

import os

from ..core.errors import ConfigError
from .cluster import ClusterConfig
from .incluster import load_in_cluster
from .kubeconfig import (
    config_from_kubeconfig,
    default_kubeconfig,
    kubeconfig_env_paths,
    merge_kubeconfigs,
)

__all__ = ["autodetect"]


def autodetect(*, context: str | None = None) -> ClusterConfig:
    """Find a configuration, in kubectl's order: the files in ``KUBECONFIG``, else
    ``~/.kube/config``, else the in-cluster service account. A kubeconfig that exists but
    is broken raises its own error rather than being skipped."""
    tried: list[str] = []
    env_paths = kubeconfig_env_paths()
    if env_paths:
        paths = [p for p in env_paths if p.exists()]
        if not paths:
            tried.append(f"KUBECONFIG={os.environ.get('KUBECONFIG')} (no such files)")
    else:
        default = default_kubeconfig()
        paths = [default] if default.exists() else []
        if not paths:
            tried.append(f"KUBECONFIG (not set), {default} (does not exist)")
    if paths:
        kubeconfig = merge_kubeconfigs(paths)
        if kubeconfig.contexts or context is not None:
            return config_from_kubeconfig(kubeconfig, context)
        tried.append(f"{kubeconfig.describe_files()} (defines no contexts)")
    if context is not None:
        raise ConfigError(
            f"context {context!r} was asked for, but there is no kubeconfig to find it in;"
            f" tried: {'; '.join(tried)}"
        )
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT"):
        return load_in_cluster()
    tried.append("in-cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT not set)")
    raise ConfigError(
        "no Kubernetes configuration found; tried: " + "; ".join(tried)
        + ". Set KUBECONFIG, create ~/.kube/config, or pass a ClusterConfig."
    )
