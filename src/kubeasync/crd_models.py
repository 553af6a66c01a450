"""Typed models for custom resources, written from their CustomResourceDefinition.

    python -m kubeasync models widgets-crd.yaml -o widgets.py

writes a module with a msgspec model per object schema of the CRD's ``openAPIV3Schema``
(the same conventions as :mod:`kubeasync.models`: snake_case attributes with the wire name
in ``msgspec.field(name=...)``, every field optional, ``metadata`` never ``None``, unset
fields left out when encoding), the list model, and the ResourceDescriptor, so that::

    from widgets import WIDGETS, Widget, widgets_api

    widgets = widgets_api(kube)       # kube.register(WIDGETS), typed: a
                                      # DeploymentApi[Widget, WidgetList] (scale, status)
    # resource_for, apply and kube.resource(Widget) now decode into Widget

Every served version is written: the storage version's classes take the plain names
(``Widget``, ``WidgetSpec``, ``WIDGETS``), the other versions' carry the version
(``WidgetV1beta1``, ``WIDGETS_V1BETA1``). Schema rules: ``x-kubernetes-int-or-string`` is
``IntOrString``; an object with ``x-kubernetes-preserve-unknown-fields`` or
``x-kubernetes-embedded-resource``, or without ``properties``, is a ``dict[str, Any]`` (a
Struct would drop the fields it does not name); ``additionalProperties`` is a ``dict``;
``format: date-time`` is ``Time`` (a string); a schema without a type is ``Any``.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CRDModelError", "generate_models"]

WIDTH = 100
INDENT = "    "
_IMPORTED = frozenset({
    "Any", "Client", "DeploymentApi", "IntOrString", "KubeModel", "ListMeta", "NullDefault",
    "ObjectMeta", "ResourceApi", "ResourceDescriptor", "ScaleApi", "StatusApi", "Time",
    "annotations", "msgspec",
})
# The same word splitting as tools/gen_models.py (apiVersion -> api_version, podIPs -> pod_ips).
_WORD_RE = re.compile(
    r"""
      [A-Z]{2,}s(?![a-z])       # plural acronym: IPs, URLs, CIDRs, WWNs
    | [A-Z]+(?![a-z])[0-9]*     # acronym (IP, FQDN, V1): up to the next capitalized word
    | [A-Z]?[a-z]+[0-9]*        # word
    | [0-9]+                    # digits
    """,
    re.VERBOSE,
)


class CRDModelError(ValueError):
    """The input is not a CustomResourceDefinition models can be written from."""


def snake_case(wire: str) -> str:
    """The attribute of a wire field name, as the generated models name them."""
    words: list[str] = []
    for part in re.split(r"[^0-9A-Za-z]+", wire):
        words.extend(m.group(0).lower() for m in _WORD_RE.finditer(part))
    name = "_".join(words) or "field"
    if name[0].isdigit():
        name = "f_" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def _camel(wire: str) -> str:
    words = [m.group(0) for part in re.split(r"[^0-9A-Za-z]+", wire)
             for m in _WORD_RE.finditer(part)]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Field"
    return name if not name[0].isdigit() else "F" + name


# --------------------------------------------------------------------------------------------
# what is written


@dataclass
class _Field:
    attr: str
    wire: str
    type: str
    description: str
    factory: str = ""  # never-None fields: ObjectMeta, ListMeta or list


@dataclass
class _Class:
    name: str
    description: str
    origin: str  # where in the CRD it comes from, for the docstring
    fields: list[_Field] = field(default_factory=list)


@dataclass
class _Version:
    crd: str
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: tuple[str, ...]
    short_names: tuple[str, ...]
    suffix: str  # "" for the storage version
    schema: Mapping[str, Any]
    classes: list[_Class] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


class _Names:
    """Class names handed out once per module."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_IMPORTED)

    def claim(self, wanted: str) -> str:
        name, n = wanted, 2
        while name in self.taken:
            name, n = f"{wanted}{n}", n + 1
        self.taken.add(name)
        return name


