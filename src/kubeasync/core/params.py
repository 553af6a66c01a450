"""The options of every verb, each declared once.

Each params class is frozen and checks its values when it is built (a bad one raises
``ValueError`` naming the argument), and renders its query string once. The public methods
keep their keyword arguments and build one of these from them; the request builder, the
watcher and the informer-sharing key take the object, so an option is declared, checked
and forwarded in one place (as kube-rs does with ``ListParams``, ``WatchParams`` and
``watcher::Config``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from .backoff import Backoff, positive_number
from .names import validate_name
from .selectors import render_field_selector, render_label_selector

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DeleteParams",
    "ExecParams",
    "GetParams",
    "ListParams",
    "LogParams",
    "PatchParams",
    "PatchType",
    "PropagationPolicy",
    "Query",
    "WatchParams",
    "WatcherConfig",
    "WriteParams",
]

T = TypeVar("T")

Query = tuple[tuple[str, str], ...]

DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024
"""The longest line a stream accepts by default: twice the 16 MiB an object can reach."""


class PatchType(str, enum.Enum):
    """The patch flavours the API server accepts, by their exact content type."""

    JSON = "application/json-patch+json"
    """RFC 6902 JSON Patch: a list of ``{"op", "path", "value"}`` operations."""
    MERGE = "application/merge-patch+json"
    """RFC 7386 JSON Merge Patch: a partial object; ``None`` deletes a key; lists are replaced."""
    STRATEGIC = "application/strategic-merge-patch+json"
    """Kubernetes strategic merge: like MERGE, but lists such as containers merge by key.
    Built-in kinds only (not CRDs)."""
    APPLY = "application/apply-patch+yaml"
    """Server-side apply: the full intent of ``field_manager``; needs ``field_manager``."""

    @classmethod
    def coerce(cls, value: object) -> PatchType:
        """Accept a :class:`PatchType`, its name (``"merge"``) or its content type."""
        if isinstance(value, PatchType):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.lower() in (member.name.lower(), member.value):
                    return member
        choices = ", ".join(f"PatchType.{m.name}" for m in cls)
        raise ValueError(f"patch_type must be one of {choices}, got {value!r}")


class PropagationPolicy(str, enum.Enum):
    """What happens to an object's dependents when it is deleted."""

    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


