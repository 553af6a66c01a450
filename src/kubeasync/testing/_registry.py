"""Every verb of every resource, on the store, with no HTTP in sight.

The HTTP layer (``_server.py``) parses requests into calls here; the simulated cluster's
controllers (``_cluster.py``) call the same methods, so a kubelet's status write goes
through exactly the path a client's PUT to ``/status`` does.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import yaml

from ..core.descriptor import ResourceDescriptor
from ..models import format_time
from . import _status as st
from ._kinds import (
    Context,
    KindStrategy,
    finalizer_causes,
    name_causes,
    omit_empty,
    strategy_for,
)
from ._patch import (
    PatchError,
    Path,
    apply_config,
    changed_paths,
    flatten,
    format_path,
    json_patch,
    merge_patch,
    render_fields,
    root_type,
    strategic_merge,
)
from ._selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from ._store import Expired, Key, Obj, Store, clone

Descriptor = ResourceDescriptor[Any, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # as the API server's generateName suffixes
_META_ORDER = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
)
_SYSTEM_METADATA = (
    "name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# What a write to a built-in kind's /status may change besides .status.
_STATUS_WRITABLE_METADATA = ("labels", "annotations")
_POLICIES = ("Foreground", "Background", "Orphan")
_EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted"
    " between the time the first chunk was returned and now may show up in the list."
)


def now() -> datetime:
    return datetime.now(timezone.utc)


def rid(d: Descriptor) -> str:
    """The store's name for a resource."""
    return f"{d.group}/{d.plural}"


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def _invalid_policy(policy: Any) -> st.StatusError:
    return st.StatusError(
        422, "Invalid",
        f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value:'
        f' {st.go_value(policy)}: supported values: "Foreground", "Background", "Orphan"',
        {"group": "meta.k8s.io", "kind": "DeleteOptions", "causes": [
            st.not_supported("propagationPolicy", policy, _POLICIES).as_dict()]},
    )


def _ordered(obj: Obj) -> Obj:
    """kind, apiVersion, metadata (in the server's field order), then the rest."""
    metadata = meta(obj)
    ordered_meta = {k: metadata[k] for k in _META_ORDER if k in metadata}
    ordered_meta.update({k: v for k, v in metadata.items() if k not in ordered_meta})
    out: Obj = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
                "metadata": ordered_meta}
    out.update({k: v for k, v in obj.items() if k not in out})
    return out


