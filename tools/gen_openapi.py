#!/usr/bin/env python3
"""Generate ``src/kubeasync/testing/openapi_definitions.json``: the schema definitions the
embedded API server answers in ``/openapi/v2`` and ``/openapi/v3`` (what ``kubectl explain``,
kubectl's validation and its strategic merge patches read).

Usage::

    python tools/gen_openapi.py            # rewrite the file
    python tools/gen_openapi.py --check    # exit 1 if the committed file is stale

Input: ``tools/openapi/k8s-v1.37.0-definitions.json`` (the JSON Schema 2020-12 definitions the
models are generated from). Each definition is written as kube-apiserver writes it in its
OpenAPI v2 document:

- ``"type": ["string", "null"]`` becomes ``"type": "string"`` (OpenAPI v2 has no null);
- references point into ``#/definitions/`` (the server rewrites them to
  ``#/components/schemas/`` for v3);
- ``IntOrString`` and ``Quantity`` (a ``oneOf`` of string and number) are strings of format
  ``int-or-string`` and ``quantity``, as the real documents have them;
- the ``enum`` of ``apiVersion`` and ``kind`` (the real documents have none: a kind is known by
  its ``x-kubernetes-group-version-kind``) and ``x-kubernetes-unions`` are left out.

Every definition is kept (the whole set is what 1.37 serves); the file is compact JSON, read
once per process when a client first asks for an OpenAPI document.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFINITIONS = REPO / "tools" / "openapi" / "k8s-v1.37.0-definitions.json"
OUT = REPO / "src" / "kubeasync" / "testing" / "openapi_definitions.json"
DROPPED = frozenset({"x-kubernetes-unions"})


def convert(schema: Any, *, top: bool = False) -> Any:
    if isinstance(schema, list):
        return [convert(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROPPED:
            continue
        if key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out[key] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "oneOf":
            types = {t for option in value for t in (
                option.get("type") if isinstance(option.get("type"), list)
                else [option.get("type")])}
            out["type"] = "string"
            out["format"] = "int-or-string" if "integer" in types else "quantity"
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _property(name, prop, top) for name, prop in value.items()}
        elif key in ("enum", "required", "x-kubernetes-list-map-keys", "default"):
            out[key] = [v for v in value if v is not None] if key == "enum" else value
        else:
            out[key] = convert(value)
    return out


def _property(name: str, schema: Any, top: bool) -> Any:
    converted = convert(schema)
    if top and name in ("apiVersion", "kind") and isinstance(converted, dict):
        converted.pop("enum", None)
    return converted


def build() -> str:
    defs: dict[str, Any] = json.loads(DEFINITIONS.read_text())["$defs"]
    converted = {name: convert(schema, top=True) for name, schema in sorted(defs.items())}
    return json.dumps(converted, separators=(",", ":"), sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = build()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(REPO)} is stale: run python tools/gen_openapi.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
