#!/usr/bin/env python3
"""Generate ``src/kubeasync/kinds/_catalogue.py`` (one ResourceDescriptor row per built-in
resource) and ``_apis.py`` (their typed APIs).

Usage::

    python tools/gen_catalogue.py            # rewrite kinds/_catalogue.py and kinds/_apis.py
    python tools/gen_catalogue.py --check    # exit 1 if either committed module is stale
    python tools/gen_catalogue.py --out FILE # write them elsewhere (_apis.py next to FILE)

Inputs (committed, see ``tools/catalogue/README.md`` for where each comes from):

- ``tools/catalogue/k8s-client-37.0.2-operations.json``: every REST operation of Kubernetes
  1.37 (method, path, query parameters, answer model), extracted from the official
  ``kubernetes==37.0.2`` client's wheel. A resource's plural, scope, verbs and subresources
  are read from its paths: ``GET /apis/apps/v1/namespaces/{namespace}/deployments`` is a
  namespaced ``list`` (and ``watch``: it takes ``watch``), ``.../deployments/{name}/scale``
  a subresource.
- ``tools/openapi/k8s-v1.37.0-definitions.json``: the definitions the models are generated
  from; a resource's kind is the definition its answers are, its model that definition's
  generated class (``tools/gen_models.py`` names them; this script uses the same code).
- ``tools/catalogue/discovery-v1.20.2.json``: a real kube-apiserver 1.20's discovery, the one
  source of kubectl's short names (``po``, ``deploy``). They are matched by group and plural,
  whatever the version: kinds added after 1.20 have none.

What is in the catalogue: every resource of every stable (``v1``, ``v2``) and beta
(``v1beta1``) group-version of 1.37 (alpha versions are left out: off by default and
short-lived; their models are generated all the same). Beta versions are listed as 1.37
serves them when enabled; most are off by default on a real server.

Rules, written once here:

- Preferred version: per group, the first of its versions in Kubernetes' priority order
  (stable before beta, then the higher major, then the higher minor: ``v2 > v1 > v1beta2``).
  Per resource (group and plural), the preferred row is the resource's version that comes
  first in that order: ``autoscaling/v2`` HorizontalPodAutoscalers, ``scheduling.k8s.io/v1beta1``
  PodGroups (the group's ``v1`` has none).
- ``attribute`` (the ``Client`` attribute), only on preferred rows: the kind in snake_case,
  its last word pluralised as the plural is (``StatefulSet``, ``statefulsets`` ->
  ``stateful_sets``). When two groups give the same attribute, the core group keeps it and
  the others are prefixed with their group's module name: core/v1 Event is ``events``,
  events.k8s.io/v1 Event ``events_events``.
- Constant names: the row's model module and its attribute-style name, upper case
  (``APPS_V1_DEPLOYMENTS``, ``CORE_V1_PODS``, ``EVENTS_V1_EVENTS``), unique by construction.
- Kinds that cannot be listed (``TokenReview``, ``Binding``) have ``dict`` as list model.
- ``PODS``, ``JOBS``, ``SERVICES``, ``PERSISTENT_VOLUME_CLAIMS``, ``NAMESPACES`` and
  ``CONFIG_MAPS`` (0.1's names) are the catalogue rows themselves: one descriptor per
  resource for the Client. ``SEED_RESOURCES`` is what the embedded API server serves for them
  (every other row it serves as it is): those six rows narrowed to the verbs the 1.20 server
  serves too (the embedded server is held to that server's answers; Services have a
  collection delete only from 1.23 on) and to the subresources it implements.

It also writes ``src/kubeasync/kinds/_apis.py``, the typed API of every row:

- The capabilities are read from ``src/kubeasync/api/capabilities/`` (each module's
  ``@capability(X)`` class and the subresource of its ``X = Capability("name", ...)``),
  without importing kubeasync: a row has the capabilities of its subresources that a
  module implements.
- One declared API class per distinct set of capabilities among the rows, registered with
  ``combination`` so that its runtime class is its static type: no capability is
  ``ResourceApi``, one is that capability's class (``StatusApi``), several are a class
  named after the first kind, alphabetically, that has exactly those (``PodApi``:
  eviction, log and status; ``DeploymentApi``: scale and status, also the API of
  ReplicaSets, StatefulSets and ReplicationControllers).
- ``KindAttributes``: every Client attribute typed with its row's API class and models,
  and ``resource()`` overloaded per model (``kube.resource(Deployment)`` is a
  ``DeploymentApi[Deployment, DeploymentList]``). The models are named under
  ``TYPE_CHECKING`` only: importing it imports no model module.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"
OPERATIONS = TOOLS / "catalogue" / "k8s-client-37.0.2-operations.json"
DEFINITIONS = TOOLS / "openapi" / "k8s-v1.37.0-definitions.json"
DISCOVERY = TOOLS / "catalogue" / "discovery-v1.20.2.json"
OUT = REPO / "src" / "kubeasync" / "kinds" / "_catalogue.py"
APIS_NAME = "_apis.py"  # written next to the catalogue
CAPABILITIES_DIR = REPO / "src" / "kubeasync" / "api" / "capabilities"

GENERATOR = "tools/gen_catalogue.py"
HEADER = f"# Generated by {GENERATOR} from "
WIDTH = 100
INDENT = "    "
MODELS_PACKAGE = "kubeasync.models"

VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

# The embedded server's seed: (group, plural) of the six resources it serves today.
SEED: tuple[tuple[str, str], ...] = (
    ("", "pods"),
    ("batch", "jobs"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("", "namespaces"),
    ("", "configmaps"),
)
# The subresources the embedded server implements for them (exec, attach and portforward by
# proxying to the pod's kubelet, as kube-apiserver does).
SEED_SUBRESOURCES = frozenset({"status", "log", "eviction", "finalize", "exec", "attach",
                               "portforward"})

# Names the Client has for itself: no kind may take them as its attribute.
CLIENT_NAMES = frozenset(
    {
        "apply", "close", "closed", "config", "discovery", "features", "informers",
        "namespace", "register", "resource", "resource_for", "session", "version",
    }
)

_PATH = re.compile(
    r"/api/(?P<core>v1)/(?P<core_rest>.+)|/apis/(?P<group>[^/{]+)/(?P<version>[^/{]+)/(?P<rest>.+)"
)
_VERSION = re.compile(r"v(?P<major>[0-9]+)(?:(?P<level>alpha|beta)(?P<minor>[0-9]+))?")


class CatalogueError(Exception):
    """The inputs cannot be turned into the catalogue as they are (fail loudly)."""


def _load_gen_models() -> ModuleType:
    """tools/gen_models.py, whose naming of modules and classes the model references use."""
    spec = importlib.util.spec_from_file_location("gen_models", TOOLS / "gen_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_models", module)  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


gen_models = _load_gen_models()


# --------------------------------------------------------------------------------------------
# versions


def version_priority(version: str) -> tuple[int, int, int]:
    """Sort key of Kubernetes' version priority (apimachinery's ``CompareKubeAwareVersionStrings``):
    stable before beta before alpha, then the higher major, then the higher minor."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise CatalogueError(f"not a Kubernetes API version: {version!r}")
    level = {None: 0, "beta": 1, "alpha": 2}[match.group("level")]
    return (level, -int(match.group("major")), -int(match.group("minor") or 0))


