"""Credential providers: the one seam between configuration and the session.

Before every request the session asks its :class:`Auth` for headers and for a client
certificate (most providers have none: a static client certificate from a kubeconfig
lives in the :class:`~kubeasync.ClusterConfig`'s TLS settings). After a 401 it calls
:meth:`Auth.refresh` once and repeats the request if that returned True.

Providers whose credential changes over time (a token file, an exec plugin, your own
vault lookup) derive from :class:`RefreshingAuth` and implement :meth:`RefreshingAuth.fetch`;
the base class caches the credential, refreshes it when it goes stale, and makes sure that
however many requests wait, one fetch runs and all of them share its outcome.

Per request, the transport takes :meth:`Auth.headers` and :meth:`Auth.client_certificate`
once each, in either order (or :meth:`RefreshingAuth.credential` once, for both): the two
halves of one request always come from the same credential.

Every provider keeps its secret out of ``repr()``, out of log records and out of exception
messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from ..core.errors import ConfigError

__all__ = [
    "Auth",
    "BasicAuth",
    "BearerToken",
    "ClientCertificate",
    "Credential",
    "ExecPlugin",
    "NoAuth",
    "RefreshingAuth",
    "TokenFile",
]

log = logging.getLogger("kubeasync.auth")


@dataclass(frozen=True, eq=False)
class ClientCertificate:
    """A PEM client certificate (with any intermediates) and its unencrypted PEM key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "ClientCertificate(<certificate>, key=<hidden>)"

    def same_as(self, other: ClientCertificate | None) -> bool:
        return (
            other is not None
            and other.cert_pem == self.cert_pem
            and other.key_pem == self.key_pem
        )


class Auth:
    """Base class: no credentials.

    ``fixed`` says that :meth:`headers` and :meth:`client_certificate` always give the
    same answer, so the client asks once and reuses it for every request. A subclass that
    overrides either method is not fixed unless it says so itself.
    """

    fixed: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = "headers" in cls.__dict__ or "client_certificate" in cls.__dict__
        if overrides and "fixed" not in cls.__dict__:
            cls.fixed = False

    async def headers(self) -> Mapping[str, str]:
        """Headers to add to the next request (e.g. ``Authorization``)."""
        return {}

    async def client_certificate(self) -> ClientCertificate | None:
        """A client certificate for the next request's TLS connection, if this provider
        supplies one (an exec plugin may). It replaces the configuration's static one."""
        return None

    async def refresh(self) -> bool:
        """Called after a 401: drop cached credentials and fetch new ones.

        Returns True when the credentials may have changed, so repeating the request
        could succeed; False when there is nothing to refresh.
        """
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoAuth(Auth):
    """No credentials at all (an insecure local server, or client-certificate auth only)."""

    fixed = True


def validate_token(token: str, where: str) -> str:
    """Strip a token and check it can be sent as a header, without ever echoing it."""
    token = token.strip()
    if not token:
        raise ConfigError(f"{where}: the token is empty")
    # A token with a line break or a space would corrupt the Authorization header (or let a
    # file inject headers); aiohttp's own error for that would quote the value.
    if any(char.isspace() or not char.isprintable() for char in token):
        raise ConfigError(f"{where}: the token contains whitespace or control characters")
    return token


class BearerToken(Auth):
    """A fixed bearer token."""

    fixed = True

    def __init__(self, token: str, *, where: str = "bearer token") -> None:
        if not isinstance(token, str):
            raise ConfigError(f"{where}: the token must be a str, not {type(token).__name__}")
        self._header = {"Authorization": f"Bearer {validate_token(token, where)}"}

    async def headers(self) -> Mapping[str, str]:
        return self._header

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"


