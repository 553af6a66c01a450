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

import base64
import binascii
import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..config.auth import (
    Auth,
    BasicAuth,
    BearerToken,
    ClientCertificate,
    ExecPlugin,
    NoAuth,
    TokenFile,
)
from ..core.errors import ConfigError

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT_DIR",
    "SERVICE_ACCOUNT_DIR_ENV",
    "ClusterConfig",
    "autodetect",
    "load_in_cluster",
    "load_kubeconfig",
]

log = logging.getLogger("kubeasync.config")

DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Overrides the service-account folder (tests, sidecars that mount it elsewhere).
SERVICE_ACCOUNT_DIR_ENV = "KUBEASYNC_SERVICE_ACCOUNT_DIR"
#: Bound service-account tokens rotate; kubelet refreshes the file well before expiry.
SERVICE_ACCOUNT_TOKEN_MAX_AGE = 60.0
_EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"
_PROXY_SCHEMES = ("http", "https")

_insecure_servers_warned: set[str] = set()


@dataclass(eq=False)
class ClusterConfig:
    """Everything needed to reach one API server as one identity.

    Attributes:
        server: the API server URL, e.g. ``https://10.0.0.1:6443``.
        namespace: the default namespace for namespaced calls.
        auth: the credential provider (a bearer token, a token file, an exec plugin...).
        ca_data: PEM bytes of the certificate authorities to trust (only those: the
            system's store is not consulted); ``None`` trusts the system's store.
        verify_tls: False only when the kubeconfig says ``insecure-skip-tls-verify``.
        tls_server_name: the name to verify the server's certificate against, when it
            differs from the URL's host.
        client_cert_pem, client_key_pem: a static PEM client certificate and its
            unencrypted key, presented in the TLS handshake.
        proxy_url: an HTTP(S) proxy to reach the server through.
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
    # Where each TLS input came from (file, context, field), for error messages.
    _field_sources: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_server(self.server, f"{self.source}: server")
        self.server = self.server.rstrip("/")
        if self.proxy_url is not None:
            _check_proxy_url(self.proxy_url, f"{self.source}: proxy_url")
        if (self.client_cert_pem is None) != (self.client_key_pem is None):
            raise ConfigError(
                f"{self.source}: a client certificate needs both client_cert_pem and"
                " client_key_pem"
            )

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
    ) -> ClusterConfig:
        """A configuration from a server URL, a bearer token and (optionally) a CA bundle,
        given as PEM data or as a file."""
        if ca_data is not None and ca_file is not None:
            raise ConfigError("from_token: give ca_data or ca_file, not both")
        if isinstance(ca_data, str):
            ca_data = ca_data.encode("ascii", "replace")
        if ca_file is not None:
            ca_data = _read_file(Path(ca_file), f"from_token: ca_file {os.fspath(ca_file)!r}")
        config = cls(
            server=server,
            namespace=namespace,
            auth=BearerToken(token, where="from_token: token"),
            ca_data=ca_data,
            tls_server_name=tls_server_name,
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
        return load_kubeconfig(path, context=context)

    @classmethod
    def in_cluster(
        cls, service_account_dir: str | os.PathLike[str] | None = None
    ) -> ClusterConfig:
        """The configuration of a pod: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the
        mounted service account (token, CA, namespace)."""
        return load_in_cluster(service_account_dir)

    @classmethod
    def autodetect(cls, *, context: str | None = None) -> ClusterConfig:
        """KUBECONFIG or ``~/.kube/config``, else the in-cluster service account."""
        return autodetect(context=context)

    # ------------------------------------------------------------- TLS

    def ssl_context(
        self, client_certificate: ClientCertificate | None = None
    ) -> ssl.SSLContext | None:
        """The TLS context for ``https`` servers (``None`` for plain ``http``).

        ``client_certificate`` (from the auth provider) replaces the static one.
        """
        if not self.server.startswith("https:"):
            return None
        if not self.verify_tls:
            _warn_insecure_once(self.server, self.source)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_data is not None:
            context = _context_trusting(self.ca_data, self._describe("ca_data"))
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
        return (
            f"ClusterConfig(server={self.server!r}, namespace={self.namespace!r},"
            f" auth={self.auth!r}, source={self.source!r})"
        )


# ----------------------------------------------------------------- TLS helpers


def _warn_insecure_once(server: str, source: str) -> None:
    if server in _insecure_servers_warned:
        return
    _insecure_servers_warned.add(server)
    log.warning(
        "%s: insecure-skip-tls-verify is set: the certificate of %s is not verified, so"
        " anyone on the network path can read and change this traffic",
        source,
        server,
    )


def _context_trusting(ca_data: bytes, where: str) -> ssl.SSLContext:
    try:
        text = ca_data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not PEM text (non-ASCII bytes)") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{where}: no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    try:
        return ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{where}: the certificate authority is not valid: {exc}") from None


class _EncryptedKeyError(Exception):
    pass


def _refuse_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise _EncryptedKeyError


def load_client_certificate(
    context: ssl.SSLContext, certificate: ClientCertificate, cert_where: str, key_where: str
) -> None:
    """Load a client certificate and key held in memory into ``context``.

    ``SSLContext.load_cert_chain`` only takes file paths. On Linux the PEM goes into an
    anonymous in-memory file (``memfd_create``) that never touches a disk; elsewhere into a
    private temporary file (mode 0600) that is deleted as soon as it has been loaded.
    """
    if b"-----BEGIN CERTIFICATE-----" not in certificate.cert_pem:
        raise ConfigError(f"{cert_where}: not a PEM certificate (no BEGIN CERTIFICATE)")
    if b"PRIVATE KEY-----" not in certificate.key_pem:
        raise ConfigError(f"{key_where}: not a PEM private key")
    where = cert_where if cert_where == key_where else f"{cert_where} and {key_where}"
    pem = certificate.cert_pem.rstrip(b"\n") + b"\n" + certificate.key_pem
    with _private_pem_file(pem) as path:
        try:
            context.load_cert_chain(path, password=_refuse_password)
        except _EncryptedKeyError:
            raise ConfigError(
                f"{key_where}: the key is encrypted; Kubernetes clients need it unencrypted"
            ) from None
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            if "KEY_VALUES_MISMATCH" in str(exc):
                reason = "the key does not belong to the certificate"
            raise ConfigError(
                f"{where}: the client certificate and key cannot be used: {reason}"
            ) from None


@contextlib.contextmanager
def _private_pem_file(pem: bytes) -> Iterator[str]:
    fd = _memfd()
    if fd is not None:
        try:
            _write_all(fd, pem)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="kubeasync-", suffix=".pem")  # created mode 0600
    try:
        try:
            _write_all(fd, pem)
        finally:
            os.close(fd)
        yield path
    finally:
        os.unlink(path)


def _memfd() -> int | None:
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd: int = create("kubeasync-client-cert", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    if not os.path.exists(f"/proc/self/fd/{fd}"):  # no /proc mounted
        os.close(fd)
        return None
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _check_server(server: str, where: str) -> None:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: must be an http(s) URL with a host, got {server!r}")


def _check_proxy_url(url: str, where: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in _PROXY_SCHEMES:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ConfigError(
            f"{where}: {shown} proxies are not supported (use an http:// or https:// proxy)"
        )


def _read_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None


# ----------------------------------------------------------------- kubeconfig


@dataclass
class _Entry:
    """One named cluster, user or context, and the file that defined it."""

    file: Path
    body: Mapping[str, Any]


@dataclass
class _Kubeconfig:
    files: list[Path]
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str | None = None

    def describe_files(self) -> str:
        return os.pathsep.join(str(path) for path in self.files) or "(no files)"


_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))

# libyaml's loader when PyYAML was built with it: same safe semantics, several times faster.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_kubeconfig_file(path: Path) -> Mapping[str, Any]:
    text = _read_file(path, "kubeconfig")
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as exc:
        # str(exc) quotes the offending line, which may hold a token: keep only the
        # position and the parser's description of the problem.
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {exc.problem or exc.context}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a kubeconfig must be a YAML mapping, not a {_kind(data)}")
    return data


def _kind(value: object) -> str:
    return {
        list: "list", dict: "mapping", str: "string", int: "number", float: "number",
        bool: "boolean", type(None): "null",
    }.get(type(value), type(value).__name__)


def _merge_kubeconfigs(paths: Sequence[Path]) -> _Kubeconfig:
    """Merge as kubectl does: the first file to define a name wins, and the
    current-context comes from the first file that sets one."""
    merged = _Kubeconfig(files=list(paths))
    for path in paths:
        data = _parse_kubeconfig_file(path)
        current = data.get("current-context")
        if current is not None and not isinstance(current, str):
            raise ConfigError(f"{path}: current-context must be a string")
        if current and merged.current_context is None:
            merged.current_context = current
        for section, item_key in _SECTIONS:
            items = data.get(section)
            if items is None:
                continue
            if not isinstance(items, list):
                raise ConfigError(f"{path}: {section} must be a list, not a {_kind(items)}")
            target: dict[str, _Entry] = getattr(merged, section)
            for index, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise ConfigError(f"{path}: {section}[{index}] must be a mapping")
                name = item.get("name")
                if not isinstance(name, str) or not name:
                    raise ConfigError(f"{path}: {section}[{index}] has no name")
                body = item.get(item_key)
                if body is None:
                    body = {}
                if not isinstance(body, Mapping):
                    raise ConfigError(
                        f"{path}: {section}[{index}] ({name!r}): {item_key} must be a mapping"
                    )
                target.setdefault(name, _Entry(path, body))
    return merged


class _Fields:
    """Typed access to one kubeconfig mapping, with errors naming file, context and field.

    Values are never quoted in messages: any of them may be a secret.
    """

    def __init__(self, entry: _Entry, where: str) -> None:
        self.file = entry.file
        self.body = entry.body
        self.where = where

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key}: {problem}")

    def has(self, key: str) -> bool:
        return self.body.get(key) not in (None, "")

    def string(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not a {_kind(value)}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.body.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not a {_kind(value)}")
        return value

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a mapping, not a {_kind(value)}")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.body.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not a {_kind(value)}")
        return value

    def path(self, key: str) -> Path | None:
        """A path, relative ones resolved against the kubeconfig file's own folder."""
        value = self.string(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.file.parent / path

    def base64(self, key: str) -> bytes | None:
        value = self.string(key)
        if value is None:
            return None
        try:
            return base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.error(key, f"not valid base64 ({exc})") from None

    def file_bytes(self, key: str) -> bytes | None:
        path = self.path(key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self.error(key, f"cannot read {path}: {exc.strerror}") from None

    def data_or_file(self, data_key: str, file_key: str) -> tuple[bytes | None, str]:
        """The bytes of ``<x>-data`` or of the file ``<x>``, and a description of it."""
        if self.has(data_key) and self.has(file_key):
            raise self.error(data_key, f"both {data_key} and {file_key} are set; use one")
        if self.has(data_key):
            return self.base64(data_key), f"{self.where}: {data_key}"
        return self.file_bytes(file_key), f"{self.where}: {file_key} ({self.path(file_key)})"


def _kubeconfig_paths(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> list[Path]:
    """The files to merge, existing ones only. Missing files listed in KUBECONFIG are
    skipped as kubectl skips them; an explicitly given file must exist."""
    if path is not None:
        given = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        paths = [Path(p).expanduser() for p in given]
        for candidate in paths:
            if not candidate.exists():
                raise ConfigError(f"kubeconfig {candidate} does not exist")
        return _unique(paths)
    from_env = _kubeconfig_env_paths()
    if from_env:
        existing = [p for p in from_env if p.exists()]
        if not existing:
            raise ConfigError(
                f"none of the files in KUBECONFIG exists: {os.environ.get('KUBECONFIG')}"
            )
        return existing
    default = _default_kubeconfig()
    if not default.exists():
        raise ConfigError(f"no kubeconfig: KUBECONFIG is not set and {default} does not exist")
    return [default]


def _kubeconfig_env_paths() -> list[Path]:
    value = os.environ.get("KUBECONFIG", "")
    return _unique(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


def _default_kubeconfig() -> Path:
    return Path(os.path.expanduser("~")) / ".kube" / "config"


def _unique(paths: Iterator[Path] | list[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            result.append(path)
    return result


def load_kubeconfig(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    context: str | None = None,
) -> ClusterConfig:
    """See :meth:`ClusterConfig.from_kubeconfig`."""
    return _config_from_kubeconfig(_merge_kubeconfigs(_kubeconfig_paths(path)), context)


def _config_from_kubeconfig(kubeconfig: _Kubeconfig, context: str | None) -> ClusterConfig:
    files = kubeconfig.describe_files()
    name = context or kubeconfig.current_context
    available = ", ".join(sorted(kubeconfig.contexts)) or "none"
    if not name:
        raise ConfigError(
            f"{files}: no context given and no current-context set (contexts: {available})"
        )
    context_entry = kubeconfig.contexts.get(name)
    if context_entry is None:
        which = "context" if context else "current-context"
        raise ConfigError(f"{files}: {which} {name!r} not found (contexts: {available})")
    context_fields = _Fields(context_entry, f"{context_entry.file}: context {name!r}")

    cluster_name = context_fields.string("cluster")
    if cluster_name is None:
        raise context_fields.error("cluster", "missing: the context names no cluster")
    cluster_entry = kubeconfig.clusters.get(cluster_name)
    if cluster_entry is None:
        raise context_fields.error(
            "cluster",
            f"cluster {cluster_name!r} not found"
            f" (clusters: {', '.join(sorted(kubeconfig.clusters)) or 'none'})",
        )
    cluster = _Fields(
        cluster_entry, f"{cluster_entry.file}: context {name!r}, cluster {cluster_name!r}"
    )

    user_name = context_fields.string("user")
    user: _Fields | None = None
    if user_name is not None:
        user_entry = kubeconfig.users.get(user_name)
        if user_entry is None:
            raise context_fields.error(
                "user",
                f"user {user_name!r} not found"
                f" (users: {', '.join(sorted(kubeconfig.users)) or 'none'})",
            )
        user = _Fields(user_entry, f"{user_entry.file}: context {name!r}, user {user_name!r}")

    server = cluster.string("server")
    if server is None:
        raise cluster.error("server", "missing")
    _check_server(server, f"{cluster.where}: server")
    source = f"kubeconfig {files}, context {name!r}"
    sources: dict[str, str] = {}

    ca_data, sources["ca_data"] = cluster.data_or_file(
        "certificate-authority-data", "certificate-authority"
    )
    insecure = cluster.boolean("insecure-skip-tls-verify")
    if insecure and ca_data is not None:
        raise cluster.error(
            "insecure-skip-tls-verify",
            "set together with a certificate authority; kubectl refuses this too",
        )
    proxy_url = cluster.string("proxy-url")
    if proxy_url is not None:
        _check_proxy_url(proxy_url, f"{cluster.where}: proxy-url")

    auth: Auth = NoAuth()
    cert_pem = key_pem = None
    if user is not None:
        auth = _auth_from_user(user, cluster, server, ca_data, insecure)
        cert_pem, sources["client_cert_pem"] = user.data_or_file(
            "client-certificate-data", "client-certificate"
        )
        key_pem, sources["client_key_pem"] = user.data_or_file("client-key-data", "client-key")
        if cert_pem is not None and key_pem is None:
            raise user.error("client-key", "missing: client-certificate needs its client-key")
        if key_pem is not None and cert_pem is None:
            raise user.error("client-certificate", "missing: client-key needs its certificate")

    namespace = context_fields.string("namespace") or "default"
    config = ClusterConfig(
            server=server,
            namespace=namespace,
            auth=auth,
            ca_data=ca_data,
            verify_tls=not insecure,
            tls_server_name=cluster.string("tls-server-name"),
            client_cert_pem=cert_pem,
            client_key_pem=key_pem,
            proxy_url=proxy_url,
            source=source,
        )
    config._field_sources = sources
    config._check_tls()
    return config


def _auth_from_user(
    user: _Fields,
    cluster: _Fields,
    server: str,
    ca_data: bytes | None,
    insecure: bool,
) -> Auth:
    if user.has("as") or user.has("as-groups") or user.has("as-uid") or user.has("as-user-extra"):
        raise user.error("as", "impersonation is not supported by kubeasync")
    methods = [
        method
        for method, keys in (
            ("token", ("token", "tokenFile")),
            ("basic auth", ("username", "password")),
            ("exec", ("exec",)),
            ("auth-provider", ("auth-provider",)),
        )
        if any(user.has(key) for key in keys)
    ]
    if len(methods) > 1:
        raise user.error(
            methods[0], f"more than one authentication method ({', '.join(methods)}); use one"
        )
    if user.has("tokenFile"):
        # kubectl lets the file win over an inline token too: the file is the one that rotates.
        token_path = user.path("tokenFile")
        assert token_path is not None
        token_file = TokenFile(token_path, where=f"{user.where}: tokenFile")
        token_file.read_now()
        return token_file
    token = user.string("token")
    if token is not None:
        return BearerToken(token, where=f"{user.where}: token")
    if user.has("username") or user.has("password"):
        return BasicAuth(user.string("username") or "", user.string("password") or "")
    exec_section = user.mapping("exec")
    if exec_section is not None:
        return _exec_plugin(user, exec_section, cluster, server, ca_data, insecure)
    provider = user.mapping("auth-provider")
    if provider is not None:
        return _auth_provider(user, provider)
    return NoAuth()


def _exec_plugin(
    user: _Fields,
    section: Mapping[str, Any],
    cluster: _Fields,
    server: str,
    ca_data: bytes | None,
    insecure: bool,
) -> ExecPlugin:
    fields = _Fields(_Entry(user.file, section), f"{user.where}: exec")
    command = fields.string("command")
    if command is None:
        raise fields.error("command", "missing")
    # As kubectl: a relative path with a separator is relative to the kubeconfig's folder;
    # a bare name is looked up on PATH.
    if os.sep in command or "/" in command:
        command_path = Path(command).expanduser()
        if not command_path.is_absolute():
            command = str(user.file.parent / command_path)
    api_version = fields.string("apiVersion")
    if api_version is None:
        raise fields.error("apiVersion", "missing")
    args = fields.items("args")
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            raise fields.error(f"args[{index}]", f"must be a string, not a {_kind(arg)}")
    env: dict[str, str] = {}
    for index, item in enumerate(fields.items("env")):
        name = item.get("name") if isinstance(item, Mapping) else None
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise fields.error(f"env[{index}]", "must be a mapping with string name and value")
        env[name] = value
    cluster_info: dict[str, object] | None = None
    if fields.boolean("provideClusterInfo"):
        cluster_info = {"server": server, "insecure-skip-tls-verify": insecure}
        if ca_data is not None:
            cluster_info["certificate-authority-data"] = base64.b64encode(ca_data).decode()
        for key in ("tls-server-name", "proxy-url"):
            value = cluster.string(key)
            if value is not None:
                cluster_info[key] = value
        for extension in cluster.items("extensions"):
            if isinstance(extension, Mapping) and extension.get("name") == _EXEC_CLUSTER_EXTENSION:
                cluster_info["config"] = extension.get("extension")
    return ExecPlugin(
        command,
        args,
        env=env,
        api_version=api_version,
        install_hint=fields.string("installHint"),
        interactive_mode=fields.string("interactiveMode") or "IfAvailable",
        cluster=cluster_info,
        where=user.where,
    )


def _auth_provider(user: _Fields, provider: Mapping[str, Any]) -> Auth:
    fields = _Fields(_Entry(user.file, provider), f"{user.where}: auth-provider")
    name = fields.string("name")
    if name != "oidc":
        raise fields.error(
            "name",
            f"auth-provider {name!r} is not supported: kubectl removed the built-in"
            " gcp and azure providers; use their exec plugins (gke-gcloud-auth-plugin,"
            " kubelogin) instead",
        )
    provider_config = fields.mapping("config") or {}
    config_fields = _Fields(_Entry(user.file, provider_config), f"{fields.where}: config")
    id_token = config_fields.string("id-token")
    if id_token is None:
        raise config_fields.error(
            "id-token",
            "missing: kubeasync uses the oidc provider's id-token and does not run the"
            " OIDC login flow; log in with kubectl or kubelogin first",
        )
    return BearerToken(id_token, where=f"{config_fields.where}: id-token")


# ----------------------------------------------------------------- in-cluster


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
        ca_data = _read_file(ca_path, source)
    else:
        log.warning("%s: no ca.crt; verifying the API server against the system's CAs", source)
    namespace = os.environ.get("POD_NAMESPACE", "").strip()
    namespace_path = directory / "namespace"
    if not namespace and namespace_path.exists():
        namespace = _read_file(namespace_path, source).decode("utf-8", "replace").strip()
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


# ----------------------------------------------------------------- autodetection


def autodetect(*, context: str | None = None) -> ClusterConfig:
    """Find a configuration, in kubectl's order: the files in ``KUBECONFIG``, else
    ``~/.kube/config``, else the in-cluster service account. A kubeconfig that exists but
    is broken raises its own error rather than being skipped."""
    tried: list[str] = []
    env_paths = _kubeconfig_env_paths()
    if env_paths:
        paths = [p for p in env_paths if p.exists()]
        if not paths:
            tried.append(f"KUBECONFIG={os.environ.get('KUBECONFIG')} (no such files)")
    else:
        default = _default_kubeconfig()
        paths = [default] if default.exists() else []
        if not paths:
            tried.append(f"KUBECONFIG (not set), {default} (does not exist)")
    if paths:
        kubeconfig = _merge_kubeconfigs(paths)
        if kubeconfig.contexts or context is not None:
            return _config_from_kubeconfig(kubeconfig, context)
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
