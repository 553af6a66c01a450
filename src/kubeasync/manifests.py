"""Manifests: Kubernetes objects to and from multi-document YAML, as kubectl reads and writes it.

    objs = kubeasync.load_all_yaml(Path("app.yaml"))   # typed for built-in kinds, dicts otherwise
    text = kubeasync.dump_all_yaml(objs)               # apiVersion, kind, metadata, spec, ...

Reading follows kubectl (whose YAML is YAML 1.1 through go-yaml): ``yes``/``no`` are booleans,
a value that looks like a timestamp stays a string (the models keep times as strings), a
key given twice in one mapping is an error rather than a silent overwrite, empty documents
are skipped, and a ``List`` (``kind: List`` with ``items``) gives its items. Every error
says which document and line it is about, and never quotes the file (a manifest may hold a
Secret).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, ClassVar, TypeAlias

import msgspec
import yaml

from .core.descriptor import ResourceDescriptor
from .core.errors import KubeError
from .models._base import to_dict

__all__ = ["KubeObject", "Manifest", "ManifestError", "dump_all_yaml", "load_all_yaml"]

KubeObject: TypeAlias = "msgspec.Struct | dict[str, Any]"
"""An object of a manifest: a model instance for kinds kubeasync has a model of, else a dict."""

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class ManifestError(KubeError, ValueError):
    """A manifest that cannot be read: not YAML, or a document that is not a Kubernetes
    object of its kind.

    Attributes:
        document: which document (1 for the first) is wrong.
        line: the line (1 for the first) of what is wrong, when known.
        source: the file's name, when it was read from a file.
    """

    def __init__(
        self, message: str, *, document: int, line: int | None, source: str | None
    ) -> None:
        super().__init__(message)
        self.document = document
        self.line = line
        self.source = source


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Safe YAML as kubectl reads it: timestamps stay strings, duplicate keys fail."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise _DuplicateKey(
                        "while reading a mapping", node.start_mark,
                        "a key is given twice in this mapping", key_node.start_mark,
                    )
                seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


class Manifest(list[KubeObject]):
    """The objects of a manifest (a ``list``), and where each one was in it:
    ``manifest.where(i)`` is ``(document, line)``, both counted from 1."""

    def __init__(self, source: str | None = None) -> None:
        super().__init__()
        self.source = source
        self._positions: list[tuple[int, int]] = []

    def _add(self, obj: KubeObject, document: int, line: int) -> None:
        self.append(obj)
        self._positions.append((document, line))

    def where(self, index: int) -> tuple[int, int] | None:
        """``(document, line)`` of the object at ``index``; ``None`` once the list was
        changed (its positions then no longer say where its objects came from)."""
        if len(self._positions) != len(self) or not -len(self) <= index < len(self):
            return None
        return self._positions[index]


def load_all_yaml(
    source: str | bytes | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    resources: Iterable[ResourceDescriptor[Any, Any]] = (),
) -> Manifest:
    """The objects of a multi-document YAML manifest, in order.

    Args:
        source: YAML text (a ``str`` or ``bytes``), a path (``pathlib.Path``: a ``str``
            is always text), or an open file.
        resources: descriptors of your own models (for instance the one
            ``python -m kubeasync models`` writes for a CRD): objects of their kinds
            decode into their models too.

    Objects of built-in kinds (by ``apiVersion`` and ``kind``) are model instances
    (``kubeasync.models.apps_v1.Deployment``), others are dicts. Raises
    :class:`ManifestError` (a ``ValueError``) naming the document and line on bad input:
    YAML that does not parse, a document that is not a mapping or has no ``apiVersion``
    and ``kind``, a field of the wrong type for its kind.
    """
    text, name = _read(source)
    models: dict[tuple[str, str, str], type[Any]] = {
        (d.group, d.version, d.kind): d.model for d in resources if d.typed
    }
    manifest = Manifest(name)
    loader = _Loader(text)
    document = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                document += 1
                node = loader.get_node()
                data = loader.construct_document(node)
            except Exception as exc:  # a tag that does not convert raises ValueError, ...
                problem: str | None
                problem, line = _yaml_problem(exc)
            else:
                problem = None
            if problem is not None:
                # Raised outside the except block: PyYAML's exception quotes the file.
                raise _error(name, max(document, 1), line, f"not valid YAML{problem}")
            if data is None:
                continue
            for obj, obj_node in _objects(data, node, name, document, text):
                manifest._add(_typed(obj, obj_node, models, name, document), document,
                              obj_node.start_mark.line + 1)
    finally:
        loader.dispose()
    return manifest


def dump_all_yaml(objs: Iterable[object] | msgspec.Struct | Mapping[str, Any]) -> str:
    """Objects (models or dicts; one or many) as multi-document YAML in kubectl's style:
    ``apiVersion``, ``kind``, ``metadata`` (``name`` and ``namespace`` first), ``spec``,
    then the other fields, ``status`` last; no ``null`` values; documents separated by
    ``---``; multi-line strings as literal blocks. A built-in model whose ``kind`` and
    ``api_version`` are unset gets its kind's. ``load_all_yaml`` reads it back."""
    if isinstance(objs, (msgspec.Struct, Mapping)):
        objs = [objs]
    documents = []
    for index, obj in enumerate(objs):
        if isinstance(obj, msgspec.Struct):
            data: Any = {**_type_meta(type(obj)), **to_dict(obj)}
        elif isinstance(obj, Mapping):
            data = dict(obj)
        else:
            raise ValueError(
                f"objs[{index}] must be a Kubernetes object (a model instance or a mapping),"
                f" not {type(obj).__name__}"
            )
        documents.append(_kubectl_order(_without_nulls(data)))
    dumped: str = yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
        allow_unicode=True, width=2**31 - 1,
    )
    return dumped