class BasicAuth(Auth):
    """HTTP basic authentication (kubeconfig ``username`` / ``password``)."""

    fixed = True

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = {"Authorization": f"Basic {encoded}"}

    async def headers(self) -> Mapping[str, str]:
        return self._header

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, eq=False)
class Credential:
    """What a :class:`RefreshingAuth` fetched: headers and/or a client certificate.

    ``expires_at`` is a Unix time (``time.time()`` scale) after which the credential must
    not be used, or ``None`` when it stays valid until the server rejects it.
    """

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    client_certificate: ClientCertificate | None = field(default=None, repr=False)
    expires_at: float | None = None

    def same_secret(self, other: Credential) -> bool:
        if dict(self.headers) != dict(other.headers):
            return False
        if self.client_certificate is None:
            return other.client_certificate is None
        return self.client_certificate.same_as(other.client_certificate)


@dataclass(frozen=True)
class _Handed:
    """The credential a task's current request was given, and which of its two halves
    (``"headers"``, ``"certificate"``) that request has taken."""

    auth: RefreshingAuth
    credential: Credential
    halves: frozenset[str]


# Which credential the current task's latest request carried. A request takes headers()
# and client_certificate() once each, in either order: both halves come from the same
# credential, even one that arrived already expired (taking the second half must not
# fetch again). And a refresh after a 401 can tell "this credential was already replaced
# by another request's refresh" (nothing to do but repeat) from "this credential is the
# current one" (fetch a new one), as client-go does by comparing the credential a request
# used with the cached one. A task runs one request at a time, and a ContextVar set in an
# awaited coroutine is seen by the rest of that task.
_HANDED: contextvars.ContextVar[_Handed | None] = contextvars.ContextVar(
    "kubeasync_credential_handed", default=None
)
_BOTH_HALVES = frozenset({"headers", "certificate"})


class RefreshingAuth(Auth):
    """A provider whose credential is fetched, cached, and fetched again when stale.

    Subclasses implement :meth:`fetch` (and may override :meth:`is_stale`). The cached
    credential is used until it is stale or the server answers 401. Then one fetch runs,
    and every request that was waiting for it shares its outcome: its credential (even
    one that is already stale when it arrives: those requests waited for it; the next
    request fetches again) or its error.
    """

    def __init__(self) -> None:
        self._current: Credential | None = None
        self._generation = 0  # credentials stored
        self._attempts = 0  # fetches finished, with a credential or an error
        self._failure: Exception | None = None  # the error of the last fetch, if it failed
        self._lock = asyncio.Lock()
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _fetch_lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to the loop it first waited in; a configuration reused by
        # a second asyncio.run() (scripts, test suites) gets a fresh one.
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    async def fetch(self) -> Credential:
        """Obtain a new credential (raise :class:`~kubeasync.ConfigError` on failure)."""
        raise NotImplementedError

    def is_stale(self, credential: Credential) -> bool:
        """True when the cached credential must be fetched again before use."""
        return credential.expires_at is not None and time.time() >= credential.expires_at

    async def credential(self) -> Credential:
        """The credential for one request (headers and client certificate together):
        the cached one, or a new one if there is none or it is stale."""
        credential = await self._fresh()
        _HANDED.set(_Handed(self, credential, _BOTH_HALVES))
        return credential

    async def headers(self) -> Mapping[str, str]:
        return (await self._half("headers")).headers

    async def client_certificate(self) -> ClientCertificate | None:
        return (await self._half("certificate")).client_certificate

    async def _half(self, half: str) -> Credential:
        handed = _HANDED.get()
        if (
            handed is not None
            and handed.auth is self
            and handed.credential is self._current
            and half not in handed.halves
        ):
            # The other half of the same request.
            _HANDED.set(_Handed(self, handed.credential, handed.halves | {half}))
            return handed.credential
        credential = await self._fresh()
        _HANDED.set(_Handed(self, credential, frozenset({half})))
        return credential

    async def _fresh(self) -> Credential:
        current = self._current
        if current is not None and not self.is_stale(current):
            return current
        attempts = self._attempts
        async with self._fetch_lock():
            if self._attempts != attempts:
                # A fetch finished while this request waited: its outcome is ours too.
                return self._outcome()
            current = self._current
            if current is None or self.is_stale(current):
                current = await self._replace()
            return current

    async def refresh(self) -> bool:
        handed = _HANDED.get()
        rejected = handed.credential if handed is not None and handed.auth is self else None
        generation, attempts = self._generation, self._attempts
        async with self._fetch_lock():
            if rejected is not None:
                if rejected is not self._current:
                    return True  # another request already replaced it
            elif self._generation != generation:
                return True  # we waited for another request's refresh
            if self._attempts != attempts and self._failure is not None:
                raise self._failure  # we waited for a refresh that failed
            if rejected is None:
                rejected = self._current
            new = await self._replace()
            # Repeating with the very credential the server just refused cannot succeed.
            return rejected is None or not new.same_secret(rejected)

    def _outcome(self) -> Credential:
        if self._failure is not None:
            raise self._failure
        assert self._current is not None
        return self._current

    async def _replace(self) -> Credential:
        try:
            credential = await self.fetch()
        except Exception as error:
            # Shared with the requests that waited for this fetch. A cancelled fetch
            # (BaseException) is no outcome: the next waiter fetches itself.
            self._attempts += 1
            self._failure = error
            raise
        self._store(credential)
        return credential

    def _store(self, credential: Credential) -> None:
        self._current = credential
        self._failure = None
        self._generation += 1
        self._attempts += 1


