"""``POST .../pods/{name}/eviction``, as kube-apiserver answers it (mirrors
:mod:`kubeasync.api.capabilities.eviction`).

The pod is deleted unless a PodDisruptionBudget covering it has no disruption left. Where
kube-apiserver reads the budget's status (kept by the disruption controller), this server
works it out at the moment of the eviction from the pods the budget selects: the healthy
ones (Ready, not being deleted) against ``minAvailable`` or ``maxUnavailable``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ..core.descriptor import ResourceDescriptor
from ..core.selectors import label_selector_from_api
from . import _status as st
from ._registry import ListOptions, Registry, meta

Descriptor = ResourceDescriptor[Any, Any]

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
_TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."


def _ready(pod: Mapping[str, Any]) -> bool:
    if meta(pod).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _count(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString of a budget: a number, or a percentage of ``total``."""
    if isinstance(value, str) and value.endswith("%"):
        share = total * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def _budgets(registry: Registry, resources: Iterable[Descriptor], namespace: str,
             pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    labels = meta(pod).get("labels") or {}
    found = []
    for d in resources:
        if d.group == "policy" and d.plural == "poddisruptionbudgets":
            for pdb in registry.list(d, namespace, ListOptions())["items"]:
                selector = label_selector_from_api((pdb.get("spec") or {}).get("selector"))
                if selector.matches(labels):
                    found.append(pdb)
    return found


def evict(registry: Registry, resources: Iterable[Descriptor], pods: Descriptor,
          namespace: str, name: str, body: bytes) -> dict[str, Any]:
    """Evict one pod; the answer is the Status kube-apiserver sends (201) or a StatusError."""
    try:
        eviction = msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError as exc:
        raise st.bad_request(f"the object provided is unrecognized (must be of type Eviction):"
                             f" {exc}") from None
    if not isinstance(eviction, dict) or eviction.get("kind") != "Eviction" \
            or eviction.get("apiVersion") not in EVICTION_VERSIONS:
        raise st.bad_request("the object provided is unrecognized (must be of type Eviction)")
    if (eviction.get("metadata") or {}).get("name") not in (None, name):
        raise st.bad_request("name in URL does not match name in Eviction object")
    pod = registry.get(pods, namespace, name)
    options = eviction.get("deleteOptions") or {}
    phase = (pod.get("status") or {}).get("phase")
    # As kube-apiserver: a pod that is not running (or already going) ignores its budgets.
    if phase not in ("Succeeded", "Failed", "Pending") and not meta(pod).get("deletionTimestamp"):
        budgets = _budgets(registry, resources, namespace, pod)
        if len(budgets) > 1:
            raise st.StatusError(500, "InternalError", "This pod has more than one"
                                 " PodDisruptionBudget, which the eviction subresource does not"
                                 " support.", {})
        if budgets:
            _check(registry, pods, namespace, budgets[0])
    registry.delete(pods, namespace, name, options,
                    dry_run="All" in (options.get("dryRun") or []))
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def _check(registry: Registry, pods: Descriptor, namespace: str, pdb: Mapping[str, Any]) -> None:
    spec = pdb.get("spec") or {}
    selector = label_selector_from_api(spec.get("selector"))
    covered = [p for p in registry.list(pods, namespace, ListOptions())["items"]
               if selector.matches(meta(p).get("labels"))]
    healthy = sum(1 for p in covered if _ready(p))
    if spec.get("minAvailable") is not None:
        desired = _count(spec["minAvailable"], len(covered), round_up=True)
    elif spec.get("maxUnavailable") is not None:
        desired = len(covered) - _count(spec["maxUnavailable"], len(covered), round_up=True)
    else:
        desired = len(covered)  # an empty budget allows no disruption at all
    if healthy - desired <= 0:
        raise st.StatusError(429, "TooManyRequests", _TOO_MANY, {"causes": [{
            "reason": "DisruptionBudget",
            "message": f"The disruption budget {meta(pdb).get('name')} needs {desired} healthy"
                       f" pods and has {healthy} currently",
        }]})
