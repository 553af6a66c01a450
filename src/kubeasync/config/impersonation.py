"""Impersonation: acting as another user, with the API server's ``Impersonate-*`` headers.

The identity that authenticates (a token, a certificate...) needs the ``impersonate``
verb on the users, groups, uids and extras it asks for. Kubeconfig users carry it as
``as``, ``as-uid``, ``as-groups`` and ``as-user-extra``, as in kubectl and client-go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ..core.errors import ConfigError

__all__ = ["Impersonation", "check_identity_text", "escape_extra_key", "validated"]

USER_HEADER = "Impersonate-User"
UID_HEADER = "Impersonate-Uid"
GROUP_HEADER = "Impersonate-Group"
EXTRA_HEADER_PREFIX = "Impersonate-Extra-"

# RFC 7230 token characters, the bytes a header name may hold. client-go percent-encodes
# every other byte of an extra key, and "%" itself, so that the API server's
# url.PathUnescape gives the key back.
_HEADER_NAME_BYTES = frozenset(
    b"!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def escape_extra_key(key: str) -> str:
    """The extra key as client-go writes it after ``Impersonate-Extra-``: UTF-8 bytes
    that cannot appear in a header name, and ``%``, become ``%XX`` (upper-case hex)."""
    return "".join(
        chr(byte) if byte in _HEADER_NAME_BYTES else f"%{byte:02X}"
        for byte in key.encode("utf-8")
    )


def check_identity_text(value: object, where: str) -> str:
    """A user, group, uid or extra value: a non-empty string that survives as a header
    value unchanged. Never echoes the value."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string, not {type(value).__name__}")
    if not value:
        raise ConfigError(f"{where}: is empty")
    if not all(char.isprintable() for char in value):
        # A line break would end the header (or inject another one).
        raise ConfigError(f"{where}: contains control characters")
    if value != value.strip():
        # HTTP drops a header value's outer whitespace: the server would see another name.
        raise ConfigError(f"{where}: starts or ends with whitespace")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    # A bare str is a Sequence[str] too: "dev" must not become ("d", "e", "v").
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: must be a list of strings, not {type(value).__name__}")
    return tuple(check_identity_text(item, f"{where}[{index}]") for index, item in enumerate(value))


#: The names of the four fields in messages: Python's, or the kubeconfig's.
PYTHON_NAMES = ("user", "groups", "uid", "extra")
KUBECONFIG_NAMES = ("as", "as-groups", "as-uid", "as-user-extra")


def validated(
    user: object, groups: object, uid: object, extra: object, *, where: str,
    names: tuple[str, str, str, str] = PYTHON_NAMES,
) -> tuple[str, tuple[str, ...], str | None, dict[str, tuple[str, ...]]]:
    """The four fields checked and normalized, errors naming them as ``names`` says."""
    user_name, groups_name, uid_name, extra_name = (f"{where}: {name}" for name in names)
    checked_user = check_identity_text(user, user_name)
    checked_groups = _strings(groups, groups_name)
    checked_uid = check_identity_text(uid, uid_name) if uid is not None else None
    if not isinstance(extra, Mapping):
        raise ConfigError(
            f"{extra_name}: must be a mapping of keys to lists of strings,"
            f" not {type(extra).__name__}"
        )
    checked_extra: dict[str, tuple[str, ...]] = {}
    lowered: dict[str, str] = {}
    for key, values in extra.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{extra_name}: every key must be a non-empty string")
        other = lowered.setdefault(key.lower(), key)
        if other != key:
            raise ConfigError(
                f"{extra_name}: keys {other!r} and {key!r} differ only in case, and header"
                " names ignore case: the API server would merge them"
            )
        checked_extra[key] = _strings(values, f"{extra_name}[{key!r}]")
    return checked_user, checked_groups, checked_uid, checked_extra


@dataclass(frozen=True)
class Impersonation:
    """Who to act as: sent as ``Impersonate-*`` headers on every request, stream and
    WebSocket of the client.

    Attributes:
        user: the user name (``jane``, ``system:serviceaccount:ns:name``); required, since
            the API server refuses groups, a uid or extras without a user.
        groups: the groups (one ``Impersonate-Group`` header each).
        uid: the user's uid (``Impersonate-Uid``).
        extra: extra attributes, each key with its values (``Impersonate-Extra-<key>``,
            the key percent-encoded as client-go does). Header names ignore case, so the
            API server lowercases the keys.
    """

    user: str
    groups: Sequence[str] = ()
    uid: str | None = None
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _, groups, _, extra = validated(
            self.user, self.groups, self.uid, self.extra, where="Impersonation"
        )
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "extra", MappingProxyType(extra))

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The headers, as ``(name, value)`` pairs in client-go's order (user, uid, groups,
        extras). A name may repeat: send every pair, never a dict of them."""
        pairs = [(USER_HEADER, self.user)]
        if self.uid is not None:
            pairs.append((UID_HEADER, self.uid))
        pairs += [(GROUP_HEADER, group) for group in self.groups]
        for key, values in self.extra.items():
            name = EXTRA_HEADER_PREFIX + escape_extra_key(key)
            pairs += [(name, value) for value in values]
        return tuple(pairs)

    def __repr__(self) -> str:
        parts = [f"user={self.user!r}"]
        if self.groups:
            parts.append(f"groups={tuple(self.groups)!r}")
        if self.uid is not None:
            parts.append(f"uid={self.uid!r}")
        if self.extra:
            extra = {key: tuple(values) for key, values in self.extra.items()}
            parts.append(f"extra={extra!r}")
        return f"Impersonation({', '.join(parts)})"