def _versions(crd: Mapping[str, Any], index: int) -> list[_Version]:
    if not isinstance(crd, Mapping) or crd.get("kind") != "CustomResourceDefinition":
        raise CRDModelError(f"document {index + 1} is not a CustomResourceDefinition")
    name = (crd.get("metadata") or {}).get("name") or f"document {index + 1}"
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
    if not all(isinstance(v, str) and v for v in (group, kind, plural)):
        raise CRDModelError(f"{name}: spec.group, spec.names.kind and spec.names.plural are needed")
    assert isinstance(group, str) and isinstance(kind, str) and isinstance(plural, str)
    if not kind.isidentifier():
        raise CRDModelError(f"{name}: the kind {kind!r} is not an identifier")
    versions = spec.get("versions") or []
    if not versions and spec.get("version"):  # apiextensions.k8s.io/v1beta1 with one version
        versions = [{"name": spec["version"], "served": True, "storage": True}]
    served = [v for v in versions if isinstance(v, Mapping) and v.get("served", True)]
    if not served:
        raise CRDModelError(f"{name}: no served version")
    storage = next((v for v in served if v.get("storage")), served[0])
    out = []
    for v in sorted(served, key=lambda v: v is not storage):
        version = v.get("name")
        if not isinstance(version, str) or not version:
            raise CRDModelError(f"{name}: a version without a name")
        schema = ((v.get("schema") or {}).get("openAPIV3Schema")
                  or (spec.get("validation") or {}).get("openAPIV3Schema") or {})
        subresources = v.get("subresources") or spec.get("subresources") or {}
        out.append(_Version(
            crd=name, group=group, version=version, kind=kind, plural=plural,
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            subresources=tuple(sorted(s for s in ("status", "scale") if s in subresources)),
            short_names=tuple(names.get("shortNames") or ()),
            suffix="" if v is storage else version[:1].upper() + version[1:],
            schema=schema if isinstance(schema, Mapping) else {},
        ))
    return out


def _type_of(
    schema: Mapping[str, Any], class_name: str, names: _Names, classes: list[_Class], origin: str
) -> str:
    """The annotation of a schema (without ``| None``), adding classes for its objects."""
    if not isinstance(schema, Mapping):
        return "Any"
    if schema.get("x-kubernetes-int-or-string"):
        return "IntOrString"
    kind = schema.get("type")
    if kind == "string":
        return "Time" if schema.get("format") == "date-time" else "str"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        items = schema.get("items")
        inner = _type_of(items, class_name, names, classes, origin + "[]") if items else "Any"
        return f"list[{inner}]"
    if kind == "object" or (kind is None and "properties" in schema):
        if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
                "x-kubernetes-embedded-resource") or not schema.get("properties"):
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping) and not schema.get("properties") and not schema.get(
                    "x-kubernetes-preserve-unknown-fields"):
                value = _type_of(extra, class_name + "Value", names, classes, origin + "{}")
                return f"dict[str, {value}]"
            return "dict[str, Any]"
        cls = _Class(names.claim(class_name), str(schema.get("description") or ""), origin)
        classes.append(cls)
        cls.fields = _fields(schema, cls.name, names, classes, origin)
        return cls.name
    return "Any"


def _fields(
    schema: Mapping[str, Any], class_name: str, names: _Names, classes: list[_Class],
    origin: str,
) -> list[_Field]:
    out: list[_Field] = []
    attrs: set[str] = set()
    for wire, prop in sorted((schema.get("properties") or {}).items()):
        attr = snake_case(wire)
        while attr in attrs:
            attr += "_"
        attrs.add(attr)
        prop = prop if isinstance(prop, Mapping) else {}
        type_ = _type_of(prop, class_name + _camel(wire), names, classes, f"{origin}.{wire}")
        description = str(prop.get("description") or "")
        if prop.get("enum"):
            allowed = ", ".join(repr(v) for v in prop["enum"])
            description = f"{description} One of {allowed}.".strip()
        out.append(_Field(attr, wire, type_, description))
    return sorted(out, key=lambda f: f.attr)


