"""TLS contexts: trusting a CA given as PEM data, and client certificates held in memory."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator

from ..core.errors import ConfigError
from .auth import ClientCertificate

__all__ = ["context_trusting", "insecure_context", "load_client_certificate"]

log = logging.getLogger("kubeasync.config")

# Once per process and server: the warning is about the kubeconfig, not about one client.
_insecure_servers_warned: set[str] = set()


def insecure_context(server: str, source: str) -> ssl.SSLContext:
    """A context that verifies nothing (``insecure-skip-tls-verify``), with a warning."""
    if server not in _insecure_servers_warned:
        _insecure_servers_warned.add(server)
        log.warning(
            "%s: insecure-skip-tls-verify is set: the certificate of %s is not verified, so"
            " anyone on the network path can read and change this traffic",
            source,
            server,
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def context_trusting(ca_data: bytes, where: str) -> ssl.SSLContext:
    """A context that trusts exactly the certificate authorities in ``ca_data`` (PEM)."""
    try:
        text = ca_data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not PEM text (non-ASCII bytes)") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{where}: no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    try:
        return ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{where}: the certificate authority is not valid: {_ssl_reason(exc)}"
        ) from None


def _ssl_reason(exc: Exception) -> str:
    # OpenSSL's own words about certificates (public data), never a key's bytes.
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else str(exc)


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
            reason = _ssl_reason(exc)
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
