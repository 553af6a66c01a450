"""Configuration: where the API server is, how to trust it, and who we are.

- :mod:`.cluster`: :class:`ClusterConfig`, what a Client needs, and its TLS context;
- :mod:`.kubeconfig`: kubeconfig files (finding, parsing, merging, contexts, users);
- :mod:`.incluster`: a pod's service account;
- :mod:`.autodetect`: kubectl's order of the two;
- :mod:`.auth`: the credential providers (tokens, token files, exec plugins, your own);
- :mod:`.impersonation`: acting as another user;
- :mod:`.tls`: CA bundles and client certificates held in memory.
"""

from .auth import (
    Auth,
    BasicAuth,
    BearerToken,
    ClientCertificate,
    Credential,
    ExecPlugin,
    NoAuth,
    RefreshingAuth,
    TokenFile,
)
from .autodetect import autodetect
from .cluster import ClusterConfig
from .impersonation import Impersonation
from .incluster import DEFAULT_SERVICE_ACCOUNT_DIR, SERVICE_ACCOUNT_DIR_ENV, load_in_cluster
from .kubeconfig import load_kubeconfig

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT_DIR",
    "SERVICE_ACCOUNT_DIR_ENV",
    "Auth",
    "BasicAuth",
    "BearerToken",
    "ClientCertificate",
    "ClusterConfig",
    "Credential",
    "ExecPlugin",
    "Impersonation",
    "NoAuth",
    "RefreshingAuth",
    "TokenFile",
    "autodetect",
    "load_in_cluster",
    "load_kubeconfig",
]