def _kind_classes(version: _Version, root_name: str, list_name: str, names: _Names) -> None:
    """The classes of one version: the nested ones, the kind's, its list's."""
    schema = version.schema
    root = _Class(root_name, str(schema.get("description") or ""), "openAPIV3Schema")
    nested: list[_Class] = []
    properties = dict(schema.get("properties") or {})
    for standard in ("apiVersion", "kind", "metadata"):
        properties.pop(standard, None)
    fields = _fields({"properties": properties}, root.name, names, nested, "openAPIV3Schema")
    fields += [
        _Field("api_version", "apiVersion", "str", "The API version of this object:"
               f" ``{version.api_version}``."),
        _Field("kind", "kind", "str", f"``{version.kind}``."),
        _Field("metadata", "metadata", "ObjectMeta", "Standard object's metadata.",
               factory="ObjectMeta"),
    ]
    root.fields = sorted(fields, key=lambda f: f.attr)
    listing = _Class(list_name, f"A list of {version.kind} ({version.api_version}).", "")
    listing.fields = [
        _Field("api_version", "apiVersion", "str", "``" + version.api_version + "``."),
        _Field("items", "items", f"list[{root.name}]", "The objects.", factory="list"),
        _Field("kind", "kind", "str", f"``{version.kind}List``."),
        _Field("metadata", "metadata", "ListMeta", "Standard list metadata.", factory="ListMeta"),
    ]
    version.classes = [*nested, root, listing]


# --------------------------------------------------------------------------------------------
# rendering


def _escape(text: str) -> str:
    text = text.replace("\u2018", "'").replace("\u2019", "'")
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _wrap(text: str, first: str, rest: str) -> list[str]:
    lines: list[str] = []
    for paragraph in _escape(text.strip()).split("\n\n"):
        words = " ".join(paragraph.split())
        lines += textwrap.wrap(words, WIDTH, initial_indent=first if not lines else rest,
                               subsequent_indent=rest, break_long_words=False,
                               break_on_hyphens=False) or [first if not lines else rest]
    return [line.rstrip() for line in lines]


def _render_class(cls: _Class, version: _Version) -> list[str]:
    what = cls.description or f"{cls.name} of {version.api_version} {version.kind}."
    body = _wrap(what, "", INDENT)
    if cls.origin:
        body += ["", f"{INDENT}From ``{cls.origin}`` of ``{version.crd}`` ({version.version})."]
    body += ["", f"{INDENT}Attributes:"]
    for f in cls.fields:
        label = f.attr if f.attr == f.wire else f"{f.attr} ({f.wire})"
        desc = f.description or "(no description)"
        if f.factory:
            empty = "an empty list" if f.factory == "list" else f"an empty ``{f.factory}``"
            desc += f" Never None: a missing or null value is {empty}."
        body += _wrap(desc, f"{INDENT * 2}{label}: ", INDENT * 3)
    out = [f"class {cls.name}(KubeModel, kw_only=True):", f'{INDENT}"""{body[0]}', *body[1:],
           f'{INDENT}"""', ""]
    for f in cls.fields:
        if f.factory:
            annotation, default = f"NullDefault[{f.type}]", f"default_factory={f.factory}"
        else:
            annotation, default = f"{f.type} | None", "default=None"
        if f.attr == f.wire and not f.factory:
            out.append(f"{INDENT}{f.attr}: {annotation} = None")
        else:
            name = "" if f.attr == f.wire else f', name="{f.wire}"'
            line = f"{INDENT}{f.attr}: {annotation} = msgspec.field({default}{name})"
            if len(line) > WIDTH:
                line = (f"{INDENT}{f.attr}: {annotation} = msgspec.field(\n"
                        f"{INDENT * 2}{default}{name}\n{INDENT})")
            out.append(line)
    never_none = [f for f in cls.fields if f.factory]
    if never_none:
        out += ["", f"{INDENT}def __post_init__(self) -> None:",
                f"{INDENT * 2}# Servers send null here at times (watch BOOKMARKs): it means the default."]
        for f in never_none:
            value = "[]" if f.factory == "list" else f"{f.factory}()"
            out += [f"{INDENT * 2}if self.{f.attr} is None:", f"{INDENT * 3}self.{f.attr} = {value}"]
    return out


def _constant(version: _Version) -> str:
    base = re.sub(r"[^0-9A-Za-z]+", "_", version.plural).upper()
    return f"{base}_{version.version.upper()}" if version.suffix else base


def _render_descriptor(version: _Version, root: str, listing: str) -> list[str]:
    def strings(values: Sequence[str]) -> str:
        inner = ", ".join(f'"{v}"' for v in values)
        return f"({inner},)" if len(values) == 1 else f"({inner})"

    name = _constant(version)
    return [
        f"{name}: ResourceDescriptor[{root}, {listing}] = ResourceDescriptor(",
        f'{INDENT}group="{version.group}",',
        f'{INDENT}version="{version.version}",',
        f'{INDENT}kind="{version.kind}",',
        f'{INDENT}plural="{version.plural}",',
        f"{INDENT}namespaced={version.namespaced},",
        f"{INDENT}subresources={strings(version.subresources)},",
        f"{INDENT}short_names={strings(version.short_names)},",
        f"{INDENT}model={root},",
        f"{INDENT}list_model={listing},",
        ")",
        f'"""``{version.api_version}`` {version.kind}: give it to ``kube.register`` or'
        ' ``kube.resource``."""',
    ]