# --------------------------------------------------------------------------------------------
# reading


def _read(source: object) -> tuple[str, str | None]:
    if isinstance(source, str):
        return source, None
    if isinstance(source, bytes):
        return _text(source, None), None
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        with open(path, "rb") as file:
            return _text(file.read(), str(path)), str(path)
    read = getattr(source, "read", None)
    if callable(read):
        content = read()
        found = getattr(source, "name", None)
        name = found if isinstance(found, str) else None
        if isinstance(content, bytes):
            return _text(content, name), name
        if isinstance(content, str):
            return content, name
    raise ValueError(
        "source must be YAML text (str or bytes), a path (pathlib.Path) or an open file,"
        f" not {type(source).__name__}"
    )


def _text(content: bytes, name: str | None) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"{name}: " if name else ""
        raise ManifestError(f"{where}not UTF-8 text (at byte {exc.start})", document=1,
                            line=None, source=name) from None


def _yaml_problem(exc: Exception) -> tuple[str, int | None]:
    from .config.kubeconfig import _yaml_problem as describe  # the one YAML error wording

    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    return describe(exc), line


def _error(source: str | None, document: int, line: int | None, what: str) -> ManifestError:
    where = f"{source}: " if source else ""
    at = f" (line {line})" if line is not None and "at line" not in what else ""
    return ManifestError(f"{where}document {document}{at}: {what}", document=document,
                         line=line, source=source)


def _objects(
    data: Any, node: yaml.Node, source: str | None, document: int, text: str
) -> Iterator[tuple[dict[str, Any], yaml.Node]]:
    """The document's object, or the items of a List."""
    if not isinstance(data, dict):
        hint = ""
        if isinstance(data, str) and "\n" not in text.strip() and os.path.exists(text.strip()):
            hint = " (a str is YAML text: give a pathlib.Path to read a file)"
        raise _error(source, document, node.start_mark.line + 1,
                     f"a Kubernetes object must be a mapping, not {_kind_of(data)}{hint}")
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_nodes = _child(node, "items")
        for index, item in enumerate(items):
            item_node = item_nodes.value[index] if isinstance(item_nodes, yaml.SequenceNode) else node
            if not isinstance(item, dict):
                raise _error(source, document, item_node.start_mark.line + 1,
                             f"items[{index}] of the {kind} must be a mapping, not {_kind_of(item)}")
            yield item, item_node
        return
    yield data, node


