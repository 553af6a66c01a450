"""Kubeconfig files: finding, parsing and merging them, and turning one context into a
:class:`~kubeasync.ClusterConfig` (its cluster, its user's credentials, impersonation).

Every problem is a :class:`~kubeasync.ConfigError` naming the file, the context and the
field. Values are never quoted in those messages (any of them may be a secret), and
neither is a line of the file: a YAML error gives its position and what kind of problem
it is, never the text around it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError
from .auth import Auth, BasicAuth, BearerToken, ExecPlugin, NoAuth, TokenFile
from .cluster import ClusterConfig, check_proxy_url, check_server, read_file
from .impersonation import KUBECONFIG_NAMES, Impersonation, validated

__all__ = [
    "config_from_kubeconfig",
    "default_kubeconfig",
    "kubeconfig_env_paths",
    "load_kubeconfig",
    "merge_kubeconfigs",
]

_EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"



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
    text = read_file(path, "kubeconfig")
    problem: str | None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except Exception as exc:  # a tagged value (!!int x) raises ValueError, KeyError...
        problem = _yaml_problem(exc)
    else:
        problem = None
    if problem is not None:
        # Raised outside the except block: PyYAML's exception quotes the file, and it
        # must not travel along as this error's __context__ either.
        raise ConfigError(f"{path}: not valid YAML{problem}")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a kubeconfig must be a YAML mapping, not a {_kind(data)}")
    return data


# PyYAML quotes what it stumbled on: a tag, an alias, a character of a value, which may be
# part of a password (`password: !Hunter2` is a tag). Only the names of YAML's own tokens
# ('<block end>', ',', ']') are kept; anything else quoted is dropped.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_YAML_TOKEN_NAME = re.compile(r"'(?:<[a-z ]+>|[-,:?\[\]{}]|\\t| )'")
_ADVICE = (
    ("constructor for the tag", "a value that starts with ! is read as a YAML tag: quote it"),
    ("undefined alias", "a value that starts with * is read as a YAML alias: quote it"),
    ("duplicate anchor", "a value that starts with & is read as a YAML anchor: quote it"),
    ("cannot start any token", "a value that starts with @, ` or % must be quoted, and YAML"
                               " indents with spaces, not tabs"),
    ("escape", "in double quotes a backslash starts an escape: use single quotes"),
)


def _yaml_problem(exc: Exception) -> str:
    """Where the YAML is broken and what kind of problem it is, without quoting the file."""
    if not isinstance(exc, yaml.YAMLError):
        # A value with an explicit type tag (`!!int abc`) that does not convert: the
        # converter's own message quotes the value.
        return ": a value tagged with an explicit type (such as !!int) cannot be converted"
    if isinstance(exc, yaml.reader.ReaderError):
        return f" at offset {exc.position}: a control character, or text that is not UTF-8"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ""
    mark = exc.problem_mark or exc.context_mark
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    words = ", ".join(part for part in (exc.context, exc.problem) if part)
    shown = _QUOTED.sub(
        lambda quoted: quoted[0] if _YAML_TOKEN_NAME.fullmatch(quoted[0]) else "(not shown)",
        words,
    )
    advice = next((f" ({text})" for marker, text in _ADVICE if marker in words), "")
    return f"{at}: {shown}{advice}"


def _kind(value: object) -> str:
    return {
        list: "list", dict: "mapping", str: "string", int: "number", float: "number",
        bool: "boolean", type(None): "null",
    }.get(type(value), type(value).__name__)


def merge_kubeconfigs(paths: Sequence[Path]) -> _Kubeconfig:
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
    from_env = kubeconfig_env_paths()
    if from_env:
        existing = [p for p in from_env if p.exists()]
        if not existing:
            raise ConfigError(
                f"none of the files in KUBECONFIG exists: {os.environ.get('KUBECONFIG')}"
            )
        return existing
    default = default_kubeconfig()
    if not default.exists():
        raise ConfigError(f"no kubeconfig: KUBECONFIG is not set and {default} does not exist")
    return [default]


def kubeconfig_env_paths() -> list[Path]:
    value = os.environ.get("KUBECONFIG", "")
    return _unique(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


def default_kubeconfig() -> Path:
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
    return config_from_kubeconfig(merge_kubeconfigs(_kubeconfig_paths(path)), context)


def config_from_kubeconfig(kubeconfig: _Kubeconfig, context: str | None) -> ClusterConfig:
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
    check_server(server, f"{cluster.where}: server")
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
        check_proxy_url(proxy_url, f"{cluster.where}: proxy-url")

    auth: Auth = NoAuth()
    cert_pem = key_pem = None
    impersonate: Impersonation | None = None
    if user is not None:
        auth = _auth_from_user(user, cluster, server, ca_data, insecure)
        impersonate = _impersonation(user)
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
        impersonate=impersonate,
    )
    config._field_sources = sources
    config._check_tls()
    return config


def _impersonation(user: _Fields) -> Impersonation | None:
    """kubectl's ``as``, ``as-uid``, ``as-groups`` and ``as-user-extra`` (``--as``...)."""
    name = user.string("as")
    uid = user.string("as-uid")
    groups = user.items("as-groups")
    extra = user.mapping("as-user-extra") or {}
    if name is None:
        others = [key for key, value in (("as-uid", uid), ("as-groups", groups),
                                         ("as-user-extra", extra)) if value]
        if others:
            raise user.error(
                others[0],
                "needs as, the user to impersonate: the API server refuses groups, a uid"
                " or extras without a user",
            )
        return None
    checked = validated(name, groups, uid, extra, where=user.where, names=KUBECONFIG_NAMES)
    return Impersonation(*checked)


def _auth_from_user(
    user: _Fields,
    cluster: _Fields,
    server: str,
    ca_data: bytes | None,
    insecure: bool,
) -> Auth:
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


