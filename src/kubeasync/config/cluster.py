"""Cluster configuration: where the API server is, how to trust it, and who we are.

:class:`ClusterConfig` is what a :class:`~kubeasync.Client` needs. Build one in code, or
load it from a kubeconfig (:meth:`ClusterConfig.from_kubeconfig`), from the in-cluster
service account (:meth:`ClusterConfig.in_cluster`), or let
:meth:`ClusterConfig.autodetect` pick, in the order kubectl uses.

Every problem with the input is a :class:`~kubeasync.ConfigError` that names the file,
the context and the field; no message, log record or ``repr`` contains a token, a key or
a password.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..core.errors import ConfigError
from .auth import Auth, BearerToken, ClientCertificate, NoAuth
from .impersonation import Impersonation
from .tls import context_trusting, insecure_context, load_client_certificate

__all__ = ["ClusterConfig", "check_proxy_url", "check_server", "read_file"]

_PROXY_SCHEMES = ("http", "https")
# Checked whenever they are set, not only by __init__: each ends up in URLs, headers and
# error messages.
_CHECKED_FIELDS = ("server", "proxy_url", "impersonate")


@dataclass(eq=False)
class ClusterConfig:
    """Everything needed to reach one API server as one identity.

    Attributes:
        server: the API server URL, e.g. ``https://10.0.0.1:6443``. Credentials in it
            (``https://user:password@host``) are refused: give them as ``auth``.
        namespace: the default namespace for namespaced calls.
        auth: the credential provider (a bearer token, a token file, an exec plugin...).
        ca_data: PEM bytes of the certificate authorities to trust (only those: the
            system's store is not consulted); ``None`` trusts the system's store.
        verify_tls: False only when the kubeconfig says ``insecure-skip-tls-verify``.
        tls_server_name: the name to verify the server's certificate against, when it
            differs from the URL's host.
        client_cert_pem, client_key_pem: a static PEM client certificate and its
            unencrypted key, presented in the TLS handshake.
        proxy_url: an HTTP(S) proxy to reach the server through; it may carry the proxy's
            own ``user:password@``, which never shows in a ``repr``.
        impersonate: act as another user (:class:`~kubeasync.config.Impersonation`), sent
            as ``Impersonate-*`` headers (:meth:`impersonation_headers`).
        source: where this configuration came from, for error messages.
    """

    server: str
    namespace: str = "default"
    auth: Auth = field(default_factory=NoAuth)
    ca_data: bytes | None = field(default=None, repr=False)
    verify_tls: bool = True
    tls_server_name: str | None = None
    client_cert_pem: bytes | None = field(default=None, repr=False)
    client_key_pem: bytes | None = field(default=None, repr=False)
    proxy_url: str | None = field(default=None, repr=False)
    source: str = "explicit configuration"
    impersonate: Impersonation | None = None
    # Where each TLS input came from (file, context, field), for error messages.
    _field_sources: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in _CHECKED_FIELDS:
            object.__setattr__(self, name, self._checked(name, getattr(self, name)))
        if (self.client_cert_pem is None) != (self.client_key_pem is None):
            raise ConfigError(
                f"{self.source}: a client certificate needs both client_cert_pem and"
                " client_key_pem"
            )
        object.__setattr__(self, "_initialized", True)

    def __setattr__(self, name: str, value: object) -> None:
        # __init__ assigns before `source` is known; __post_init__ checks those.
        if name in _CHECKED_FIELDS and self.__dict__.get("_initialized"):
            value = self._checked(name, value)
        super().__setattr__(name, value)

    def _checked(self, name: str, value: object) -> object:
        where = f"{self.source}: {name}"
        if name == "server":
            return check_server(value, where)
        if name == "proxy_url" and value is not None:
            check_proxy_url(value, where)
        if name == "impersonate" and not isinstance(value, (Impersonation, type(None))):
            raise ConfigError(
                f"{where}: must be an Impersonation or None, not {type(value).__name__}"
            )
        return value

    # ------------------------------------------------------------- loaders

    @classmethod
    def from_token(
        cls,
        server: str,
        token: str,
        *,
        ca_data: bytes | str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        namespace: str = "default",
        tls_server_name: str | None = None,
        impersonate: Impersonation | None = None,
    ) -> ClusterConfig:
        """A configuration from a server URL, a bearer token and (optionally) a CA bundle,
        given as PEM data or as a file."""
        if ca_data is not None and ca_file is not None:
            raise ConfigError("from_token: give ca_data or ca_file, not both")
        if isinstance(ca_data, str):
            ca_data = ca_data.encode("ascii", "replace")
        if ca_file is not None:
            ca_data = read_file(Path(ca_file), f"from_token: ca_file {os.fspath(ca_file)!r}")
        config = cls(
            server=server,
            namespace=namespace,
            auth=BearerToken(token, where="from_token: token"),
            ca_data=ca_data,
            tls_server_name=tls_server_name,
            impersonate=impersonate,
        )
        config._check_tls()
        return config

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        context: str | None = None,
    ) -> ClusterConfig:
        """Load a kubeconfig: ``path`` (one file or several, merged as kubectl merges
        them), else the files in ``KUBECONFIG``, else ``~/.kube/config``. ``context``
        defaults to the current-context."""
        from .kubeconfig import load_kubeconfig

        return load_kubeconfig(path, context=context)

    @classmethod
    def in_cluster(
        cls, service_account_dir: str | os.PathLike[str] | None = None
    ) -> ClusterConfig:
        """The configuration of a pod: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the
        mounted service account (token, CA, namespace)."""
        from .incluster import load_in_cluster

        return load_in_cluster(service_account_dir)

    @classmethod
    def autodetect(cls, *, context: str | None = None) -> ClusterConfig:
        """KUBECONFIG or ``~/.kube/config``, else the in-cluster service account."""
        from .autodetect import autodetect

        return autodetect(context=context)

    # ------------------------------------------------------------- what the transport sends

    def impersonation_headers(self) -> tuple[tuple[str, str], ...]:
        """The ``Impersonate-*`` headers for every request, stream and WebSocket, as
        ``(name, value)`` pairs: ``Impersonate-Group`` (and an extra key with several
        values) repeats, so they do not fit a dict. Empty without impersonation."""
        return self.impersonate.headers() if self.impersonate is not None else ()

    def ssl_context(
        self, client_certificate: ClientCertificate | None = None
    ) -> ssl.SSLContext | None:
        """The TLS context for ``https`` servers (``None`` for plain ``http``).

        ``client_certificate`` (from the auth provider) replaces the static one.
        """
        if not self.server.startswith("https:"):
            return None
        if not self.verify_tls:
            context = insecure_context(self.server, self.source)
        elif self.ca_data is not None:
            context = context_trusting(self.ca_data, self._describe("ca_data"))
        else:
            context = ssl.create_default_context()
        if client_certificate is not None:
            where = f"{self.source}: the client certificate from {self.auth!r}"
            load_client_certificate(context, client_certificate, where, where)
        elif self.client_cert_pem is not None and self.client_key_pem is not None:
            load_client_certificate(
                context,
                ClientCertificate(self.client_cert_pem, self.client_key_pem),
                self._describe("client_cert_pem"),
                self._describe("client_key_pem"),
            )
        return context

    def _check_tls(self) -> None:
        """Surface bad CA data or client certificates when loading, not at first use."""
        if (self.verify_tls and self.ca_data is not None) or self.client_cert_pem is not None:
            self.ssl_context()

    def _describe(self, attribute: str) -> str:
        return self._field_sources.get(attribute) or f"{self.source}: {attribute}"

    def __repr__(self) -> str:
        impersonate = f", impersonate={self.impersonate!r}" if self.impersonate else ""
        return (
            f"ClusterConfig(server={self.server!r}, namespace={self.namespace!r},"
            f" auth={self.auth!r}{impersonate}, source={self.source!r})"
        )


def check_server(server: object, where: str) -> str:
    """An ``http(s)`` URL with a host and nothing secret in it; returned without its
    trailing ``/``. The URL is quoted in messages only once it is known to hold no
    ``user:password@``."""
    if not isinstance(server, str):
        raise ConfigError(f"{where}: must be a string, not {type(server).__name__}")
    if "@" in server:
        # Wherever the "@" is, what precedes it may be a password (a "/" in a password
        # moves the URL's authority): never quote this URL.
        raise ConfigError(
            f"{where}: credentials in the server URL (user:password@host) are not"
            " accepted, since the URL shows in messages and reprs; give them as the"
            " user's token, username/password or client certificate instead"
        )
    if any(char.isspace() or not char.isprintable() for char in server):
        raise ConfigError(f"{where}: contains whitespace or control characters")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: must be an http(s) URL with a host, got {server!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError when the port is not a number
    except ValueError:
        raise ConfigError(
            f"{where}: the port of {server!r} is not a number from 0 to 65535"
        ) from None
    if parts.query or parts.fragment or server.endswith(("?", "#")):
        raise ConfigError(
            f"{where}: {server!r} has a query or fragment; API paths are appended to the"
            " server URL, so it may only have a path"
        )
    return server.rstrip("/")


def check_proxy_url(url: object, where: str) -> None:
    """An ``http(s)`` proxy URL; only its scheme is ever quoted (it may hold a password)."""
    if not isinstance(url, str):
        raise ConfigError(f"{where}: must be a string, not {type(url).__name__}")
    # Without "://", urlsplit takes "user" of "user:password@proxy" for the scheme.
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme not in _PROXY_SCHEMES:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ConfigError(
            f"{where}: {shown} proxies are not supported (use an http:// or https:// proxy)"
        )


def read_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