_API_CLASSES = {
    (): "ResourceApi", ("status",): "StatusApi", ("scale",): "ScaleApi",
    ("scale", "status"): "DeploymentApi",
}


def _render_api_function(version: _Version, root: str, listing: str) -> list[str]:
    """``widgets_api(kube)``: the registered API, typed with the CRD's subresources."""
    cls = _API_CLASSES[version.subresources]
    name = _constant(version).lower() + "_api"
    what = ", ".join(version.subresources) or "no subresources"
    return [
        f"def {name}(kube: Client) -> {cls}[{root}, {listing}]:",
        f'{INDENT}"""``kube.register({_constant(version)})``: the API of {version.plural}'
        f" ({version.api_version}),",
        f'{INDENT}typed with the methods of its subresources ({what})."""',
        f"{INDENT}api = kube.register({_constant(version)})",
        f"{INDENT}assert isinstance(api, {cls})",
        f"{INDENT}return api",
    ]


def generate_models(crds: Iterable[Mapping[str, Any]], *, source: str = "") -> str:
    """The Python module of models and descriptors for ``crds`` (CustomResourceDefinitions
    as plain data, e.g. from :func:`~kubeasync.load_all_yaml` and ``to_dict``)."""
    versions: list[_Version] = []
    for index, crd in enumerate(crds):
        versions += _versions(crd, index)
    if not versions:
        raise CRDModelError("no CustomResourceDefinition in the input")
    seen: dict[str, str] = {}
    for v in versions:
        for key in (v.kind + v.suffix, _constant(v)):
            if seen.setdefault(key, v.crd) != v.crd:
                raise CRDModelError(
                    f"{seen[key]} and {v.crd} would both define {key}: write them to separate files"
                )
    names = _Names()
    # The kinds' and lists' own names first, so that no nested class takes one.
    own = [(names.claim(v.kind + v.suffix), names.claim(f"{v.kind}{v.suffix}List"))
           for v in versions]
    for v, (root, listing) in zip(versions, own, strict=True):
        _kind_classes(v, root, listing, names)
    used = "\n".join(f.type for v in versions for c in v.classes for f in c.fields)
    base = ["KubeModel", "NullDefault"] + [n for n in ("IntOrString", "Time")
                                           if re.search(rf"\b{n}\b", used)]
    crd_names = ", ".join(sorted({v.crd for v in versions}))
    by = f"`python -m kubeasync models{' ' + source if source else ''}`"
    out = [
        f"# Generated by {by}",
        f"# from the CustomResourceDefinition {crd_names}.",
        "# Do not edit by hand: change the CRD and run the command again.",
        "# ruff: noqa: I001  (kubeasync's imports are third-party or first-party, as you install it)",
        f'"""Typed models of {crd_names}: the custom resources\' models, their lists and their',
        'ResourceDescriptors (give one to ``kube.register`` to have ``resource_for`` and ``apply``',
        'use its models)."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if re.search(r"\bAny\b", used):
        out += ["from typing import Any", ""]
    classes = sorted({_API_CLASSES[v.subresources] for v in versions})
    out += ["import msgspec",
            f"from kubeasync import {', '.join(sorted(['Client', 'ResourceDescriptor', *classes]))}"]
    out += [f"from kubeasync.models._base import {', '.join(sorted(base))}"]
    out += ["from kubeasync.models.meta_v1 import ListMeta, ObjectMeta", ""]
    exported = sorted({c.name for v in versions for c in v.classes} | {_constant(v) for v in versions}
                      | {_constant(v).lower() + "_api" for v in versions})
    out += ["__all__ = [", *(f'{INDENT}"{n}",' for n in exported), "]"]
    for v in versions:
        for cls in v.classes:
            out += ["", "", *_render_class(cls, v)]
    for v in versions:
        root, listing = v.classes[-2].name, v.classes[-1].name
        out += ["", "", *_render_descriptor(v, root, listing)]
        out += ["", "", *_render_api_function(v, root, listing)]
    return "\n".join(out) + "\n"