def _typed(
    data: dict[str, Any], node: yaml.Node, models: Mapping[tuple[str, str, str], type[Any]],
    source: str | None, document: int,
) -> KubeObject:
    api_version, kind = data.get("apiVersion"), data.get("kind")
    line = node.start_mark.line + 1
    missing = [k for k, v in (("apiVersion", api_version), ("kind", kind)) if not v]
    if missing:
        raise _error(source, document, line, f"the object has no {' and no '.join(missing)}")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise _error(source, document, line, "apiVersion and kind must be strings")
    group, _, version = api_version.rpartition("/")
    model = models.get((group, version, kind)) or _builtin_model(group, version, kind)
    if model is None:
        return data
    try:
        typed: KubeObject = msgspec.json.decode(msgspec.json.encode(data), type=model)
    except msgspec.ValidationError as exc:
        at = _line_of(node, str(exc))
        name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
        what = f"{api_version} {kind}" + (f" {name}" if isinstance(name, str) else "")
        raise _error(source, document, at or line, f"{what}: {exc}") from None
    return typed


def _type_meta(model: type[Any]) -> dict[str, str]:
    """apiVersion and kind of a built-in model (a model built in code leaves them unset)."""
    from .kinds import descriptor_for_model

    row = descriptor_for_model(model)
    return {"apiVersion": row.api_version, "kind": row.kind} if row is not None else {}


def _builtin_model(group: str, version: str, kind: str) -> type[Any] | None:
    from .kinds import BY_GROUP_VERSION_KIND

    row = BY_GROUP_VERSION_KIND.get((group, version, kind))
    return row.model if row is not None else None


_PATH = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _line_of(node: yaml.Node, message: str) -> int | None:
    """The line of the field a msgspec error names (``- at `$.spec.replicas```)."""
    found = re.search(r"- at `\$([^`]*)`", message)
    if found is None:
        return None
    current = node
    for field, index in _PATH.findall(found.group(1)):
        if field:
            child = _child(current, field)
        elif index != "...":
            child = (current.value[int(index)]
                     if isinstance(current, yaml.SequenceNode) and int(index) < len(current.value)
                     else None)
        else:
            child = None  # a mapping's value: its key is not in the path
        if child is None:
            break
        current = child
    return int(current.start_mark.line) + 1


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node  # type: ignore[no-any-return]
    return None


def _kind_of(value: object) -> str:
    return {
        list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
    }.get(type(value), f"a {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# writing

_FIRST = ("apiVersion", "kind", "metadata", "spec")
_LAST = ("status",)
_METADATA_FIRST = ("name", "generateName", "namespace", "labels", "annotations")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_nulls(v) for v in value]
    if isinstance(value, msgspec.Struct):
        return _without_nulls(to_dict(value))
    return value


def _ordered(data: dict[str, Any], first: tuple[str, ...], last: tuple[str, ...]) -> dict[str, Any]:
    keys = [k for k in first if k in data]
    keys += [k for k in data if k not in first and k not in last]
    keys += [k for k in last if k in data]
    return {k: data[k] for k in keys}


def _kubectl_order(data: dict[str, Any]) -> dict[str, Any]:
    ordered = _ordered(data, _FIRST, _LAST)
    if isinstance(ordered.get("metadata"), dict):
        ordered["metadata"] = _ordered(ordered["metadata"], _METADATA_FIRST, ())
    return ordered


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """kubectl's style: block collections, sequences not indented under their key,
    multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)
