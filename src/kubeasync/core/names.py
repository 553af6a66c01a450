"""Name rules checked before anything reaches a URL.

Every name that becomes a path segment is checked here first: an object name, a namespace,
a container, and the group, version and plural of a resource. A bad one raises
``ValueError`` naming the argument, so a request with ``..`` or ``/`` in it is never built.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = [
    "quote_segment",
    "validate_dns_label",
    "validate_dns_subdomain",
    "validate_name",
    "validate_namespace",
]

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def quote_segment(segment: str) -> str:
    """Percent-encode one path segment (after validation, so ``/`` and ``%`` never occur)."""
    return quote(segment, safe="")


def _require_str(value: object, argument: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{argument} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{argument} must not be empty")
    return value


def validate_name(name: object, argument: str = "name") -> str:
    """Check an object name is safe as one URL path segment; return it.

    The API server's own rule (``IsValidPathSegmentName``): not empty, not ``.`` or ``..``,
    and no ``/`` or ``%``. Dots inside a name (``web.v1``) are fine. Stricter rules
    (DNS-1123) differ per kind and are left to the server, which answers 422 Invalid.
    """
    name = _require_str(name, argument)
    if name in (".", ".."):
        raise ValueError(f"{argument} may not be {name!r}")
    for bad in ("/", "%"):
        if bad in name:
            raise ValueError(f"{argument} {name!r} may not contain {bad!r}")
    if _CONTROL_CHARACTER.search(name):
        raise ValueError(f"{argument} {name!r} may not contain control characters")
    return name


# Labels already checked (namespaces, mostly: every request checks one). Bounded, so a
# program that makes up namespaces cannot grow it without limit.
_VALID_LABELS: set[str] = set()
_VALID_LABELS_MAX = 4096


def validate_dns_label(value: object, argument: str, what: str = "a DNS label") -> str:
    """Check ``value`` is a DNS-1123 label (lower-case alphanumerics and ``-``, <= 63)."""
    if type(value) is str and value in _VALID_LABELS:
        return value
    value = _require_str(value, argument)
    if len(value) > DNS_LABEL_MAX:
        raise ValueError(f"{argument} {value!r} is longer than {DNS_LABEL_MAX} characters")
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{argument} {value!r} is not {what}: use lower-case letters, digits"
            " and '-', starting and ending with a letter or digit"
        )
    if type(value) is str and len(_VALID_LABELS) < _VALID_LABELS_MAX:
        _VALID_LABELS.add(value)
    return value


def validate_dns_subdomain(value: object, argument: str) -> str:
    """Check ``value`` is a DNS-1123 subdomain (dot-separated labels, <= 253)."""
    value = _require_str(value, argument)
    if len(value) > DNS_SUBDOMAIN_MAX:
        raise ValueError(f"{argument} {value!r} is longer than {DNS_SUBDOMAIN_MAX} characters")
    if not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{argument} {value!r} is not a DNS subdomain: use lower-case letters, digits,"
            " '-' and '.', starting and ending with a letter or digit"
        )
    return value


def validate_namespace(namespace: object, argument: str = "namespace") -> str:
    """Check a namespace is a DNS-1123 label (what the server accepts); return it."""
    return validate_dns_label(namespace, argument, "a valid namespace")
