"""The four PATCH flavours and server-side apply's field ownership, on plain JSON data.

- JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7386), as specified;
- strategic merge patch: like merge patch, but lists with a ``merge`` patch strategy merge
  item by item on their merge key (containers by ``name``), primitive ``merge`` lists
  (finalizers) take the union, and the directives ``$patch: replace|delete|merge``,
  ``$retainKeys``, ``$setElementOrder/<list>`` and ``$deleteFromPrimitiveList/<list>``
  are honoured. Merge keys come from the generated :mod:`._patch_schema`;
- server-side apply, simplified: ownership is tracked per field path (the same paths as
  ``managedFields``' FieldsV1), conflicts are reported when an applied value differs from
  the live one and another manager owns the field, and fields a manager stops applying are
  removed unless someone else owns them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._patch_schema import FIELDS, ROOTS, Field
from ._store import clone

Path = tuple[str, ...]

_DELETE = object()
_MISSING = object()

# Metadata the server owns: never part of field ownership.
_SYSTEM_METADATA = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
})


class PatchError(Exception):
    """The patch cannot be applied (a failed test, a missing path, a bad document)."""


def root_type(api_version: str, kind: str) -> str | None:
    return ROOTS.get(f"{api_version}/{kind}")


def _field(type_name: str | None, key: str) -> Field | None:
    if type_name is None:
        return None
    return FIELDS.get(type_name, {}).get(key)


# ------------------------------------------------------------------ JSON merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ------------------------------------------------------------------ JSON patch


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing key: /{'/'.join(tokens)}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing key: /{'/'.join(tokens)}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, allow_end=False)]
    else:
        raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = clone(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid operation {op!r}")
        kind = op["op"]
        tokens = _pointer(op.get("path"))
        if kind == "add":
            doc = _add(doc, tokens, clone(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, tokens)
        elif kind == "replace":
            _get(doc, tokens)
            doc = _add(_remove(doc, tokens), tokens, clone(op.get("value"))) if tokens else clone(
                op.get("value")
            )
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = clone(_get(doc, source))
            if kind == "move":
                doc = _remove(doc, source)
            doc = _add(doc, tokens, value)
        elif kind == "test":
            if _get(doc, tokens) != op.get("value"):
                raise PatchError(f"testing value /{'/'.join(tokens)} failed")
        else:
            raise PatchError(f"unexpected operation {kind!r}")
    return doc


# ------------------------------------------------------------------ strategic merge


def _strip(value: Any) -> Any:
    """Drop patch directives (and nulls, which mean "absent") from a value that is stored
    as is: a new list item, a replaced map."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def strategic_merge(original: Any, patch: Any, type_name: str | None) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {directive!r}")
    result = dict(original) if isinstance(original, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        info = _field(type_name, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if info is not None and info[0] == "map":
                merged: Any = _merge_map(result.get(key), value, info[1])
            else:
                merged = strategic_merge(result.get(key), value, info[1] if info else None)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and info is not None and "merge" in info[2].split(","):
            result[key] = _merge_list(result.get(key) or [], value, info)
        else:
            result[key] = _strip(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list) and isinstance(order, list):
            result[field] = _reorder(result[field], order, _field(type_name, field))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_map(original: Any, patch: dict[str, Any], child: str | None) -> Any:
    if patch.get("$patch") == "replace":
        return _strip(patch)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = strategic_merge(result.get(key), value, child)
        if merged is _DELETE:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_list(original: list[Any], patch: list[Any], info: Field) -> list[Any]:
    _shape, child, _strategy, merge_key, _keys = info
    replace = [i for i in patch if isinstance(i, dict) and i.get("$patch") == "replace"]
    if replace:
        return [_strip(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if not merge_key:
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"items of a list merged on {merge_key!r} must be objects")
        position = next(
            (i for i, old in enumerate(result)
             if isinstance(old, dict) and old.get(merge_key) == item.get(merge_key)),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            result.append(_strip(item))
        else:
            result[position] = strategic_merge(result[position], item, child)
    return result


def _reorder(items: list[Any], order: list[Any], info: Field | None) -> list[Any]:
    merge_key = info[3] if info else ""

    def identity(item: Any) -> Any:
        return item.get(merge_key) if merge_key and isinstance(item, dict) else item

    wanted = [identity(o) for o in order]
    ranked = {json.dumps(w, sort_keys=True): i for i, w in enumerate(wanted)}
    return sorted(
        items,
        key=lambda item: ranked.get(json.dumps(identity(item), sort_keys=True), len(ranked)),
    )


# ------------------------------------------------------------------ field paths


def _item_segment(item: Any, keys: tuple[str, ...]) -> str:
    if keys and isinstance(item, dict):
        ident = {k: item.get(k) for k in keys if k in item}
        return "k:" + json.dumps(ident, separators=(",", ":"), sort_keys=True)
    return "v:" + json.dumps(item, separators=(",", ":"), sort_keys=True)


def flatten(obj: Mapping[str, Any], type_name: str | None) -> dict[Path, Any]:
    """The owned leaves of an object: path (FieldsV1 segments) -> value."""
    top = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    metadata = top.pop("metadata", None)
    if isinstance(metadata, dict):
        owned = {k: v for k, v in metadata.items() if k not in _SYSTEM_METADATA}
        if owned:
            top = {"metadata": owned, **top}
    out: dict[Path, Any] = {}
    _flatten(top, type_name, (), out)
    return out


def _flatten(value: Any, type_name: str | None, prefix: Path, out: dict[Path, Any]) -> None:
    if not isinstance(value, dict) or not value:
        if prefix:
            out[prefix] = value
        return
    for key, child_value in value.items():
        info = _field(type_name, key)
        path = (*prefix, f"f:{key}")
        if info is not None and info[0] == "map" and isinstance(child_value, dict):
            if not child_value:
                out[path] = child_value
            for map_key, map_value in child_value.items():
                _flatten(map_value, info[1], (*path, f"f:{map_key}"), out)
        elif isinstance(child_value, list) and info is not None and (
            info[3] or info[4] or info[0] == "set"
        ):
            keys = info[4] or ((info[3],) if info[3] else ())
            if not child_value:
                out[path] = child_value
            for item in child_value:
                item_path = (*path, _item_segment(item, keys))
                if isinstance(item, dict) and keys:
                    before = len(out)
                    _flatten(item, info[1], item_path, out)
                    if len(out) == before:
                        out[item_path] = item
                else:
                    out[item_path] = item
        else:
            _flatten(child_value, info[1] if info else None, path, out)


def delete_path(obj: Any, path: Path) -> None:
    """Remove the field a path names, if it is still there."""
    node = obj
    for i, segment in enumerate(path):
        last = i == len(path) - 1
        kind, _, name = segment.partition(":")
        if kind == "f" and isinstance(node, dict):
            if name not in node:
                return
            if last:
                del node[name]
                return
            node = node[name]
        elif kind in ("k", "v") and isinstance(node, list):
            ident = json.loads(name)
            for index, item in enumerate(node):
                matches = (
                    all(item.get(k) == v for k, v in ident.items())
                    if kind == "k" and isinstance(item, dict)
                    else item == ident
                )
                if matches:
                    if last:
                        del node[index]
                        return
                    node = item
                    break
            else:
                return
        else:
            return


def _find(obj: Any, path: Path) -> Any:
    node = obj
    for segment in path:
        kind, _, name = segment.partition(":")
        if kind == "f" and isinstance(node, dict):
            node = node.get(name)
        elif kind == "k" and isinstance(node, list):
            ident = json.loads(name)
            node = next((i for i in node if isinstance(i, dict)
                         and all(i.get(k) == v for k, v in ident.items())), None)
        else:
            return None
        if node is None:
            return None
    return node


def render_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 trie (``{"f:spec": {"f:replicas": {}}}``) of a set of paths."""
    trie: dict[str, Any] = {}
    for path in sorted(paths):
        node = trie
        for segment in path:
            node = node.setdefault(segment, {})
    _mark_items(trie)
    return trie


def _mark_items(node: dict[str, Any]) -> None:
    for key, child in node.items():
        if key.startswith("k:") and child and "." not in child:
            child["."] = {}
        if key != ".":
            _mark_items(child)


def format_path(path: Path) -> str:
    """``.spec.containers[name="app"].image``: how apply conflicts name a field."""
    out = []
    for segment in path:
        kind, _, name = segment.partition(":")
        if kind == "f":
            out.append(f".{name}")
        elif kind == "k":
            ident = json.loads(name)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in ident.items()) + "]")
        else:
            out.append(f"[={name}]")
    return "".join(out)


def apply_config(live: Any, config: Mapping[str, Any], type_name: str | None,
                 remove: Iterable[Path]) -> Any:
    """Server-side apply's merge: drop ``remove``d fields, then merge ``config`` in."""
    result = clone(live) if live is not None else {}
    remove = list(remove)
    items: list[tuple[list[Any], dict[str, Any], list[str]]] = []
    for path in {p[: i + 1] for p in remove for i, s in enumerate(p) if s.startswith("k:")}:
        parent, element = _find(result, path[:-1]), _find(result, path)
        if isinstance(parent, list) and isinstance(element, dict):
            items.append((parent, element, list(json.loads(path[-1][2:]))))
    for path in remove:
        delete_path(result, path)
    # A list item that lost its key fields was the manager's own item: it goes whole.
    for parent, element, keys in items:
        if not all(k in element for k in keys):
            parent[:] = [e for e in parent if e is not element]
    merged = strategic_merge(result, _strip(dict(config)), type_name)
    assert isinstance(merged, dict)
    return merged


def changed_paths(old: Mapping[str, Any] | None, new: Mapping[str, Any],
                  type_name: str | None) -> tuple[set[Path], set[Path]]:
    """(paths set or changed by the write, paths it removed)."""
    before = flatten(old, type_name) if old is not None else {}
    after = flatten(new, type_name)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    return changed, set(before) - set(after)