def is_included(version: str) -> bool:
    """Stable and beta versions are in the catalogue; alpha ones are not."""
    return version_priority(version)[0] < 2


# --------------------------------------------------------------------------------------------
# resources from paths


@dataclass
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = False
    verbs: set[str] = field(default_factory=set)
    subresources: set[str] = field(default_factory=set)
    # model names of the answers of the resource's own (not subresource) operations
    object_answers: list[str] = field(default_factory=list)
    create_answers: list[str] = field(default_factory=list)
    kind: str = ""
    model: str = ""
    list_model: str = ""
    short_names: tuple[str, ...] = ()
    attribute: str = ""
    name: str = ""  # the constant

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)


def resources_from_operations(
    operations: list[dict[str, Any]],
) -> dict[tuple[str, str, str], Resource]:
    """(group, version, plural) -> what its paths say about it."""
    found: dict[tuple[str, str, str], Resource] = {}
    for op in operations:
        match = _PATH.fullmatch(op["path"])
        if match is None:
            continue  # /version/, /logs/, /.well-known/...: not resources
        if match.group("core"):
            group, version, rest = "", match.group("core"), match.group("core_rest")
        else:
            group, version, rest = match.group("group"), match.group("version"), match.group("rest")
        segments = rest.rstrip("/").split("/")
        if not segments[0] or segments[0].startswith("{"):
            continue  # discovery documents, the generic custom-object paths
        namespaced = len(segments) >= 3 and segments[:2] == ["namespaces", "{namespace}"]
        if namespaced:
            segments = segments[2:]
        plural, *tail = segments
        resource = found.setdefault((group, version, plural), Resource(group, version, plural))
        resource.namespaced |= namespaced
        method = op["method"]
        answers = [model for model in op["responses"].values() if model not in ("object", "str")]
        if not tail:  # the collection
            if method == "GET":
                resource.verbs.add("list")
                if "watch" in op["query"]:
                    resource.verbs.add("watch")
            elif method == "POST":
                resource.verbs.add("create")
                resource.create_answers += answers
            elif method == "DELETE":
                resource.verbs.add("deletecollection")
            else:
                raise CatalogueError(f"unexpected {method} {op['path']}")
        elif len(tail) == 1 and tail[0] == "{name}":  # one object
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
            if verb is None:
                raise CatalogueError(f"unexpected {method} {op['path']}")
            resource.verbs.add(verb)
            if method != "DELETE":
                resource.object_answers += answers
        elif len(tail) >= 2 and tail[0] == "{name}":  # a subresource (proxy/{path} too)
            resource.subresources.add(tail[1])
        else:
            raise CatalogueError(f"cannot read the path {op['path']}")
    return found


