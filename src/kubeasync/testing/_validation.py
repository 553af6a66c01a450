"""Server-side field validation (``fieldValidation=Strict`` or ``Warn``): unknown fields.

kube-apiserver (1.25 and later) checks a create, update or patch body against the kind's
schema when asked: ``Strict`` answers 400 naming the unknown fields, ``Warn`` writes and
answers them in ``Warning`` headers. kubectl asks for it (``Strict``) whenever the server's
OpenAPI documents offer the parameter, which this server's do; kube-apiserver 1.20 knows
no such parameter, so without it nothing is checked. The schemas are the OpenAPI
definitions of the built-in kinds and the ``openAPIV3Schema`` of served CRDs
(``x-kubernetes-preserve-unknown-fields`` keeps a subtree free).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.descriptor import ResourceDescriptor
from . import _openapi as openapi
from . import _status as st

__all__ = ["check_fields"]

Descriptor = ResourceDescriptor[Any, Any]
_REF = "#/definitions/"


@functools.cache
def _roots() -> dict[tuple[str, str, str], str]:
    roots: dict[tuple[str, str, str], str] = {}
    for name, schema in openapi.v2_definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            roots.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")),
                             name)
    return roots


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        found = openapi.v2_definitions().get(ref[len(_REF):])
        return found if isinstance(found, Mapping) else {}
    return schema


def _unknown(schema: Mapping[str, Any], value: Any, path: str, out: list[str]) -> None:
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(properties, Mapping):
            for key, item in value.items():
                if key.startswith("$"):  # strategic merge patch directives
                    continue
                where = f"{path}.{key}" if path else key
                if key not in properties:
                    out.append(where)
                else:
                    _unknown(properties[key], item, where, out)
        elif isinstance(extra, Mapping):
            for key, item in value.items():
                _unknown(extra, item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            _unknown(schema["items"], item, f"{path}[{index}]", out)


def _schema_for(d: Descriptor, crds: Iterable[dict[str, Any]]) -> Mapping[str, Any] | None:
    name = _roots().get((d.group, d.version, d.kind))
    if name is not None:
        found: Mapping[str, Any] = openapi.v2_definitions()[name]
        return found
    schemas = openapi.crd_schemas(crds, _REF).get((d.group, d.version), {})
    return schemas.get(openapi.definition_name(d.group, d.version, d.kind))


def check_fields(d: Descriptor, body: Any, directive: str,
                 crds: Iterable[dict[str, Any]]) -> list[str]:
    """Check ``body`` as ``fieldValidation=directive`` asks; the warnings to answer
    (``Warn``), or raise the 400 of ``Strict``. ``Ignore`` or no directive checks nothing."""
    if directive not in ("Strict", "Warn") or not isinstance(body, Mapping):
        if directive not in ("", "Ignore", "Strict", "Warn"):
            raise st.bad_request(
                f'fieldValidation: Unsupported value: "{directive}": supported values:'
                ' "Ignore", "Warn", "Strict"')
        return []
    schema = _schema_for(d, crds)
    if schema is None:
        return []
    unknown: list[str] = []
    _unknown(schema, body, "", unknown)
    if not unknown:
        return []
    found = ", ".join(f'unknown field "{p}"' for p in unknown)
    if directive == "Strict":
        raise st.bad_request(
            f'{d.kind} in version "{d.version}" cannot be handled as a {d.kind}: strict'
            f" decoding error: {found}")
    return [f'unknown field "{p}"' for p in unknown]