@dataclass(frozen=True)
class _FileSignature:
    inode: int
    size: int
    mtime_ns: int


def _signature(path: Path) -> _FileSignature | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return _FileSignature(stat.st_ino, stat.st_size, stat.st_mtime_ns)


class TokenFile(RefreshingAuth):
    """A bearer token read from a file, and read again when the file changes.

    The file is checked (one ``stat``) before each request and re-read when its inode, size
    or modification time changed (Kubernetes rotates projected tokens by swapping a
    symlink), after ``max_age`` seconds in any case, and after a 401. If the file cannot
    be read later on, the last good token is kept and a warning logged.

    Args:
        path: the token file.
        max_age: re-read at least this often (seconds), even if the file looks unchanged.
        where: how to name this token in error messages (e.g. the kubeconfig and field).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_age: float = 60.0,
                 where: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_age = max_age
        self._where = where or f"token file {self.path}"
        self._read_signature: _FileSignature | None = None
        self._read_at = 0.0

    def read_now(self) -> None:
        """Read the file at once, so that a missing or empty file fails at load time."""
        self._store(self._read())

    def is_stale(self, credential: Credential) -> bool:
        if time.monotonic() - self._read_at >= self.max_age:
            return True
        return _signature(self.path) != self._read_signature

    async def fetch(self) -> Credential:
        try:
            return self._read()
        except ConfigError as error:
            if self._current is None:
                raise
            log.warning("%s; still using the token read before", error)
            # Try again after max_age or when the file changes, not on every request.
            self._read_signature = _signature(self.path)
            self._read_at = time.monotonic()
            return self._current

    def _read(self) -> Credential:
        signature = _signature(self.path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{self._where}: cannot read {self.path}: {reason}") from None
        token = validate_token(text, f"{self._where} ({self.path})")
        self._read_signature = signature
        self._read_at = time.monotonic()
        return Credential(headers={"Authorization": f"Bearer {token}"})

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"


EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
_STDERR_SHOWN = 500
_SHORTEST_REDACTED = 8


class _ExecStatus(msgspec.Struct, rename="camel"):
    token: str | None = None
    client_certificate_data: str | None = None
    client_key_data: str | None = None
    expiration_timestamp: datetime | None = None


class _ExecCredentialOutput(msgspec.Struct, rename="camel"):
    api_version: str | None = None
    kind: str | None = None
    status: _ExecStatus | None = None


_EXEC_OUTPUT_DECODER = msgspec.json.Decoder(_ExecCredentialOutput)


class ExecPlugin(RefreshingAuth):
    """A credential from an exec plugin (``aws eks get-token``, ``gke-gcloud-auth-plugin``,
    ``kubelogin``...), the ``client.authentication.k8s.io`` ExecCredential protocol.

    The plugin runs as an asyncio subprocess (the event loop keeps running) with stdin
    closed, since kubeasync never has a terminal to offer: ``interactive_mode="Always"`` is
    refused. Its credential (a token and/or a client certificate) is cached until its
    ``expirationTimestamp`` minus ``expiry_margin`` seconds, or until a 401 when it has no
    expiry. One run at a time: concurrent requests wait for it and share its result.

    Args:
        command: the program (looked up on ``PATH`` unless it is a path).
        args: its arguments.
        env: variables added to kubeasync's own environment for the plugin.
        api_version: ``client.authentication.k8s.io/v1`` or ``.../v1beta1``.
        install_hint: shown when the command cannot be found.
        interactive_mode: ``Never``, ``IfAvailable`` or ``Always`` (refused).
        cluster: the ``spec.cluster`` object passed in ``KUBERNETES_EXEC_INFO`` when the
            kubeconfig sets ``provideClusterInfo``.
        timeout: seconds a run may take before it is killed.
        expiry_margin: renew this many seconds before the credential expires.
        where: how to name this plugin's configuration in error messages.
    """

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        api_version: str = "client.authentication.k8s.io/v1",
        install_hint: str | None = None,
        interactive_mode: str = "IfAvailable",
        cluster: Mapping[str, object] | None = None,
        timeout: float = 60.0,
        expiry_margin: float = 10.0,
        where: str = "exec plugin",
    ) -> None:
        super().__init__()
        self._where = where
        if not command:
            raise ConfigError(f"{where}: exec.command is empty")
        if api_version not in EXEC_API_VERSIONS:
            raise ConfigError(
                f"{where}: exec.apiVersion {api_version!r} is not supported"
                f" (use one of {', '.join(EXEC_API_VERSIONS)})"
            )
        if interactive_mode not in INTERACTIVE_MODES:
            raise ConfigError(
                f"{where}: exec.interactiveMode {interactive_mode!r} is not one of"
                f" {', '.join(INTERACTIVE_MODES)}"
            )
        if interactive_mode == "Always":
            raise ConfigError(
                f"{where}: exec plugin {command!r} has interactiveMode Always: it needs a"
                " terminal to ask for input, and kubeasync never has one; log in with the"
                " plugin (or kubectl) first, or use a non-interactive credential"
            )
        self.command = command
        self.args = tuple(args)
        self._env = dict(env or {})
        self.api_version = api_version
        self.install_hint = install_hint
        self.interactive_mode = interactive_mode
        self._cluster = dict(cluster) if cluster is not None else None
        self.timeout = timeout
        self.expiry_margin = expiry_margin

    def __repr__(self) -> str:
        # Arguments and environment may carry secrets (a --token flag, AWS keys).
        return f"ExecPlugin(command={self.command!r})"

    def _describe(self) -> str:
        return f"{self._where}: exec plugin {self.command!r}"

    async def fetch(self) -> Credential:
        spec: dict[str, object] = {"interactive": False}
        if self._cluster is not None:
            spec["cluster"] = self._cluster
        exec_info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}
        # default=str: YAML turns unquoted dates in a cluster's exec extension into dates.
        info = json.dumps(exec_info, default=str)
        env = {**os.environ, **self._env, "KUBERNETES_EXEC_INFO": info}
        stdout, stderr, returncode = await self._run(env)
        if returncode != 0:
            shown = self._redacted(stderr.decode("utf-8", "replace")).strip()[-_STDERR_SHOWN:]
            raise ConfigError(
                f"{self._describe()} failed with exit code {returncode}"
                + (f": {shown}" if shown else " and printed nothing on stderr")
            )
        return self._parse(stdout)

    def _redacted(self, text: str) -> str:
        """``text`` without the values of the kubeconfig's ``env`` (AWS keys and the like),
        which a failing plugin may well print back. Short values (a region, a profile)
        are unlikely secrets and would blank out ordinary words."""
        for value in sorted(self._env.values(), key=len, reverse=True):
            if len(value) >= _SHORTEST_REDACTED:
                text = text.replace(value, "(hidden)")
        return text

    async def _run(self, env: dict[str, str]) -> tuple[bytes, bytes, int]:
        try:
            process = await asyncio.create_subprocess_exec(
                self.command,
                *self.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                # Its own process group, so that a timeout also stops what it started.
                start_new_session=True,
            )
        except FileNotFoundError:
            hint = f"\n{self.install_hint.strip()}" if self.install_hint else ""
            raise ConfigError(f"{self._describe()} was not found{hint}") from None
        except PermissionError:
            raise ConfigError(f"{self._describe()} is not executable") from None
        except OSError as exc:
            raise ConfigError(f"{self._describe()} could not start: {exc.strerror}") from None
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except asyncio.TimeoutError:
            raise ConfigError(
                f"{self._describe()} did not finish within {self.timeout:g} s and was stopped"
            ) from None
        finally:
            if process.returncode is None:
                _kill_group(process.pid)
                await process.wait()
        assert process.returncode is not None
        return stdout, stderr, process.returncode

    def _parse(self, stdout: bytes) -> Credential:
        describe = self._describe()
        try:
            output = _EXEC_OUTPUT_DECODER.decode(stdout)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # msgspec's message names the position or field, never the content (which
            # may hold a token).
            raise ConfigError(
                f"{describe} printed something that is not an ExecCredential JSON object ({exc})"
            ) from None
        if output.kind != "ExecCredential":
            raise ConfigError(f"{describe} printed an object whose kind is not ExecCredential")
        if output.api_version != self.api_version:
            raise ConfigError(
                f"{describe} answered with apiVersion {str(output.api_version)[:80]!r},"
                f" but the kubeconfig asked for {self.api_version!r}"
            )
        status = output.status
        if status is None:
            raise ConfigError(f"{describe} printed an ExecCredential without status")
        headers: dict[str, str] = {}
        if status.token:
            token = validate_token(status.token, f"{describe}: status.token")
            headers["Authorization"] = f"Bearer {token}"
        certificate = None
        if status.client_certificate_data or status.client_key_data:
            if not (status.client_certificate_data and status.client_key_data):
                raise ConfigError(
                    f"{describe} printed only one of status.clientCertificateData and"
                    " status.clientKeyData; both are needed"
                )
            certificate = ClientCertificate(
                status.client_certificate_data.encode(), status.client_key_data.encode()
            )
        if not headers and certificate is None:
            raise ConfigError(
                f"{describe} printed an ExecCredential with neither status.token nor"
                " status.clientCertificateData"
            )
        return Credential(
            headers=headers,
            client_certificate=certificate,
            expires_at=self._renew_at(status.expiration_timestamp),
        )

    def _renew_at(self, expiration: datetime | None) -> float | None:
        if expiration is None:
            return None
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=timezone.utc)
        expires = expiration.timestamp()
        now = time.time()
        if expires <= now:
            # Once per run: the requests that waited for this run use it (the server
            # decides); the next request runs the plugin again.
            log.warning(
                "%s returned a credential that has already expired (expirationTimestamp"
                " %s); using it for the requests that waited for it, and running the"
                " plugin again for the next one",
                self._describe(),
                expiration.isoformat(),
            )
            return expires
        # The margin covers the request's time in flight. For a credential that lives less
        # than twice the margin, it shrinks to half the remaining life: renewing on every
        # request would run the plugin for each one.
        return expires - min(self.expiry_margin, (expires - now) / 2)


def _kill_group(pid: int) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups of this kind
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