# --------------------------------------------------------------------------------------------
# kinds and models


def kinds_by_group_version(defs: dict[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    """(group, version) -> kind -> definition, for the kinds of each group-version's own
    definitions (meta's DeleteOptions, which every group lists, is not a kind of apps/v1)."""
    modules = gen_models.module_names(defs)
    out: dict[tuple[str, str], dict[str, str]] = {}
    for defname, schema in sorted(defs.items()):
        for gvk in schema.get(gen_models.GVK, ()):
            group, version = gvk["group"], gvk["version"]
            own = gen_models.group_module_name(group, version)
            if modules.get(gen_models.package_of(defname)) == own:
                out.setdefault((group, version), {})[gvk["kind"]] = defname
    return out


def _answer_kind(answer: str, version: str, kinds: dict[str, str]) -> str | None:
    """The kind a client model name is (``V1Deployment``, ``CoreV1Event`` -> ``Event``)."""
    for kind in kinds:
        suffix = version[:1].upper() + version[1:] + kind
        prefix = answer[: -len(suffix)]
        if answer.endswith(suffix) and (not prefix or re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", prefix)):
            return kind
    return None


def assign_kinds(resources: list[Resource], defs: dict[str, Any]) -> None:
    kinds = kinds_by_group_version(defs)
    modules = gen_models.module_names(defs)
    names = gen_models.assign_class_names([d for d in defs if d not in gen_models.SPECIAL], modules)

    def reference(defname: str) -> str:
        return f"{MODELS_PACKAGE}.{modules[gen_models.package_of(defname)]}:{names[defname]}"

    for r in resources:
        available = kinds.get((r.group, r.version), {})
        answers = r.object_answers or r.create_answers
        found = {_answer_kind(a, r.version, available) for a in answers} - {None}
        if len(found) != 1:
            raise CatalogueError(
                f"{r.key}: cannot tell the kind from the answers {answers} ({found})"
            )
        (r.kind,) = found  # type: ignore[assignment]
        r.model = reference(available[r.kind])
        list_definition = available.get(r.kind + "List")
        if "list" in r.verbs:
            if list_definition is None:
                raise CatalogueError(f"{r.key}: {r.kind} can be listed but has no {r.kind}List")
            if "items" not in defs[list_definition].get("properties", {}):
                raise CatalogueError(f"{r.key}: {r.kind}List has no items")
            r.list_model = reference(list_definition)
        else:
            r.list_model = "builtins:dict"


# --------------------------------------------------------------------------------------------
# names


def attribute_name(kind: str, plural: str) -> str:
    """``StatefulSet``, ``statefulsets`` -> ``stateful_sets``: snake_case, pluralised as the plural."""
    words = gen_models.snake_case(kind).split("_")
    head = "".join(words[:-1])
    if not plural.startswith(head) or len(plural) <= len(head):
        raise CatalogueError(f"the plural {plural!r} does not start with the words of {kind!r}")
    name = "_".join([*words[:-1], plural[len(head) :]])
    if name.replace("_", "") != plural or not name.isidentifier():
        raise CatalogueError(f"cannot make an attribute from {kind!r} and {plural!r}: {name!r}")
    return name


def group_prefix(group: str) -> str:
    """``events.k8s.io`` -> ``events``: the group part of the models' module names."""
    return gen_models.group_module_name(group, "v0").removesuffix("_v0")


def assign_names(resources: list[Resource]) -> dict[str, str]:
    """Set each row's constant, and the attribute of preferred rows; return the preferred
    version of each group."""
    by_group: dict[str, set[str]] = {}
    for r in resources:
        by_group.setdefault(r.group, set()).add(r.version)
    preferred = {g: min(versions, key=version_priority) for g, versions in sorted(by_group.items())}
    wanted: dict[str, list[Resource]] = {}
    chosen: dict[tuple[str, str], Resource] = {}
    for r in sorted(resources, key=lambda r: version_priority(r.version)):
        r.name = f"{gen_models.group_module_name(r.group, r.version)}_{attribute_name(r.kind, r.plural)}".upper()
        if (r.group, r.plural) not in chosen:
            chosen[(r.group, r.plural)] = r
            wanted.setdefault(attribute_name(r.kind, r.plural), []).append(r)
    for attribute, rows in sorted(wanted.items()):
        core = [r for r in rows if r.group == ""]
        for r in rows:
            if len(rows) == 1 or r in core:
                r.attribute = attribute
            else:
                r.attribute = f"{group_prefix(r.group)}_{attribute}"
    taken: dict[str, Resource] = {}
    for r in resources:
        if not r.attribute:
            continue
        if r.attribute in CLIENT_NAMES or r.attribute in taken:
            raise CatalogueError(f"attribute {r.attribute!r} of {r.key} is taken")
        taken[r.attribute] = r
    constants = [r.name for r in resources]
    if len(set(constants)) != len(constants):
        raise CatalogueError("two rows have the same constant name")
    return preferred


def short_names(resources: list[Resource], discovery: dict[str, Any]) -> None:
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for document in discovery.values():
        if "resources" not in document:
            continue
        group = document["groupVersion"].rpartition("/")[0]
        for entry in document["resources"]:
            if "/" in entry["name"]:
                continue
            names = tuple(entry.get("shortNames") or ())
            previous = found.setdefault((group, entry["name"]), names)
            if previous != names:
                raise CatalogueError(f"{group} {entry['name']}: short names differ by version")
    for r in resources:
        r.short_names = found.get((r.group, r.plural), ())


def discovery_verbs(discovery: dict[str, Any]) -> dict[tuple[str, str, str], set[str]]:
    out: dict[tuple[str, str, str], set[str]] = {}
    for document in discovery.values():
        if "resources" in document:
            group, _, version = document["groupVersion"].rpartition("/")
            for entry in document["resources"]:
                out[(group, version, entry["name"])] = set(entry["verbs"])
    return out


# --------------------------------------------------------------------------------------------
# the catalogue


@dataclass
class Catalogue:
    rows: list[Resource]
    seed: list[Resource]
    preferred: dict[str, str]
    excluded: list[str]  # group-versions left out (alpha)

    def seed_rows(self) -> list[tuple[str, Resource]]:
        """0.1's names of the six seed resources, and their catalogue rows."""
        by_key = {(r.group, r.plural): r for r in self.rows if r.attribute}
        return [(r.attribute.upper(), by_key[(r.group, r.plural)]) for r in self.seed]


def build(
    operations: list[dict[str, Any]], defs: dict[str, Any], discovery: dict[str, Any]
) -> Catalogue:
    everything = resources_from_operations(operations)
    excluded = sorted({f"{g}/{v}" if g else v for (g, v, _) in everything if not is_included(v)})
    rows = [r for r in everything.values() if is_included(r.version)]
    assign_kinds(rows, defs)
    preferred = assign_names(rows)
    short_names(rows, discovery)
    rows.sort(key=lambda r: (r.group != "", r.group, version_priority(r.version), r.plural))
    kinds: dict[tuple[str, str, str], Resource] = {}
    for r in rows:
        previous = kinds.setdefault((r.group, r.version, r.kind), r)
        if previous is not r:
            raise CatalogueError(f"{r.kind} is both {previous.plural} and {r.plural}")
    served_by_1_20 = discovery_verbs(discovery)
    seed: list[Resource] = []
    for group, plural in SEED:
        row = next(r for r in rows if (r.group, r.plural) == (group, plural) and r.attribute)
        old = served_by_1_20.get(row.key)
        if old is None:
            raise CatalogueError(f"the seed resource {row.key} is not in the 1.20 discovery")
        seed.append(
            Resource(
                **{
                    **row.__dict__,
                    "verbs": row.verbs & old,
                    "subresources": row.subresources & SEED_SUBRESOURCES,
                    "name": f"_SEED_{row.attribute.upper()}",
                }
            )
        )
    return Catalogue(rows, seed, preferred, excluded)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def build_from_inputs() -> Catalogue:
    return build(
        load(OPERATIONS)["operations"], gen_models.load_definitions(DEFINITIONS), load(DISCOVERY)
    )


# --------------------------------------------------------------------------------------------
# rendering


def _tuple(values: list[str] | tuple[str, ...]) -> str:
    if not values:
        return "()"
    inner = ", ".join(f'"{v}"' for v in values)
    return f"({inner},)" if len(values) == 1 else f"({inner})"


def _module_and_class(reference: str) -> tuple[str, str]:
    module, _, name = reference.partition(":")
    return module.removeprefix(MODELS_PACKAGE + "."), name


def _annotation(reference: str) -> str:
    module, name = _module_and_class(reference)
    return "dict[str, Any]" if module == "builtins" else f"{module}.{name}"


def render_row(r: Resource) -> list[str]:
    verbs = [v for v in VERB_ORDER if v in r.verbs]
    unknown = r.verbs - set(VERB_ORDER)
    if unknown:
        raise CatalogueError(f"{r.key}: unknown verbs {unknown}")
    models = f"{_annotation(r.model)}, {_annotation(r.list_model)}"
    lines = [f"{r.name}: ResourceDescriptor[{models}] = ResourceDescriptor("]
    if len(lines[0]) > WIDTH:  # split the annotation, as ruff format does
        if len(INDENT + models) <= WIDTH:
            parameters = [INDENT + models]
        else:
            parameters = [
                f"{INDENT}{_annotation(r.model)},",
                f"{INDENT}{_annotation(r.list_model)},",
            ]
        lines = [f"{r.name}: ResourceDescriptor[", *parameters, "] = ResourceDescriptor("]
    inner = INDENT
    arguments = [
        f'group="{r.group}"',
        f'version="{r.version}"',
        f'kind="{r.kind}"',
        f'plural="{r.plural}"',
        f"namespaced={r.namespaced}",
        f"verbs={_tuple(verbs)}",
        f"subresources={_tuple(sorted(r.subresources))}",
        f"short_names={_tuple(r.short_names)}",
        f'model="{r.model}"',
        f'list_model="{r.list_model}"',
    ]
    if r.attribute:
        arguments.append(f'attribute="{r.attribute}"')
    for argument in arguments:
        line = f"{inner}{argument},"
        if len(line) > WIDTH:  # a long verbs tuple: one item a line, as ruff format does
            name, _, value = argument.partition("=")
            items = [
                f'{inner}{INDENT}"{v}",' for v in value.strip("()").replace('"', "").split(", ")
            ]
            lines += [f"{inner}{name}=(", *items, f"{inner}),"]
        else:
            lines.append(line)
    lines.append(")")
    return lines


MODULE_DOC = '''\
"""The catalogue of the built-in resources of Kubernetes {version}: one row per resource.

Generated by ``{generator}``, which says where its inputs come from and what the
rules are; do not edit by hand. Every row names its models as ``"module:Name"`` strings,
so importing this module imports no model module: a row's models are imported when it
is first used.

- ``BUILTIN_RESOURCES``: every row, {count} of them: every resource of the stable and beta
  group-versions.
- ``BY_GROUP_VERSION_KIND``, ``BY_GROUP_VERSION_PLURAL``: the rows by ``(group, version,
  kind)`` and ``(group, version, plural)``; the core group is ``""``.
- ``PREFERRED_VERSIONS``: each group's preferred version (stable before beta, higher first).
- ``BY_ATTRIBUTE``: the preferred row of each resource by its ``Client`` attribute.
- ``PODS``, ``JOBS``, ``SERVICES``, ``PERSISTENT_VOLUME_CLAIMS``, ``NAMESPACES``,
  ``CONFIG_MAPS``: 0.1's names of six rows, the catalogue rows themselves.
- ``SEED_RESOURCES``: what the embedded API server serves for those six resources (in place
  of their catalogue rows, which it serves for every other resource): their rows with the
  verbs kube-apiserver 1.20 serves too (it is held to that server's recorded answers) and
  the subresources the embedded server implements.
"""
'''


def render(catalogue: Catalogue, sources: list[str]) -> str:
    out = [f"{HEADER}{sources[0]},", *(f"#   {s}," for s in sources[1:-1]), f"#   {sources[-1]}."]
    out.append(f"# Do not edit by hand: change the generator and run `python {GENERATOR}`.")
    out += MODULE_DOC.format(
        version="1.37", generator=GENERATOR, count=len(catalogue.rows)
    ).splitlines()
    out += [
        "",
        "from __future__ import annotations",
        "",
        "from typing import TYPE_CHECKING, Any",
        "",
    ]
    out += ["from ..core.descriptor import ResourceDescriptor", "", "if TYPE_CHECKING:"]
    modules = sorted(
        {
            _module_and_class(ref)[0]
            for r in [*catalogue.rows, *catalogue.seed]
            for ref in (r.model, r.list_model)
        }
        - {"builtins"}
    )
    out += gen_models.render_import_from("..models", modules, INDENT)
    aliases = catalogue.seed_rows()
    names = [name for name, _ in aliases] + [r.name for r in catalogue.rows]
    exported = [
        *names,
        "BUILTIN_RESOURCES",
        "BY_ATTRIBUTE",
        "BY_GROUP_VERSION_KIND",
        "BY_GROUP_VERSION_PLURAL",
        "PREFERRED_VERSIONS",
        "SEED_RESOURCES",
    ]
    out += ["", "__all__ = ["]
    out += [f'{INDENT}"{n}",' for n in gen_models.sort_dunder_all(exported)]
    out += ["]", "", "# " + "-" * 92]
    out += textwrap.wrap(
        f"every resource; left out (alpha): {', '.join(catalogue.excluded)}",
        WIDTH,
        initial_indent="# ",
        subsequent_indent="#   ",
    )
    for r in catalogue.rows:
        out += ["", *render_row(r)]
    out += ["", "# " + "-" * 92, "# 0.1's names of six rows: the rows themselves", ""]
    for name, r in aliases:
        models = f"{_annotation(r.model)}, {_annotation(r.list_model)}"
        line = f"{name}: ResourceDescriptor[{models}] = {r.name}"
        if len(line) <= WIDTH:
            out.append(line)
        else:  # as ruff format splits it
            out += [f"{name}: ResourceDescriptor[", f"{INDENT}{models}", f"] = {r.name}"]
    out += ["", "# " + "-" * 92, "# the embedded server's seed: six rows narrowed to what it serves"]
    for r in catalogue.seed:
        out += ["", *render_row(r)]
    out += ["", "# " + "-" * 92, "# lookups", ""]
    out += ["BUILTIN_RESOURCES: tuple[ResourceDescriptor[Any, Any], ...] = ("]
    out += [f"{INDENT}{r.name}," for r in catalogue.rows]
    out += [
        ")",
        '"""Every row of the catalogue (the narrowed rows of SEED_RESOURCES are not in it)."""',
        "",
    ]
    out += ["SEED_RESOURCES: tuple[ResourceDescriptor[Any, Any], ...] = ("]
    out += [f"{INDENT}{r.name}," for r in catalogue.seed]
    out += [")"]
    out += [
        '"""What the embedded API server serves for the six seed resources, in place of their',
        "catalogue rows: narrowed to the verbs kube-apiserver 1.20 serves too and the",
        'subresources it implements (the Client uses the catalogue rows)."""',
        "",
        "BY_GROUP_VERSION_KIND: dict[tuple[str, str, str], ResourceDescriptor[Any, Any]] = {",
        f"{INDENT}(d.group, d.version, d.kind): d for d in BUILTIN_RESOURCES",
        "}",
        "BY_GROUP_VERSION_PLURAL: dict[tuple[str, str, str], ResourceDescriptor[Any, Any]] = {",
        f"{INDENT}(d.group, d.version, d.plural): d for d in BUILTIN_RESOURCES",
        "}",
        "BY_ATTRIBUTE: dict[str, ResourceDescriptor[Any, Any]] = {",
        f"{INDENT}d.attribute: d for d in BUILTIN_RESOURCES if d.attribute",
        "}",
        "PREFERRED_VERSIONS: dict[str, str] = {",
        *(f'{INDENT}"{g}": "{v}",' for g, v in catalogue.preferred.items()),
        "}",
        '"""Each group\'s preferred version; the core group is ``""``."""',
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# the typed APIs (_apis.py)


@dataclass(frozen=True)
class KnownCapability:
    subresource: str
    module: str  # under kubeasync.api.capabilities
    mixin: str


def read_capabilities(directory: Path = CAPABILITIES_DIR) -> dict[str, KnownCapability]:
    """The capability modules' mixins by subresource, read from their source (importing
    kubeasync would import the ``_apis.py`` this script writes)."""
    found: dict[str, KnownCapability] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        descriptions: dict[str, str] = {}
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "Capability"
            ):
                call = node.value
                first = call.args[0] if call.args else next(
                    (k.value for k in call.keywords if k.arg == "subresource"), None
                )
                if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                    raise CatalogueError(f"{path.name}: a Capability without a literal name")
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        descriptions[target.id] = first.value
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Name)
                    and decorator.func.id == "capability"
                ):
                    (argument,) = decorator.args
                    if not isinstance(argument, ast.Name) or argument.id not in descriptions:
                        raise CatalogueError(f"{path.name}: {node.name}'s capability is unknown")
                    name = descriptions[argument.id]
                    if name in found:
                        raise CatalogueError(f"the {name!r} capability is defined twice")
                    found[name] = KnownCapability(name, path.stem, node.name)
    return found


@dataclass
class ApiClass:
    name: str
    capabilities: tuple[str, ...]  # sorted subresource names
    rows: list[Resource]
    declared: bool  # a class of its own (several capabilities), else ResourceApi or a mixin


def api_classes(rows: list[Resource], known: dict[str, KnownCapability]) -> dict[frozenset[str], ApiClass]:
    """One API class per distinct set of capabilities among the rows."""
    groups: dict[frozenset[str], list[Resource]] = {}
    for r in rows:
        groups.setdefault(frozenset(r.subresources & set(known)), []).append(r)
    classes: dict[frozenset[str], ApiClass] = {}
    names: dict[str, frozenset[str]] = {}
    for capabilities, members in sorted(groups.items(), key=lambda kv: sorted(kv[0])):
        if not capabilities:
            name, declared = "ResourceApi", False
        elif len(capabilities) == 1:
            (only,) = capabilities
            name, declared = known[only].mixin, False
        else:
            name, declared = f"{min(r.kind for r in members)}Api", True
        if name in names or (declared and name in {k.mixin for k in known.values()}):
            raise CatalogueError(f"two API classes would be named {name}")
        names[name] = capabilities
        classes[capabilities] = ApiClass(name, tuple(sorted(capabilities)), members, declared)
    return classes


def _plural_words(kinds: list[str]) -> str:
    words = sorted(set(kinds))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _generic(prefix: str, cls: ApiClass, r: Resource, suffix: str, indent: str) -> list[str]:
    """``{prefix}Api[Model, ModelList]{suffix}``, split inside the brackets as ruff format
    splits a line that is too long."""
    arguments = [_annotation(r.model), _annotation(r.list_model)]
    line = f"{indent}{prefix}{cls.name}[{', '.join(arguments)}]{suffix}"
    if len(line) <= WIDTH:
        return [line]
    joined = f"{indent}{INDENT}{', '.join(arguments)}"
    if len(joined) <= WIDTH:
        return [f"{indent}{prefix}{cls.name}[", joined, f"{indent}]{suffix}"]
    return [f"{indent}{prefix}{cls.name}[", *(f"{indent}{INDENT}{a}," for a in arguments),
            f"{indent}]{suffix}"]


APIS_DOC = '''\
"""The typed API of every built-in resource: the declared API classes, the Client's typed
attributes and ``kube.resource(Model)``'s overloads.

Generated by ``{generator}`` from the catalogue and the capability modules of
``kubeasync.api.capabilities``; do not edit by hand.

- An API class has exactly the capabilities of its row's subresources, at run time and for
  mypy: each set of capabilities has one class, registered with ``combination`` (the
  runtime class of ``kube.deployments`` is the class mypy sees). No capability is
  ``ResourceApi``, one is that capability's class (``StatusApi``), several a class named
  after the first kind, alphabetically, that has exactly those:
{classes}
- ``KindAttributes``: the Client's attribute of every resource ({attributes} of them, made
  on first use), typed, and ``resource()`` overloaded per model, so that
  ``kube.resource(Deployment)`` is a ``DeploymentApi[Deployment, DeploymentList]``.
- ``ATTRIBUTES``: the row of every attribute; ``descriptor_for_model``: the row of a model.

The models are named under ``TYPE_CHECKING`` only: importing this module imports none.
"""
'''


def render_apis(catalogue: Catalogue, known: dict[str, KnownCapability], sources: list[str]) -> str:
    classes = api_classes(catalogue.rows, known)
    by_row = {id(r): cls for cls in classes.values() for r in cls.rows}
    models = [r.model for r in catalogue.rows]
    if len(set(models)) != len(models):
        raise CatalogueError("two rows have the same model: resource(Model) would be ambiguous")
    attributes = sorted((r for r in catalogue.rows if r.attribute), key=lambda r: r.attribute)

    out = [f"{HEADER}{sources[0]},", *(f"#   {s}," for s in sources[1:-1]), f"#   {sources[-1]}."]
    out.append(f"# Do not edit by hand: change the generator and run `python {GENERATOR}`.")
    listed = []
    for cls in sorted(classes.values(), key=lambda c: c.name):
        if cls.declared:
            what = ", ".join(cls.capabilities)
            listed.append(f"  ``{cls.name}`` ({what}): {_plural_words([r.kind for r in cls.rows])}.")
    listing = "\n".join(
        line for item in listed
        for line in textwrap.wrap(item, WIDTH, initial_indent="", subsequent_indent="    ")
    )
    out += APIS_DOC.format(
        generator=GENERATOR, classes=listing, attributes=len(attributes)
    ).splitlines()
    out += ["", "from __future__ import annotations", ""]
    out += ["from typing import TYPE_CHECKING, Any, TypeVar, overload", ""]
    used = sorted({c for cls in classes.values() for c in cls.capabilities})
    out += ["from ..api.capabilities._registry import combination"]
    for name in used:
        out.append(f"from ..api.capabilities.{known[name].module} import {known[name].mixin}")
    out += ["from ..api.resource import ResourceApi", "from ..core.descriptor import ResourceDescriptor"]
    constants = sorted(r.name for r in catalogue.rows)
    out += gen_models.render_import_from("._catalogue", ["BY_ATTRIBUTE", *constants])
    modules = sorted(
        {_module_and_class(ref)[0] for r in catalogue.rows for ref in (r.model, r.list_model)}
        - {"builtins"}
    )
    out += ["", "if TYPE_CHECKING:"]
    out += gen_models.render_import_from("..models", modules, INDENT)
    declared = sorted(cls.name for cls in classes.values() if cls.declared)
    exported = ["ATTRIBUTES", "KindAttributes", *declared, "descriptor_for_model"]
    out += ["", "__all__ = ["]
    out += [f'{INDENT}"{n}",' for n in gen_models.sort_dunder_all(exported)]
    out += ["]", "", 'T = TypeVar("T")', 'L = TypeVar("L")']

    out += ["", "# " + "-" * 92, "# the API classes of several capabilities"]
    for cls in sorted(classes.values(), key=lambda c: c.name):
        if not cls.declared:
            continue
        bases = ", ".join(f"{known[c].mixin}[T, L]" for c in cls.capabilities)
        doc = (f"The API of {_plural_words([r.plural for r in cls.rows])}: the core verbs and"
               f" {', '.join(cls.capabilities)}.")
        out += ["", "", "@combination", f"class {cls.name}({bases}):"]
        out += [f'{INDENT}"""' + line if i == 0 else f"{INDENT}{line}"
                for i, line in enumerate(textwrap.wrap(doc, WIDTH - len(INDENT) - 6))]
        out[-1] += '"""'

    out += ["", "", "# " + "-" * 92, "# lookups", ""]
    out += ["ATTRIBUTES: dict[str, ResourceDescriptor[Any, Any]] = BY_ATTRIBUTE"]
    out += ['"""Every Client attribute and its row (the preferred version of each resource)."""']
    out += ["", "_BY_MODEL: dict[str, ResourceDescriptor[Any, Any]] = {"]
    for r in sorted(catalogue.rows, key=lambda r: r.model):
        entry = f'{INDENT}"{r.model}": {r.name},'
        if len(entry) > WIDTH:
            out += [f'{INDENT}"{r.model}": (', f"{INDENT * 2}{r.name}", f"{INDENT}),"]
        else:
            out.append(entry)
    out += ["}", "", ""]
    out += [
        "def descriptor_for_model(model: type[Any]) -> ResourceDescriptor[Any, Any] | None:",
        f'{INDENT}"""The row whose objects decode into ``model``, if any (no model module is',
        f'{INDENT}imported to find it)."""',
        f'{INDENT}row = _BY_MODEL.get(f"{{model.__module__}}:{{model.__qualname__}}")',
        f"{INDENT}return row if row is not None and row.model is model else None",
    ]

    out += ["", "", "# " + "-" * 92, "# the Client's typed attributes and resource()", "", ""]
    out += ["class KindAttributes:"]
    out += [
        f'{INDENT}"""The typed attributes of the built-in resources (the Client makes each on',
        f"{INDENT}first use) and ``resource()``, typed per model.",
        f'{INDENT}"""',
        "",
    ]
    for r in attributes:
        out += _generic(f"{r.attribute}: ", by_row[id(r)], r, "", INDENT)
    out += ["", f"{INDENT}@overload"]
    out += [f"{INDENT}def resource(self, what: ResourceDescriptor[T, L]) -> ResourceApi[T, L]: ..."]
    for r in sorted(catalogue.rows, key=lambda r: r.name):
        cls = by_row[id(r)]
        model = _annotation(r.model)
        out += ["", f"{INDENT}@overload"]
        one_line = _generic(f"def resource(self, what: type[{model}]) -> ", cls, r, ": ...", INDENT)
        if len(one_line) == 1:
            out += one_line
        else:
            out += [f"{INDENT}def resource(", f"{INDENT * 2}self, what: type[{model}]"]
            out += _generic(") -> ", cls, r, ": ...", INDENT)
    out += ["", f"{INDENT}@overload"]
    out += [f"{INDENT}def resource(self, what: type[T]) -> ResourceApi[T, Any]: ..."]
    out += [
        "",
        f"{INDENT}def resource(",
        f"{INDENT * 2}self, what: ResourceDescriptor[Any, Any] | type[Any]",
        f"{INDENT}) -> ResourceApi[Any, Any]:",
    ]
    out += [
        f'{INDENT * 2}"""The API for any resource: a built-in row, your own typed descriptor, a CRD',
        f"{INDENT * 2}from :func:`~kubeasync.custom_resource` (plain dicts), a built-in model class",
        f"{INDENT * 2}(``kube.resource(Deployment)``, typed for mypy with the kind's capabilities) or",
        f"{INDENT * 2}a model registered with :meth:`~kubeasync.Client.register`. Its class has",
        f"{INDENT * 2}exactly the methods of the resource's capabilities (``get_status`` only with a",
        f'{INDENT * 2}``status`` subresource)."""',
        f"{INDENT * 2}return self._resource(what)",
        "",
        f"{INDENT}def _resource(",
        f"{INDENT * 2}self, what: ResourceDescriptor[Any, Any] | type[Any]",
        f"{INDENT}) -> ResourceApi[Any, Any]:  # the Client's",
        f"{INDENT * 2}raise NotImplementedError",
    ]
    return "\n".join(out) + "\n"


def generate() -> str:
    sources = [p.relative_to(REPO).as_posix() for p in (OPERATIONS, DEFINITIONS, DISCOVERY)]
    return render(build_from_inputs(), sources)


def generate_apis() -> str:
    sources = [
        OUT.relative_to(REPO).as_posix(),
        CAPABILITIES_DIR.relative_to(REPO).as_posix() + "/",
    ]
    return render_apis(build_from_inputs(), read_capabilities(), sources)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT,
                        help=f"the catalogue module to write ({APIS_NAME} goes next to it)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the output is stale")
    args = parser.parse_args(argv)
    try:
        texts = {args.out: generate(), args.out.with_name(APIS_NAME): generate_apis()}
    except CatalogueError as exc:
        print(f"gen_catalogue: error: {exc}", file=sys.stderr)
        return 2
    stale = False
    for out, text in texts.items():
        current = out.read_text(encoding="utf-8") if out.exists() else None
        if args.check:
            if current != text:
                print(f"gen_catalogue: {out} is out of date", file=sys.stderr)
                stale = True
            continue
        out.write_text(text, encoding="utf-8", newline="\n")
        print(f"gen_catalogue: wrote {out} ({text.count(chr(10))} lines)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