def list_item(obj: Obj) -> Obj:
    """Lists carry their items without kind and apiVersion, as the real server does."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


@dataclass
class _Managed:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path] = field(default_factory=set)


Owners = dict[tuple[str, str], _Managed]


@dataclass(frozen=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


class Registry:
    def __init__(self, store: Store, resources: Iterable[Descriptor]) -> None:
        self.store = store
        self.resources = tuple(resources)
        self.namespaces = next(
            (d for d in self.resources if d.group == "" and d.kind == "Namespace"), None
        )
        self._owners: dict[tuple[str, Key], Owners] = {}
        self._ips = itertools.count(10)

    # ------------------------------------------------------------ helpers

    def _context(self, uid: str, d: Descriptor) -> Context:
        def allocate() -> str:
            n = next(self._ips)
            return f"10.96.{n // 250}.{n % 250 + 1}"

        def peers() -> list[Obj]:
            return list(self.store.objects(rid(d)).values())

        return Context(uid=uid, allocate_ip=allocate, now=lambda: format_time(now()),
                       peers=peers)

    @staticmethod
    def _key(d: Descriptor, namespace: str | None, name: str) -> Key:
        return (namespace or "" if d.namespaced else "", name)

    def get(self, d: Descriptor, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(rid(d), self._key(d, namespace, name))
        if obj is None:
            raise st.not_found(d, name)
        return obj

    def find(self, d: Descriptor, namespace: str | None, name: str) -> Obj | None:
        return self.store.get(rid(d), self._key(d, namespace, name))

    @staticmethod
    def _check_type(d: Descriptor, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise st.bad_request(
                f"the object provided is unrecognized (must be of type {d.kind})"
            )
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if api_version and api_version != d.api_version:
            raise st.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API"
                f" version ({d.api_version})"
            )
        if kind and kind != d.kind:
            raise st.bad_request(
                f'{kind} in version "{d.version}" cannot be handled as a {d.kind}: converting'
                f" ({d.version}.{kind}) to ({d.group or 'core'}.{d.kind}): unknown conversion"
            )
        obj["kind"], obj["apiVersion"] = d.kind, d.api_version
        metadata = obj.get("metadata")
        if metadata is None:
            obj["metadata"] = {}
        elif not isinstance(metadata, dict):
            raise st.bad_request("metadata must be an object")
        return obj

    def _check_name_and_namespace(
        self, d: Descriptor, obj: Obj, name: str, namespace: str | None
    ) -> None:
        """A write to a named URL: the body's name (if any) must be the URL's."""
        metadata = meta(obj)
        if metadata.get("name") and metadata["name"] != name:
            raise st.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the"
                f" URL ({name})"
            )
        metadata["name"] = name
        self._check_namespace(d, obj, namespace)

    @staticmethod
    def _check_namespace(d: Descriptor, obj: Obj, namespace: str | None) -> None:
        metadata = meta(obj)
        if not d.namespaced:
            metadata.pop("namespace", None)
            return
        if metadata.get("namespace") and metadata["namespace"] != namespace:
            raise st.bad_request(
                "the namespace of the provided object does not match the namespace sent on"
                " the request"
            )
        metadata["namespace"] = namespace

    def _require_namespace(self, d: Descriptor, namespace: str | None, name: str) -> None:
        if not d.namespaced or self.namespaces is None or namespace is None:
            return
        ns = self.store.get(rid(self.namespaces), ("", namespace))
        if ns is None:
            raise st.namespace_not_found(namespace)
        if meta(ns).get("deletionTimestamp"):
            raise st.namespace_terminating(d, name, namespace)

    # ------------------------------------------------------------ field ownership

    def _owned(
        self,
        d: Descriptor,
        key: Key,
        old: Obj | None,
        new: Obj,
        manager: str,
        operation: str,
        applied: set[Path] | None = None,
        taken: Iterable[Path] = (),
    ) -> Owners:
        """The ownership after a write: Update takes the fields it changed, Apply owns
        exactly what it applied (and, when forced, takes conflicting fields)."""
        owners = {k: _Managed(m.manager, m.operation, m.api_version, m.time, set(m.paths))
                  for k, m in self._owners.get((rid(d), key), {}).items()}
        type_name = root_type(d.api_version, d.kind)
        changed, removed = changed_paths(old, new, type_name)
        stamp = format_time(now())
        if operation == "Apply":
            lost = removed | set(taken)
            mine = applied or set()
        else:
            lost = changed | removed
            mine = changed
        for entry in owners.values():
            entry.paths -= lost
        own = owners.get((manager, operation))
        if own is None:
            own = owners[(manager, operation)] = _Managed(manager, operation, d.api_version, stamp)
        if operation == "Apply":
            own.paths = set(mine)
            own.time = stamp
        elif mine:
            own.paths |= mine
            own.time = stamp
        return {k: m for k, m in owners.items() if m.paths}

    @staticmethod
    def _render_owners(owners: Owners) -> list[dict[str, Any]]:
        return [
            {
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": render_fields(m.paths),
            }
            for m in owners.values()
        ]

    def _set_owners(self, obj: Obj, owners: Owners) -> None:
        metadata = meta(obj)
        if owners:
            metadata["managedFields"] = self._render_owners(owners)
        else:
            metadata.pop("managedFields", None)

    # ------------------------------------------------------------ create

    def create(
        self,
        d: Descriptor,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = "unknown",
        operation: str = "Update",
    ) -> Obj:
        obj = self._check_type(d, body)
        self._check_namespace(d, obj, namespace)
        metadata = meta(obj)
        name = metadata.get("name")
        if not name and metadata.get("generateName"):
            name = self._generate_name(d, namespace, str(metadata["generateName"]))
            metadata["name"] = name
        self._require_namespace(d, namespace, name or "")
        strategy = strategy_for(d)
        if not name:
            raise st.invalid_object(
                d, "", [st.required("metadata.name", "name or generateName is required")]
            )
        if not isinstance(name, str):
            raise st.bad_request("metadata.name must be a string")
        uid = str(uuid.uuid4())
        for dropped in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "managedFields", "selfLink"):
            metadata.pop(dropped, None)
        applied: set[Path] | None = None
        if operation == "Apply":  # what the applier owns: its fields, not the defaults
            applied = set(flatten(obj, root_type(d.api_version, d.kind)))
            if "status" in d.subresources:
                applied = {p for p in applied if p[0] != "f:status"}
        if "status" in d.subresources:
            obj["status"] = clone(dict(strategy.initial_status))
        omit_empty(obj, strategy)
        strategy.prepare(obj, None, self._context(uid, d))
        causes = (name_causes(strategy.name_rule, name)
                  + finalizer_causes(obj, core=not d.group) + strategy.validate(obj))
        if causes:
            raise st.invalid_object(d, name, causes)
        key = self._key(d, namespace, name)
        if self.store.get(rid(d), key) is not None:
            raise st.already_exists(d, name)
        metadata["uid"] = uid
        metadata["resourceVersion"] = ""  # holds its place in the field order until commit
        metadata["creationTimestamp"] = format_time(now())
        if strategy.has_generation:
            metadata["generation"] = 1
        owners = self._owned(d, key, None, obj, manager, operation, applied=applied)
        self._set_owners(obj, owners)
        obj = _ordered(obj)
        if dry_run:
            del obj["metadata"]["resourceVersion"]
            return obj
        self.store.commit(rid(d), key, obj)
        self._owners[(rid(d), key)] = owners
        if strategy.after_create is not None:
            strategy.after_create(self, obj)
        return obj

    # ------------------------------------------------------------ kinds' follow-up writes

    def _served(self, group: str, kind: str) -> Descriptor | None:
        return next((d for d in self.resources if d.group == group and d.kind == kind), None)

    def create_object(self, group: str, kind: str, namespace: str | None,
                      body: Obj) -> Obj | None:
        """Create an object as a controller would; None if the kind is not served."""
        d = self._served(group, kind)
        if d is None:
            return None
        return self.create(d, namespace, body, manager="kube-controller-manager")

    def change_object(self, group: str, kind: str, namespace: str | None, name: str,
                      change: Callable[[Obj], None]) -> Obj | None:
        d = self._served(group, kind)
        if d is None:
            return None
        return self.mutate(d, namespace, name, change)

    def _generate_name(self, d: Descriptor, namespace: str | None, prefix: str) -> str:
        for _ in range(100):
            name = prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))
            if self.store.get(rid(d), self._key(d, namespace, name)) is None:
                return name
        raise st.already_exists(d, prefix)

    # ------------------------------------------------------------ update

    def replace(
        self,
        d: Descriptor,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str = "unknown",
    ) -> Obj:
        obj = self._check_type(d, body)
        metadata = meta(obj)
        self._check_name_and_namespace(d, obj, name, namespace)
        old = self.get(d, namespace, name)
        wanted = metadata.get("resourceVersion")
        if wanted and wanted != meta(old).get("resourceVersion"):
            raise st.conflict(d, name)
        return self._update(d, old, obj, subresource=subresource, dry_run=dry_run,
                            manager=manager, operation="Update")

    def mutate(
        self,
        d: Descriptor,
        namespace: str | None,
        name: str,
        change: Callable[[Obj], None],
        *,
        subresource: str | None = None,
        manager: str = "kube-controller-manager",
        binding: bool = False,
    ) -> Obj | None:
        """Read, change and write an object (for the fake's own controllers);
        None when it is gone. ``binding`` marks the scheduler's write of ``nodeName``,
        which (through pods/binding on a real server) leaves the generation alone."""
        old = self.find(d, namespace, name)
        if old is None:
            return None
        new = clone(old)
        change(new)
        return self._update(d, old, new, subresource=subresource, dry_run=False,
                            manager=manager, operation="Update", bump=not binding)

    def write(self, d: Descriptor, old: Obj, new: Obj, *, manager: str,
              dry_run: bool = False) -> Obj:
        """Write ``new`` over the stored ``old`` as an update of the main resource would
        (a subresource that changes part of the spec, such as ``scale``, ends here)."""
        return self._update(d, old, new, subresource=None, dry_run=dry_run, manager=manager,
                            operation="Update")

    def bind(self, d: Descriptor, namespace: str | None, name: str, node: str, *,
             manager: str = "kube-scheduler", dry_run: bool = False) -> Obj:
        """``pods/binding``: assign a pod to a node. As kube-apiserver's BindingREST, one
        write sets ``spec.nodeName`` and the ``PodScheduled`` condition, and leaves the
        generation alone."""
        pod = self.get(d, namespace, name)
        where = f'Operation cannot be fulfilled on {d.plural}/binding "{name}"'
        details = {"name": name, "kind": f"{d.plural}/binding"}
        if meta(pod).get("deletionTimestamp"):
            raise st.StatusError(409, "Conflict", f"{where}: pod {name} is being deleted,"
                                 " cannot be assigned to a host", details)
        assigned = (pod.get("spec") or {}).get("nodeName")
        if assigned:
            raise st.StatusError(409, "Conflict", f'{where}: pod {name} is already assigned'
                                 f' to node "{assigned}"', details)
        new = clone(pod)
        new.setdefault("spec", {})["nodeName"] = node
        conditions = [c for c in (new.setdefault("status", {}).get("conditions") or [])
                      if isinstance(c, dict) and c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": format_time(now())})
        new["status"]["conditions"] = conditions
        return self._update(d, pod, new, subresource=None, dry_run=dry_run, manager=manager,
                            operation="Update", bump=False, keep_status=True)

    def _update(
        self,
        d: Descriptor,
        old: Obj,
        new: Obj,
        *,
        subresource: str | None,
        dry_run: bool,
        manager: str,
        operation: str,
        applied: set[Path] | None = None,
        taken: Iterable[Path] = (),
        bump: bool = True,
        keep_status: bool = False,
    ) -> Obj:
        strategy = strategy_for(d)
        old_meta = meta(old)
        name = str(old_meta.get("name"))
        if subresource == "status":
            candidate = clone(old)
            if new.get("status") is None:
                candidate.pop("status", None)
            else:
                candidate["status"] = new["status"]
            if strategy.status_writes_metadata:
                candidate_meta = meta(candidate)
                for meta_field in _STATUS_WRITABLE_METADATA:
                    value = meta(new).get(meta_field)
                    if value is None:
                        candidate_meta.pop(meta_field, None)
                    else:
                        candidate_meta[meta_field] = clone(value)
        elif subresource == "finalize":
            candidate = clone(old)
            candidate.setdefault("spec", {})["finalizers"] = list(
                (new.get("spec") or {}).get("finalizers") or []
            )
        else:
            candidate = new
            if "status" in d.subresources and not keep_status:
                if "status" in old:
                    candidate["status"] = clone(old["status"])
                else:
                    candidate.pop("status", None)
            new_meta = meta(candidate)
            candidate["metadata"] = new_meta
            for system in _SYSTEM_METADATA:
                if system in old_meta:
                    new_meta[system] = old_meta[system]
                else:
                    new_meta.pop(system, None)
            strategy.prepare(candidate, old, self._context(str(old_meta.get("uid")), d))
            causes = finalizer_causes(candidate, core=not d.group) + strategy.validate(candidate)
            if causes:
                raise st.invalid_object(d, name, causes)
            if bump and strategy.has_generation and _spec(candidate) != _spec(old):
                new_meta["generation"] = int(old_meta.get("generation") or 0) + 1
        omit_empty(candidate, strategy)
        candidate_meta = meta(candidate)
        candidate_meta["resourceVersion"] = old_meta.get("resourceVersion")
        candidate_meta.pop("managedFields", None)
        key = self._key(d, old_meta.get("namespace"), name)
        owners = self._owned(d, key, old, candidate, manager, operation, applied, taken)
        self._set_owners(candidate, owners)
        candidate = _ordered(candidate)
        if _same(candidate, old):
            return old  # a no-op write: no new resourceVersion, no event
        if dry_run:
            return candidate
        # (A namespace's /finalize only records the change; the controller deletes after.)
        if subresource != "finalize" and self._finished_deleting(d, candidate, strategy):
            event = self.store.commit(rid(d), key, None)
            self._owners.pop((rid(d), key), None)
            candidate_meta = meta(candidate)
            candidate_meta["resourceVersion"] = str(event.rv)
            return candidate
        self.store.commit(rid(d), key, candidate)
        self._owners[(rid(d), key)] = owners
        return candidate

    @staticmethod
    def _finished_deleting(d: Descriptor, obj: Obj, strategy: KindStrategy) -> bool:
        metadata = meta(obj)
        return (
            bool(metadata.get("deletionTimestamp"))
            and not metadata.get("finalizers")
            and not strategy.deletion_holds(obj)
            and not metadata.get("deletionGracePeriodSeconds")
        )

    # ------------------------------------------------------------ patch

    def patch(
        self,
        d: Descriptor,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str = "unknown",
        force: bool = False,
        field_manager_given: bool = False,
    ) -> Obj:
        content_type = content_type.split(";")[0].strip().lower()
        if content_type == APPLY_PATCH:
            if not field_manager_given:
                raise st.StatusError(
                    422, "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value:'
                    " is required for apply patch",
                    {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                        st.required("fieldManager", "is required for apply patch").as_dict()
                    ]},
                )
            return self.apply(d, namespace, name, body, subresource=subresource,
                              dry_run=dry_run, manager=manager, force=force)
        if content_type not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
            raise st.unsupported_media_type()
        type_name = root_type(d.api_version, d.kind)
        if content_type == STRATEGIC_PATCH and type_name is None:
            raise st.unsupported_media_type()  # as for custom resources
        try:
            patch = json.loads(body or b"null")
        except ValueError as exc:
            raise st.bad_request(f"error decoding patch: {exc}") from None
        old = self.get(d, namespace, name)
        try:
            if content_type == JSON_PATCH:
                new = json_patch(old, patch)
            elif not isinstance(patch, dict):
                raise PatchError("a merge patch must be a JSON object")
            elif content_type == MERGE_PATCH:
                new = merge_patch(old, patch)
            else:
                new = strategic_merge(old, patch, type_name)
        except PatchError:
            raise st.StatusError(
                422, "Invalid", "the server rejected our request due to an error in our request",
                {},
            ) from None
        if not isinstance(new, dict):
            raise st.bad_request("the patched object is not a JSON object")
        new = clone(new)
        self._check_type(d, new)
        new_meta = meta(new)
        if new_meta.get("resourceVersion") != meta(old).get("resourceVersion"):
            raise st.conflict(d, name)
        if new_meta.get("name") != name:
            raise st.bad_request(
                f"the name of the object ({new_meta.get('name')}) does not match the name on"
                f" the URL ({name})"
            )
        return self._update(d, old, new, subresource=subresource, dry_run=dry_run,
                            manager=manager, operation="Update")

    def apply(
        self,
        d: Descriptor,
        namespace: str | None,
        name: str,
        body: bytes,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str,
        force: bool = False,
    ) -> Obj:
        config = _decode_apply(body)
        config = self._check_type(d, config)
        config_meta = meta(config)
        self._check_name_and_namespace(d, config, name, namespace)
        old = self.find(d, namespace, name)
        if old is None:
            if subresource is not None:
                raise st.not_found(d, name)
            return self.create(d, namespace, clone(config), dry_run=dry_run, manager=manager,
                               operation="Apply")
        type_name = root_type(d.api_version, d.kind)
        applied = flatten(config, type_name)
        if subresource == "status":
            applied = {p: v for p, v in applied.items() if p[0] == "f:status"}
        elif "status" in d.subresources:
            applied = {p: v for p, v in applied.items() if p[0] != "f:status"}
        live = flatten(old, type_name)
        key = self._key(d, namespace, name)
        owners = self._owners.get((rid(d), key), {})
        conflicts: list[tuple[str, Path]] = []
        for path, value in applied.items():
            if path in live and live[path] != value:
                conflicts += [
                    (m.manager, path) for (mgr, _op), m in owners.items()
                    if mgr != manager and path in m.paths
                ]
        if conflicts and not force:
            raise _apply_conflict(d, conflicts)
        wanted = config_meta.get("resourceVersion")
        if wanted and wanted != meta(old).get("resourceVersion"):
            raise st.conflict(d, name)
        previous = owners.get((manager, "Apply"))
        others: set[Path] = set()
        for (mgr, _op), m in owners.items():
            if mgr != manager:
                others |= m.paths
        remove = [p for p in (previous.paths if previous else set())
                  if p not in applied and p not in others]
        config_meta.pop("resourceVersion", None)
        new = apply_config(old, config, type_name, remove)
        return self._update(d, old, new, subresource=subresource, dry_run=dry_run,
                            manager=manager, operation="Apply", applied=set(applied),
                            taken=[p for _m, p in conflicts])

    # ------------------------------------------------------------ delete

    def delete(
        self,
        d: Descriptor,
        namespace: str | None,
        name: str,
        options: Mapping[str, Any],
        *,
        dry_run: bool = False,
    ) -> Obj:
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in _POLICIES:
            # As the REST handler: DeleteOptions are validated before the object is read.
            raise _invalid_policy(policy)
        old = self.get(d, namespace, name)
        old_meta = meta(old)
        strategy = strategy_for(d)
        if name in strategy.undeletable:
            raise st.StatusError(
                403, "Forbidden",
                f'{st.qualified(d)} "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": d.plural})
        preconditions = options.get("preconditions") or {}
        uid = preconditions.get("uid")
        if uid is not None and uid != old_meta.get("uid"):
            raise st.precondition_failed(
                d, name,
                f"the UID in the precondition ({uid}) does not match the UID in record"
                f" ({old_meta.get('uid')}). The object might have been deleted and then recreated",
            )
        version = preconditions.get("resourceVersion")
        if version is not None and version != old_meta.get("resourceVersion"):
            raise st.precondition_failed(
                d, name,
                f"the ResourceVersion in the precondition ({version}) does not match the"
                f" ResourceVersion in record ({old_meta.get('resourceVersion')}). The object"
                " might have been modified",
            )
        orphan = options.get("orphanDependents")
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        if policy is None:
            policy = strategy.default_propagation
        requested = options.get("gracePeriodSeconds")
        grace = strategy.grace_period(old, requested if isinstance(requested, int) else None)
        key = self._key(d, namespace, name)
        finalizers = list(old_meta.get("finalizers") or [])
        if old_meta.get("deletionTimestamp"):
            # Already terminating: only a shorter grace period can hurry it along.
            if finalizers or strategy.deletion_holds(old) or grace > 0:
                return old
            return self._remove(d, key, old, strategy, dry_run)
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if finalizers or strategy.deletion_holds(old) or grace > 0:
            new = clone(old)
            new_meta = meta(new)
            new_meta["deletionTimestamp"] = format_time(now() + timedelta(seconds=grace))
            new_meta["deletionGracePeriodSeconds"] = grace
            if finalizers:
                new_meta["finalizers"] = finalizers
            strategy.on_deletion_started(new)
            new = _ordered(new)
            if not dry_run:
                self.store.commit(rid(d), key, new)
            return new
        return self._remove(d, key, old, strategy, dry_run)

    def _remove(self, d: Descriptor, key: Key, old: Obj, strategy: KindStrategy,
                dry_run: bool) -> Obj:
        final = clone(old)
        final_meta = meta(final)
        if strategy.graceful:
            # A graceful kind records that it was deleted without waiting.
            final_meta.setdefault("deletionTimestamp", format_time(now()))
            final_meta.setdefault("deletionGracePeriodSeconds", 0)
        if not dry_run:
            event = self.store.commit(rid(d), key, None)
            self._owners.pop((rid(d), key), None)
            final_meta["resourceVersion"] = str(event.rv)
        final = _ordered(final)
        if strategy.returns_deleted_object:
            return final
        return st.success(d, key[1], str(final_meta.get("uid")))

    def delete_collection(
        self,
        d: Descriptor,
        namespace: str | None,
        options: ListOptions,
        delete_options: Mapping[str, Any],
        *,
        dry_run: bool = False,
    ) -> Obj:
        policy = delete_options.get("propagationPolicy")
        if policy is not None and policy not in _POLICIES:
            raise _invalid_policy(policy)
        match = self.matcher(d, namespace, options.label_selector, options.field_selector)
        deleted = []
        delete_options = {k: v for k, v in delete_options.items() if k != "preconditions"}
        for (ns, name), obj in self.store.sorted_items(rid(d), namespace if d.namespaced else None):
            if not match(obj):
                continue
            try:
                self.delete(d, ns or None, name, delete_options, dry_run=dry_run)
            except st.StatusError as error:
                if error.code == 404:
                    continue
                raise
            # As the real server: the items as they were listed, before their deletion.
            deleted.append(list_item(obj))
        return {
            "kind": d.list_kind,
            "apiVersion": d.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": deleted,
        }

    # ------------------------------------------------------------ list

    def matcher(
        self, d: Descriptor, namespace: str | None, label_selector: str, field_selector: str
    ) -> Callable[[Obj], bool]:
        strategy = strategy_for(d)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(
            field_selector, strategy.field_labels, strategy.field_label_error
        )
        scoped = namespace if d.namespaced else None

        def match(obj: Obj) -> bool:
            if scoped is not None and meta(obj).get("namespace") != scoped:
                return False
            return labels_match(labels, obj) and fields_match(fields, strategy.field_labels, obj)

        return match

    def list(self, d: Descriptor, namespace: str | None, options: ListOptions) -> Obj:
        match = self.matcher(d, namespace, options.label_selector, options.field_selector)
        across = d.namespaced and namespace is None
        start = ""
        if options.continue_:
            list_rv, start = _decode_continue(options.continue_)
            try:
                state = self.store.snapshot(rid(d), list_rv)
            except Expired:
                raise st.with_metadata(
                    st.expired(_EXPIRED_CONTINUE),
                    {"continue": _encode_continue(self.store.rv, start)},
                ) from None
        elif options.resource_version and options.resource_version_match == "Exact":
            list_rv = _parse_rv(options.resource_version)
            try:
                state = self.store.snapshot(rid(d), list_rv)
            except Expired as exc:
                raise st.expired(str(exc)) from None
        else:
            list_rv = self.store.rv
            state = self.store.objects(rid(d))

        def sort_key(key: Key) -> str:
            return f"{key[0]}/{key[1]}" if across else key[1]

        items = sorted(
            ((sort_key(k), obj) for k, obj in state.items() if match(obj)),
            key=lambda pair: pair[0],
        )
        if start:
            items = [pair for pair in items if pair[0] >= start]
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if options.limit and len(items) > options.limit:
            remaining = len(items) - options.limit
            items = items[: options.limit]
            metadata["continue"] = _encode_continue(list_rv, items[-1][0] + "\x00")
            if not options.label_selector and not options.field_selector:
                metadata["remainingItemCount"] = remaining
        return {
            "kind": d.list_kind,
            "apiVersion": d.api_version,
            "metadata": metadata,
            "items": [list_item(obj) for _k, obj in items],
        }


def _spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _same(a: Obj, b: Obj) -> bool:
    def strip(obj: Obj) -> Obj:
        out = dict(obj)
        out["metadata"] = {k: v for k, v in meta(obj).items()
                           if k not in ("resourceVersion", "managedFields")}
        return out

    return strip(a) == strip(b)


def _apply_conflict(d: Descriptor, conflicts: list[tuple[str, Path]]) -> st.StatusError:
    # The shape of structured-merge-diff's conflict errors, as kube-apiserver sends them.
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = (f'Apply failed with 1 conflict: conflict with "{manager}" using'
                   f" {d.api_version}: {format_path(path)}")
    else:
        by_manager: dict[str, list[str]] = {}
        for manager, path in conflicts:
            by_manager.setdefault(manager, []).append(format_path(path))
        parts = [f'conflicts with "{manager}" using {d.api_version}:\n'
                 + "\n".join(f"- {p}" for p in paths) for manager, paths in by_manager.items()]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(parts)
    causes = [
        {"reason": "FieldManagerConflict",
         "message": f'conflict with "{manager}" using {d.api_version}',
         "field": format_path(path)}
        for manager, path in conflicts
    ]
    return st.StatusError(409, "Conflict", message, {"causes": causes})


def _decode_apply(body: bytes) -> Any:
    """An apply body: YAML, which JSON (what clients send) almost always is; JSON is parsed
    first, with the much faster JSON parser."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return yaml.safe_load(body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise st.bad_request(f"error decoding YAML: {exc}") from None


def _encode_continue(rv: int, start: str) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
            raise ValueError("continue key is not valid: incorrect encoded start resourceVersion"
                             " (version meta.k8s.io/v1)")
        rv, start = data["rv"], data["start"]
        if not isinstance(rv, int) or not isinstance(start, str) or rv <= 0:
            raise ValueError("continue key is not valid: incorrect encoded start resourceVersion")
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise st.bad_request(f"invalid continue token: {exc}") from None
    return rv, start


def _parse_rv(value: str) -> int:
    try:
        rv = int(value)
    except ValueError:
        rv = -1
    if rv < 0:
        raise st.bad_request(f'resourceVersion: Invalid value: "{value}": must be a number')
    return rv