# ----------------------------------------------------------------------------- checks


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _int(value: object, argument: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{argument} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, got {value}")
    return value


def _optional_int(value: object, argument: str, *, minimum: int) -> int | None:
    return None if value is None else _int(value, argument, minimum=minimum)


def _str(value: object, argument: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{argument} must be a non-empty str, got {value!r}")
    return value


def _optional_str(value: object, argument: str) -> str | None:
    return None if value is None else _str(value, argument)


def _bool(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{argument} must be a bool, got {value!r}")
    return value


def _resource_version(value: object, argument: str = "resource_version") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(
            f"{argument} must be a str (resourceVersions are opaque), got {value!r}"
        )
    return value


def _match(value: object) -> str | None:
    if value is None:
        return None
    if value not in ("Exact", "NotOlderThan"):
        raise ValueError(f"resource_version_match must be 'Exact' or 'NotOlderThan', got {value!r}")
    return str(value)


def _selector(value: object, render: Callable[[object, str], str], argument: str) -> str | None:
    if value is None:
        return None
    return render(value, argument) or None


def _true(value: bool) -> str:
    return "true" if value else "false"


# ----------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class GetParams:
    """``get``: ``resource_version="0"`` allows an answer from the server's cache."""

    resource_version: str | None = None
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rv = _resource_version(self.resource_version)
        _set(self, "query", (("resourceVersion", rv),) if rv is not None else ())


@dataclass(frozen=True, slots=True)
class ListParams:
    """``list`` (one page): selectors (str or mapping, see :mod:`kubeasync.selectors`,
    kept in their rendered form), ``limit``/``continue_`` for pages, and the
    resourceVersion semantics."""

    label_selector: Any = None
    field_selector: Any = None
    limit: int | None = None
    continue_: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None
    timeout_seconds: int | None = None
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels = _selector(self.label_selector, render_label_selector, "label_selector")
        fields = _selector(self.field_selector, render_field_selector, "field_selector")
        _set(self, "label_selector", labels)
        _set(self, "field_selector", fields)
        query: list[tuple[str, str]] = _selector_query(labels, fields)
        if self.limit is not None:
            query.append(("limit", str(_int(self.limit, "limit", minimum=1))))
        if self.continue_ is not None:
            query.append(("continue", _str(self.continue_, "continue_")))
        rv = _resource_version(self.resource_version)
        if rv is not None:
            query.append(("resourceVersion", rv))
        match = _match(self.resource_version_match)
        if match is not None:
            if rv is None:
                raise ValueError("resource_version_match needs resource_version")
            query.append(("resourceVersionMatch", match))
        timeout = _optional_int(self.timeout_seconds, "timeout_seconds", minimum=0)
        if timeout is not None:
            query.append(("timeoutSeconds", str(timeout)))
        _set(self, "query", tuple(query))

    def page(self, continue_: str | None) -> ListParams:
        """The same list, at another page."""
        return ListParams(self.label_selector, self.field_selector, self.limit, continue_,
                          self.resource_version, self.resource_version_match,
                          self.timeout_seconds)


def _selector_query(labels: str | None, fields: str | None) -> list[tuple[str, str]]:
    query = []
    if labels:
        query.append(("labelSelector", labels))
    if fields:
        query.append(("fieldSelector", fields))
    return query


@dataclass(frozen=True, slots=True)
class WatchParams:
    """One watch request: selectors, where it starts, how long the server keeps it open,
    whether the server sends BOOKMARK events, and the streamed initial list."""

    label_selector: Any = None
    field_selector: Any = None
    resource_version: str | None = None
    resource_version_match: str | None = None
    timeout_seconds: int | None = None
    bookmarks: bool = False
    send_initial_events: bool = False
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels = _selector(self.label_selector, render_label_selector, "label_selector")
        fields = _selector(self.field_selector, render_field_selector, "field_selector")
        _set(self, "label_selector", labels)
        _set(self, "field_selector", fields)
        query = [("watch", "true"), *_selector_query(labels, fields)]
        rv = _resource_version(self.resource_version)
        if rv is not None:
            query.append(("resourceVersion", rv))
        match = _match(self.resource_version_match)
        if self.send_initial_events and match is None:
            match = "NotOlderThan"  # the only match sendInitialEvents accepts
            _set(self, "resource_version_match", match)
        if match is not None:
            query.append(("resourceVersionMatch", match))
        timeout = _optional_int(self.timeout_seconds, "timeout_seconds", minimum=0)
        if timeout is not None:
            query.append(("timeoutSeconds", str(timeout)))
        if _bool(self.send_initial_events, "send_initial_events") and not self.bookmarks:
            # The end of the initial events is a bookmark: the server requires them.
            _set(self, "bookmarks", True)
        if _bool(self.bookmarks, "bookmarks"):
            query.append(("allowWatchBookmarks", "true"))
        if self.send_initial_events:
            query.append(("sendInitialEvents", "true"))
        _set(self, "query", tuple(query))


@dataclass(frozen=True, slots=True)
class WatcherConfig(Generic[T]):
    """Everything that shapes a resilient watch (``api.watch()``, ``api.informer()``);
    two informers with equal configs are the same informer.

    Attributes:
        label_selector, field_selector: server-side selectors (rendered strings).
        send_initial_events: ``None`` (auto): stream the initial state where the server
            supports it, else list; ``True``: always stream it; ``False``: always list.
        bookmarks: also yield BOOKMARK events (they always advance the checkpoint).
        timeout_seconds: each watch request lasts a random time in ``[T, 2T)``.
        idle_timeout: seconds without a byte before a connection counts as stalled
            (default: the request's timeout + 30 s).
        page_size: objects per page of the initial list.
        backoff: the waits after failures (0.8 s to 30 s).
        max_line_bytes: the largest event accepted.
        transform: applied to every object before it is recorded and yielded (compared
            by identity).
    """

    label_selector: Any = None
    field_selector: Any = None
    send_initial_events: bool | None = None
    bookmarks: bool = False
    timeout_seconds: int = 300
    idle_timeout: float | None = None
    page_size: int = 500
    backoff: Backoff = field(default_factory=Backoff)
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    transform: Callable[[T], T] | None = None

    def __post_init__(self) -> None:
        _set(self, "label_selector",
             _selector(self.label_selector, render_label_selector, "label_selector"))
        _set(self, "field_selector",
             _selector(self.field_selector, render_field_selector, "field_selector"))
        if self.send_initial_events not in (None, True, False):
            raise ValueError(
                "send_initial_events must be None (auto), True or False,"
                f" got {self.send_initial_events!r}"
            )
        _bool(self.bookmarks, "bookmarks")
        _int(self.timeout_seconds, "timeout_seconds", minimum=1)
        if self.idle_timeout is not None:
            _set(self, "idle_timeout", positive_number(self.idle_timeout, "idle_timeout"))
        _int(self.page_size, "page_size", minimum=1)
        _int(self.max_line_bytes, "max_line_bytes", minimum=1)
        if self.backoff is None:
            _set(self, "backoff", Backoff())
        elif not isinstance(self.backoff, Backoff):
            raise ValueError(f"backoff must be a kubeasync.Backoff, got {self.backoff!r}")
        if self.transform is not None and not callable(self.transform):
            raise ValueError(f"transform must be a callable or None, got {self.transform!r}")
        if not isinstance(self.transform, Hashable) or not isinstance(self.backoff, Hashable):
            raise ValueError("transform and backoff must be hashable")

    def list_params(self, continue_: str | None = None) -> ListParams:
        """One page of the initial list."""
        return ListParams(self.label_selector, self.field_selector, limit=self.page_size,
                          continue_=continue_)

    def watch_params(self, resource_version: str | None, timeout_seconds: int,
                     *, initial_events: bool) -> WatchParams:
        """One watch request of this watcher (always with bookmarks: they advance the
        checkpoint); ``initial_events`` streams the current state first."""
        return WatchParams(
            self.label_selector, self.field_selector,
            resource_version=None if initial_events else resource_version,
            timeout_seconds=timeout_seconds, bookmarks=True,
            send_initial_events=initial_events,
        )


# ----------------------------------------------------------------------------- writes


@dataclass(frozen=True, slots=True)
class WriteParams:
    """``create`` and ``replace``: a server-side dry run, and the field manager."""

    dry_run: bool = False
    field_manager: str | None = None
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set(self, "query", _write_query(self.dry_run, self.field_manager))


def _write_query(dry_run: object, field_manager: object) -> Query:
    query = []
    if _bool(dry_run, "dry_run"):
        query.append(("dryRun", "All"))
    manager = _optional_str(field_manager, "field_manager")
    if manager is not None:
        query.append(("fieldManager", manager))
    return tuple(query)


@dataclass(frozen=True, slots=True)
class PatchParams:
    """``patch``: the patch flavour; for server-side apply (``PatchType.APPLY``) the field
    manager is required and ``force=True`` takes over fields other managers own."""

    patch_type: PatchType = PatchType.MERGE
    field_manager: str | None = None
    force: bool | None = None
    dry_run: bool = False
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patch_type = PatchType.coerce(self.patch_type)
        _set(self, "patch_type", patch_type)
        if patch_type is PatchType.APPLY and not self.field_manager:
            raise ValueError("field_manager is required for server-side apply (PatchType.APPLY)")
        if self.force is not None:
            _bool(self.force, "force")
            if patch_type is not PatchType.APPLY:
                raise ValueError("force only applies to server-side apply (PatchType.APPLY)")
        query = list(_write_query(self.dry_run, self.field_manager))
        if self.force is not None:
            query.append(("force", _true(self.force)))
        _set(self, "query", tuple(query))


_PRECONDITION_KEYS = {"uid": "uid", "resource_version": "resourceVersion",
                      "resourceVersion": "resourceVersion"}


@dataclass(frozen=True, slots=True)
class DeleteParams:
    """``delete`` and ``delete_collection``: DeleteOptions, sent as the request body.

    ``preconditions={"uid": ..., "resourceVersion": ...}`` make the server answer 409
    Conflict when the object is not that one any more.
    """

    grace_period_seconds: int | None = None
    propagation_policy: PropagationPolicy | str | None = None
    preconditions: Mapping[str, str] | None = None
    dry_run: bool = False
    body: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        options: dict[str, Any] = {}
        grace = _optional_int(self.grace_period_seconds, "grace_period_seconds", minimum=0)
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if self.propagation_policy is not None:
            options["propagationPolicy"] = _propagation(self.propagation_policy)
        if self.preconditions is not None:
            options["preconditions"] = _preconditions(self.preconditions)
        if _bool(self.dry_run, "dry_run"):
            options["dryRun"] = ["All"]
        body = (msgspec.json.encode({"kind": "DeleteOptions", "apiVersion": "v1", **options})
                if options else None)
        _set(self, "body", body)


def _propagation(policy: object) -> str:
    value = policy.value if isinstance(policy, PropagationPolicy) else policy
    allowed = {p.value for p in PropagationPolicy}
    if value not in allowed:
        raise ValueError(
            f"propagation_policy must be one of {', '.join(sorted(allowed))}, got {policy!r}"
        )
    return str(value)


def _preconditions(preconditions: object) -> dict[str, str]:
    if isinstance(preconditions, msgspec.Struct):
        preconditions = msgspec.to_builtins(preconditions)
    if not isinstance(preconditions, Mapping) or not preconditions:
        raise ValueError(
            "preconditions must be a non-empty mapping with 'uid' and/or 'resourceVersion'"
        )
    result = {}
    for key, value in preconditions.items():
        wire = _PRECONDITION_KEYS.get(key)
        if wire is None:
            raise ValueError(
                f"preconditions: unknown key {key!r} (use 'uid' and/or 'resourceVersion')"
            )
        result[wire] = _str(value, f"preconditions[{key!r}]")
    return result


# ----------------------------------------------------------------------------- logs, exec


@dataclass(frozen=True, slots=True)
class LogParams:
    """``logs`` and ``stream_logs``: which container, from when, how much."""

    container: str | None = None
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None
    timestamps: bool = False
    previous: bool = False
    limit_bytes: int | None = None
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        query: list[tuple[str, str]] = []
        if self.container is not None:
            query.append(("container", validate_name(self.container, "container")))
        if _bool(self.follow, "follow"):
            query.append(("follow", "true"))
        tail = _optional_int(self.tail_lines, "tail_lines", minimum=0)
        if tail is not None:
            query.append(("tailLines", str(tail)))
        if self.since_seconds is not None and self.since_time is not None:
            raise ValueError("give since_seconds or since_time, not both")
        since = _optional_int(self.since_seconds, "since_seconds", minimum=1)
        if since is not None:
            query.append(("sinceSeconds", str(since)))
        since_time = _optional_str(self.since_time, "since_time")
        if since_time is not None:
            query.append(("sinceTime", since_time))
        if _bool(self.timestamps, "timestamps"):
            query.append(("timestamps", "true"))
        if _bool(self.previous, "previous"):
            query.append(("previous", "true"))
        limit = _optional_int(self.limit_bytes, "limit_bytes", minimum=1)
        if limit is not None:
            query.append(("limitBytes", str(limit)))
        _set(self, "query", tuple(query))


@dataclass(frozen=True, slots=True)
class ExecParams:
    """``exec`` and ``attach``: the command (exec only), the container, which streams are
    attached, and whether a terminal is allocated (then stderr is merged into stdout)."""

    command: Sequence[str] | None = None
    container: str | None = None
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False
    query: Query = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        query: list[tuple[str, str]] = []
        if self.command is not None:
            if isinstance(self.command, (str, bytes)) or not isinstance(self.command, Sequence):
                raise ValueError(
                    f"command must be a list of str (e.g. ['sh', '-c', '...']), got {self.command!r}"
                )
            if not self.command:
                raise ValueError("command must not be empty")
            for index, part in enumerate(self.command):
                if not isinstance(part, str):
                    raise ValueError(f"command[{index}] must be a str, got {part!r}")
                query.append(("command", part))
            _set(self, "command", tuple(self.command))
        if self.container is not None:
            query.append(("container", validate_name(self.container, "container")))
        tty = _bool(self.tty, "tty")
        streams: list[tuple[str, bool]] = [
            ("stdin", _bool(self.stdin, "stdin")),
            ("stdout", _bool(self.stdout, "stdout")),
            ("stderr", _bool(self.stderr, "stderr") and not tty),
        ]
        if not any(on for _, on in streams):
            raise ValueError("at least one of stdin, stdout and stderr must be True")
        query.extend((name, _true(on)) for name, on in streams)
        query.append(("tty", _true(tty)))
        _set(self, "query", tuple(query))

