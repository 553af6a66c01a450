"""A self-signed serving certificate for the virtual kubelet, made at run time.

A kubelet serves its API over TLS, and kube-apiserver connects to it with TLS (it does not
verify the certificate unless told to). The runtime dependencies of kubeasync are aiohttp,
msgspec and PyYAML only, and Python's ``ssl`` module cannot make certificates, so this
module makes one itself: an ECDSA P-256 key and a self-signed X.509 v3 certificate for
``127.0.0.1`` and ``localhost``, DER-encoded by hand (about a millisecond of arithmetic).

Each call of :func:`self_signed_certificate` makes a fresh key that never leaves the
process (written to a private temporary directory only as long as ``ssl`` needs to load
it); :func:`default_ssl_context` makes one for the process, on first use, that every
virtual kubelet without a context of its own serves with (tests start many). This is for
tests and local tools: nothing verifies the certificate, so it authenticates nothing.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import secrets
import ssl
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["SelfSignedCertificate", "default_ssl_context", "self_signed_certificate",
           "server_ssl_context"]

# ------------------------------------------------------------------ P-256 (FIPS 186-4 D.1.2.3)

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
      0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)

Point = tuple[int, int] | None  # None is the point at infinity


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    (x1, y1), (x2, y2) = p, q
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        slope = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _multiply(k: int, point: Point) -> Point:
    result: Point = None
    addend = point
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        k >>= 1
    return result


def _on_curve(point: Point) -> bool:
    if point is None:
        return False
    x, y = point
    return (y * y - (x * x * x + _A * x + _B)) % _P == 0


def _sign(private: int, message: bytes) -> tuple[int, int]:
    digest = int.from_bytes(hashlib.sha256(message).digest(), "big")
    while True:
        k = secrets.randbelow(_N - 1) + 1
        point = _multiply(k, _G)
        assert point is not None
        r = point[0] % _N
        s = pow(k, -1, _N) * (digest + r * private) % _N
        if r and s:
            return r, s


# ------------------------------------------------------------------ DER


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    while len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return _tlv(0x02, body)


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray((40 * parts[0] + parts[1],))
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _sequence(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _bit_string(body: bytes) -> bytes:
    return _tlv(0x03, b"\x00" + body)


def _time(when: datetime) -> bytes:
    # RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
    if when.year < 2050:
        return _tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


def _name(common_name: str) -> bytes:
    attribute = _sequence(_oid("2.5.4.3"), _tlv(0x0C, common_name.encode()))
    return _sequence(_tlv(0x31, attribute))


_ECDSA_SHA256 = _sequence(_oid("1.2.840.10045.4.3.2"))
_EC_PUBLIC_KEY = _oid("1.2.840.10045.2.1")
_PRIME256V1 = _oid("1.2.840.10045.3.1.7")


def _pem(label: str, der: bytes) -> str:
    text = base64.encodebytes(der).decode().replace("\n", "")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A certificate and its private key, both PEM."""

    certificate_pem: str
    private_key_pem: str


def self_signed_certificate(common_name: str = "kubeasync-virtual-kubelet", *,
                            addresses: tuple[str, ...] = ("127.0.0.1",),
                            dns_names: tuple[str, ...] = ("localhost",),
                            days: int = 3650) -> SelfSignedCertificate:
    """A new ECDSA P-256 key and a self-signed serving certificate for these names."""
    private = secrets.randbelow(_N - 1) + 1
    public = _multiply(private, _G)
    assert public is not None and _on_curve(public)
    point = b"\x04" + public[0].to_bytes(32, "big") + public[1].to_bytes(32, "big")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    alt_names = b"".join(
        [_tlv(0x87, ipaddress.ip_address(a).packed) for a in addresses]
        + [_tlv(0x82, d.encode("ascii")) for d in dns_names])
    extensions = _sequence(
        # keyUsage (critical): digitalSignature
        _sequence(_oid("2.5.29.15"), _tlv(0x01, b"\xff"), _tlv(0x04, _tlv(0x03, b"\x07\x80"))),
        # extKeyUsage: serverAuth
        _sequence(_oid("2.5.29.37"), _tlv(0x04, _sequence(_oid("1.3.6.1.5.5.7.3.1")))),
        # basicConstraints (critical): not a CA
        _sequence(_oid("2.5.29.19"), _tlv(0x01, b"\xff"), _tlv(0x04, _sequence())),
        # subjectAltName
        _sequence(_oid("2.5.29.17"), _tlv(0x04, _sequence(alt_names))),
    )
    tbs = _sequence(
        _tlv(0xA0, _integer(2)),  # v3
        _integer(secrets.randbits(127) | 1),
        _ECDSA_SHA256,
        _name(common_name),
        _sequence(_time(now - timedelta(hours=1)), _time(now + timedelta(days=days))),
        _name(common_name),
        _sequence(_sequence(_EC_PUBLIC_KEY, _PRIME256V1), _bit_string(point)),
        _tlv(0xA3, extensions),
    )
    r, s = _sign(private, tbs)
    certificate = _sequence(tbs, _ECDSA_SHA256, _bit_string(_sequence(_integer(r), _integer(s))))
    key = _sequence(_integer(1), _tlv(0x04, private.to_bytes(32, "big")),
                    _tlv(0xA0, _PRIME256V1), _tlv(0xA1, _bit_string(point)))
    return SelfSignedCertificate(_pem("CERTIFICATE", certificate), _pem("EC PRIVATE KEY", key))


def server_ssl_context(certificate: SelfSignedCertificate | None = None) -> ssl.SSLContext:
    """A TLS server context with ``certificate`` (default: a new self-signed one)."""
    certificate = certificate or self_signed_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads keys from files only: a private directory for the moment it takes.
    with tempfile.TemporaryDirectory(prefix="kubeasync-kubelet-") as folder:
        cert_path = os.path.join(folder, "tls.crt")
        key_path = os.path.join(folder, "tls.key")
        for path, text in ((cert_path, certificate.certificate_pem),
                           (key_path, certificate.private_key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        context.load_cert_chain(cert_path, key_path)
    return context


_DEFAULT: list[ssl.SSLContext] = []
_DEFAULT_LOCK = threading.Lock()


def default_ssl_context() -> ssl.SSLContext:
    """The process's serving context for virtual kubelets (made once, on first use)."""
    with _DEFAULT_LOCK:
        if not _DEFAULT:
            _DEFAULT.append(server_ssl_context())
        return _DEFAULT[0]
