"""Cluster configuration: where the API server is, how to trust it, and who we are.

:class:`ClusterConfig` is what a :class:`~kubeasync.Client` needs. Build one in code, or
load it from a kubeconfig or the in-cluster service account.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .auth import Auth, BearerToken, NoAuth
from .errors import ConfigError

__all__ = ["ClusterConfig", "autodetect"]


@dataclass(eq=False)
class ClusterConfig:
    """Everything needed to reach one API server as one identity.

    Attributes:
        server: the API server URL, e.g. ``https://10.0.0.1:6443``.
        namespace: the default namespace for namespaced calls.
        auth: the credential provider (a bearer token, a token file, an exec plugin...).
        ca_data: PEM bytes of the certificate authorities to trust; ``None`` trusts the
            system's store.
        verify_tls: False only when the kubeconfig says ``insecure-skip-tls-verify``.
        tls_server_name: the name to verify the server's certificate against, when it
            differs from the URL's host.
        client_cert: a client-certificate TLS context loader (see :mod:`kubeasync.config`).
        proxy_url: an HTTP(S) proxy to reach the server through.
        source: where this configuration came from, for error messages.
    """

    server: str
    namespace: str = "default"
    auth: Auth = field(default_factory=NoAuth)
    ca_data: bytes | None = None
    verify_tls: bool = True
    tls_server_name: str | None = None
    client_cert_pem: bytes | None = field(default=None, repr=False)
    client_key_pem: bytes | None = field(default=None, repr=False)
    proxy_url: str | None = None
    source: str = "explicit configuration"

    def __post_init__(self) -> None:
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{self.source}: server must be an http(s) URL with a host, got {self.server!r}"
            )
        self.server = self.server.rstrip("/")

    @classmethod
    def from_token(
        cls,
        server: str,
        token: str,
        *,
        ca_data: bytes | None = None,
        namespace: str = "default",
    ) -> ClusterConfig:
        """A configuration from a server URL, a bearer token and (optionally) a CA bundle."""
        return cls(server=server, namespace=namespace, auth=BearerToken(token), ca_data=ca_data)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``https`` servers (``None`` for plain ``http``)."""
        if not self.server.startswith("https:"):
            return None
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_data is not None:
            try:
                context.load_verify_locations(cadata=self.ca_data.decode("ascii"))
            except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"{self.source}: certificate-authority data is invalid: {exc}"
                ) from None
        return context

    def __repr__(self) -> str:
        return (
            f"ClusterConfig(server={self.server!r}, namespace={self.namespace!r},"
            f" auth={self.auth!r}, source={self.source!r})"
        )


def autodetect(*, context: str | None = None) -> ClusterConfig:
    """Find a configuration: KUBECONFIG or ``~/.kube/config``, else the in-cluster account."""
    raise ConfigError("automatic configuration is not implemented yet; pass a ClusterConfig")
