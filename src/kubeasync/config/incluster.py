"""The in-cluster configuration: the API server and service account a pod is given."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..core.errors import ConfigError
from .auth import TokenFile
from .cluster import ClusterConfig, read_file

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT_DIR",
    "SERVICE_ACCOUNT_DIR_ENV",
    "SERVICE_ACCOUNT_TOKEN_MAX_AGE",
    "load_in_cluster",
]

log = logging.getLogger("kubeasync.config")

DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Overrides the service-account folder (tests, sidecars that mount it elsewhere).
SERVICE_ACCOUNT_DIR_ENV = "KUBEASYNC_SERVICE_ACCOUNT_DIR"
#: Bound service-account tokens rotate; kubelet refreshes the file well before expiry.
SERVICE_ACCOUNT_TOKEN_MAX_AGE = 60.0


def load_in_cluster(service_account_dir: str | os.PathLike[str] | None = None) -> ClusterConfig:
    """See :meth:`ClusterConfig.in_cluster`. The folder defaults to
    ``$KUBEASYNC_SERVICE_ACCOUNT_DIR``, else ``/var/run/secrets/kubernetes.io/serviceaccount``.
    """
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "").strip()
    if not host or not port:
        raise ConfigError(
            "in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
            " are not set (not running in a pod?)"
        )
    directory = Path(
        service_account_dir
        or os.environ.get(SERVICE_ACCOUNT_DIR_ENV)
        or DEFAULT_SERVICE_ACCOUNT_DIR
    )
    source = f"in-cluster service account {directory}"
    token_path = directory / "token"
    if not token_path.exists():
        raise ConfigError(f"{source}: the token file {token_path} does not exist")
    auth = TokenFile(token_path, max_age=SERVICE_ACCOUNT_TOKEN_MAX_AGE, where=source)
    auth.read_now()

    ca_path = directory / "ca.crt"
    ca_data: bytes | None = None
    if ca_path.exists():
        ca_data = read_file(ca_path, source)
    else:
        log.warning("%s: no ca.crt; verifying the API server against the system's CAs", source)
    namespace = os.environ.get("POD_NAMESPACE", "").strip()
    namespace_path = directory / "namespace"
    if not namespace and namespace_path.exists():
        namespace = read_file(namespace_path, source).decode("utf-8", "replace").strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    config = ClusterConfig(
        server=f"https://{host}:{port}",
        namespace=namespace or "default",
        auth=auth,
        ca_data=ca_data,
        source=source,
    )
    config._field_sources = {"ca_data": f"{source}: {ca_path}"}
    config._check_tls()
    return config


