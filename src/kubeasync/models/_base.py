"""Hand-written base class, type aliases and helpers shared by the generated models.

The generated modules (``core_v1.py``, ``apps_v1.py``, ...) import from here; this module
imports nothing from them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

import msgspec

__all__ = [
    "IntOrString",
    "KubeModel",
    "MicroTime",
    "NullDefault",
    "Quantity",
    "RawExtension",
    "Time",
    "format_time",
    "parse_time",
    "to_dict",
]


class KubeModel(
    msgspec.Struct,
    kw_only=True,
    omit_defaults=True,
    gc=False,
    repr_omit_defaults=True,
):
    """Base class of every Kubernetes model.

    - every field is keyword-only and optional (default ``None``), so that ``null`` or
      missing values sent by a server never make decoding fail; the fields every answer
      carries (a kind's ``metadata``, a list's ``items``) are :data:`NullDefault` instead;
    - unset fields (still at their default) are left out when encoding, so
      ``msgspec.json.encode(ConfigMapList())`` is ``b"{}"`` (a default ``ObjectMeta`` is
      written as ``{}``: ``msgspec.json.encode(Pod())`` is ``b'{"metadata":{}}'``);
    - unknown fields are ignored when decoding;
    - instances are not tracked by the garbage collector (``gc=False``), which makes
      decoding large lists several times faster. Model instances must therefore never be
      part of a reference cycle (plain API data never is);
    - ``repr()`` shows only the fields that are set.

    msgspec does not pass ``kw_only`` on to subclasses (the other options are inherited), so
    every subclass is declared ``class Foo(KubeModel, kw_only=True)``.
    """


_T = TypeVar("_T")

if TYPE_CHECKING:
    NullDefault: TypeAlias = Annotated[_T, "a wire null decodes as the default"]
else:

    class NullDefault:
        """``NullDefault[T]``: a field that is never ``None`` although servers may send ``null``.

        Type checkers see ``T``; msgspec sees ``T | None``, so that a ``null`` on the wire
        decodes, and the class's ``__post_init__`` replaces the ``None`` with the field's
        default (an empty ``ObjectMeta``, ``ListMeta`` or list). msgspec has no "null means
        the default" option: this is that option, for the few fields that every server
        answer carries (a kind's ``metadata``, a list's ``items``) but a watch BOOKMARK may
        carry as ``null``.
        """

        __slots__ = ()

        def __class_getitem__(cls, item: Any) -> Any:
            return item | None


Time: TypeAlias = str
"""``meta/v1 Time``: an RFC 3339 timestamp with second precision, e.g.
``"2024-05-01T10:00:00Z"``, kept as the wire string (use :func:`parse_time`)."""

MicroTime: TypeAlias = str
"""``meta/v1 MicroTime``: an RFC 3339 timestamp with microseconds, e.g.
``"2024-05-01T10:00:00.123456Z"``, kept as the wire string (use :func:`parse_time`)."""

Quantity: TypeAlias = str | int | float
"""``resource.Quantity``: a resource amount such as ``"100m"``, ``"128Mi"`` or ``2``.

Servers always send strings; the wire value is kept unchanged."""

IntOrString: TypeAlias = int | str
"""``intstr.IntOrString``: a port number (``8080``) or a name (``"http"``), or a
percentage (``"25%"``); the wire value is kept unchanged."""

RawExtension: TypeAlias = dict[str, Any]
"""``runtime.RawExtension``: an embedded object of any kind, as decoded JSON."""


_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})"  # date and time
    r"(?:\.(\d+))?"  # fractional seconds
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",  # UTC or offset
    re.ASCII,
)


def parse_time(value: str | None) -> datetime | None:
    """Parse a Kubernetes ``Time`` or ``MicroTime`` string into an aware ``datetime``.

    Accepts RFC 3339 timestamps with or without fractional seconds (any number of digits;
    digits beyond microseconds are truncated) and with ``Z`` or a numeric UTC offset.
    ``None`` gives ``None``. Raises ``ValueError`` on anything else.

    >>> parse_time("2024-05-01T10:00:00Z")
    datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc)
    >>> parse_time("2024-05-01T10:00:00.123456Z").microsecond
    123456
    """
    if value is None:
        return None
    m = _TIME_RE.fullmatch(value)
    if m is None:
        raise ValueError(f"not a Kubernetes timestamp: {value!r}")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
    tz = timezone.utc
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset:
            tz = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        int((frac or "0")[:6].ljust(6, "0")),
        tzinfo=tz,
    )


def format_time(value: datetime, *, micro: bool = False) -> str:
    """Format a ``datetime`` the way Kubernetes writes ``Time`` (or ``MicroTime``).

    Naive datetimes are taken as UTC. The result is in UTC with a ``Z`` suffix.

    >>> format_time(datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc))
    '2024-05-01T10:00:00Z'
    >>> format_time(datetime(2024, 5, 1, 10, 0, 0, 123456), micro=True)
    '2024-05-01T10:00:00.123456Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    if micro:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_dict(obj: msgspec.Struct) -> dict[str, Any]:
    """A model instance as plain JSON data (wire names, unset fields left out).

    Use this rather than ``msgspec.to_builtins``, which cannot handle the ``msgspec.Raw``
    of ``managedFields[].fieldsV1``.
    """
    data = msgspec.json.decode(msgspec.json.encode(obj))
    if not isinstance(data, dict):
        raise TypeError(f"{type(obj).__name__} does not encode as a JSON object")
    return data
