#!/usr/bin/env python3
"""Generate ``src/kubeasync/testing/_patch_schema.py``: the merge keys the embedded API server
needs for strategic merge patch and server-side apply.

Usage::

    python tools/gen_patch_schema.py            # rewrite the module in place
    python tools/gen_patch_schema.py --check    # exit 1 if the committed module is stale

Input: ``tools/openapi/k8s-v1.37.0-definitions.json`` (the same definitions the models are
generated from) and the kinds of ``kubeasync.kinds.BUILTIN_RESOURCES`` (every row of the
catalogue: what the embedded server serves). Only what the patch code uses is kept: for every type reachable from those
kinds, the fields that are (or lead to) lists with a patch strategy, merge key or list-map
keys. Lists absent from the
table are atomic (replaced whole), maps not in it merge key by key: the defaults of both
strategic merge and server-side apply.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFINITIONS = REPO / "tools" / "openapi" / "k8s-v1.37.0-definitions.json"
OUT = REPO / "src" / "kubeasync" / "testing" / "_patch_schema.py"
PREFIXES = ("io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg.")

sys.path.insert(0, str(REPO))


def short(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def build() -> str:
    from kubeasync.kinds import BUILTIN_RESOURCES

    defs: dict[str, Any] = json.loads(DEFINITIONS.read_text())["$defs"]
    by_gvk: dict[tuple[str, str], str] = {}
    for name, schema in defs.items():
        props = schema.get("properties") or {}
        kinds, versions = (props.get("kind") or {}).get("enum"), (
            props.get("apiVersion") or {}).get("enum")
        if kinds and versions and len(kinds) == len(versions) == 1:
            by_gvk.setdefault((versions[0], kinds[0]), name)
    roots = {}
    for d in BUILTIN_RESOURCES:
        root = by_gvk.get((d.api_version, d.kind))
        if root is None:
            raise SystemExit(f"no definition for {d.api_version} {d.kind}")
        roots[f"{d.api_version}/{d.kind}"] = root

    # field -> (shape, child type, strategy, merge key, list-map keys), before pruning
    raw: dict[str, dict[str, tuple[str, str | None, str, str, tuple[str, ...]]]] = {}
    pending = list(roots.values())
    while pending:
        name = pending.pop()
        if name in raw:
            continue
        fields: dict[str, tuple[str, str | None, str, str, tuple[str, ...]]] = {}
        for field, schema in sorted((defs[name].get("properties") or {}).items()):
            strategy = schema.get("x-kubernetes-patch-strategy", "")
            merge_key = schema.get("x-kubernetes-patch-merge-key", "")
            map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
            if "items" in schema:
                child = ref_name(schema["items"])
                shape = "set" if schema.get("x-kubernetes-list-type") == "set" else "list"
            elif isinstance(schema.get("additionalProperties"), dict):
                child, shape = ref_name(schema["additionalProperties"]), "map"
            else:
                child, shape = ref_name(schema), "object"
            if child is not None and not (defs[child].get("properties")):
                child = None  # a scalar in disguise (Quantity, Time, IntOrString)
            if child is not None:
                pending.append(child)
            fields[field] = (shape, child, strategy, merge_key, map_keys)
        raw[name] = fields

    # Keep a field when it carries list semantics itself or leads to a type that does.
    keep: dict[str, bool] = {}

    def interesting(name: str, stack: frozenset[str] = frozenset()) -> bool:
        if name in keep:
            return keep[name]
        if name in stack:
            return False
        fields = raw[name].values()
        result = any(strategy or merge_key or keys or shape == "set"
                     for shape, _child, strategy, merge_key, keys in fields) or any(
            child is not None and interesting(child, stack | {name})
            for _shape, child, _strategy, _key, _keys in fields)
        keep[name] = result
        return result

    table: dict[str, dict[str, tuple[str, str | None, str, str, tuple[str, ...]]]] = {}
    for name in sorted(raw):
        if not interesting(name):
            continue
        entries = {}
        for field, (shape, child, strategy, merge_key, map_keys) in raw[name].items():
            child_kept = child is not None and interesting(child)
            if strategy or merge_key or map_keys or shape == "set" or child_kept:
                entries[field] = (
                    shape,
                    short(child) if child_kept and child is not None else None,
                    strategy,
                    merge_key,
                    map_keys,
                )
        table[short(name)] = entries

    header = (
        "# Generated by tools/gen_patch_schema.py from tools/openapi/k8s-v1.37.0-definitions.json.\n"
        "# Do not edit by hand: change the generator and run `python tools/gen_patch_schema.py`.\n"
        '"""Merge keys and patch strategies of the served kinds (see tools/gen_patch_schema.py).\n\n'
        "``FIELDS[type][field] = (shape, child type, patch strategy, merge key, list-map keys)``,\n"
        'where shape is "object", "list", "set" or "map" (of ``child``).\n"""\n\n'
        "from __future__ import annotations\n\n"
        "Field = tuple[str, str | None, str, str, tuple[str, ...]]\n\n"
    )
    lines = [header, "ROOTS: dict[str, str] = {\n"]
    lines += [f"    {k!r}: {short(v)!r},\n" for k, v in sorted(roots.items())]
    lines.append("}\n\nFIELDS: dict[str, dict[str, Field]] = {\n")
    for type_name, entries in table.items():
        lines.append(f"    {type_name!r}: {{\n")
        lines += [f"        {f!r}: {entry!r},\n" for f, entry in entries.items()]
        lines.append("    },\n")
    lines.append("}\n")
    return "".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the module is stale")
    args = parser.parse_args()
    source = build()
    if args.check:
        if not OUT.exists() or OUT.read_text() != source:
            print(f"{OUT.relative_to(REPO)} is stale: run python tools/gen_patch_schema.py")
            return 1
        return 0
    OUT.write_text(source)
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
