"""The workload controllers of the control plane: ReplicaSets, Deployments, StatefulSets.

They follow kube-controller-manager's algorithms (``pkg/controller/replicaset``,
``deployment`` and ``statefulset``, 1.20) closely enough that what a client observes is
what a real cluster shows: the same object names and labels, the same ownerReferences,
the same status fields and condition reasons, the same order of pod creation and
deletion, and rolling updates that keep within ``maxSurge`` and ``maxUnavailable``.

The controllers never rely on the server's defaulting: a field a real API server would
default (``replicas``, ``strategy``, ``revisionHistoryLimit``, ``podManagementPolicy``...)
is read with kube's default when it is missing.

Each controller is active only when the server serves what it writes (ReplicaSets need
Pods, Deployments need ReplicaSets, StatefulSets need Pods). Pods only become Running
and Ready where a kubelet runs them (the embedded server's simulated node, or a
:class:`~kubeasync.testing.VirtualKubelet`).

Known simplifications: the pod-template-hash is a stable FNV-32a hash of the template's
JSON, not of Go's in-memory struct as kube hashes it (so names differ from a real
cluster's for the same template, in the same format); a Deployment scaled or paused in
the middle of a rollout is not scaled proportionally across its active ReplicaSets.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..models import format_time, parse_time
from ._registry import meta, rid
from ._status import StatusError
from ._store import Key, Obj, clone

if TYPE_CHECKING:
    from ._cluster import ControlPlane

__all__ = ["REVISION_ANNOTATION", "Workloads", "pod_template_hash"]

MANAGER = "kube-controller-manager"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
POD_TEMPLATE_HASH = "pod-template-hash"
CONTROLLER_REVISION_HASH = "controller-revision-hash"
STATEFUL_POD_NAME = "statefulset.kubernetes.io/pod-name"
# Annotations of a Deployment that kube does not copy to its ReplicaSets.
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", REVISION_ANNOTATION,
               "deployment.kubernetes.io/revision-history", DESIRED_REPLICAS_ANNOTATION,
               MAX_REPLICAS_ANNOTATION)
_TERMINAL = ("Succeeded", "Failed")
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _timestamp() -> str:
    return format_time(_now())


# ------------------------------------------------------------------ helpers

def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def _safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: no vowels, no confusable characters."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def _hash(value: Any, collision_count: int | None) -> str:
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:  # as kube: the count as 8 little-endian bytes
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return _safe_encode(str(fnv32a(data)))


def pod_template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a Deployment's pod template (kube's encoding and
    collision handling, FNV-32a over the template's canonical JSON)."""
    return _hash(_without_hash(template), collision_count)


def _without_hash(template: Mapping[str, Any]) -> Obj:
    copy: Obj = clone(dict(template))
    labels = (copy.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            copy["metadata"].pop("labels")
    metadata = copy.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("creationTimestamp", None)  # Go writes null here: no difference
        if not metadata:
            copy.pop("metadata")
    return copy


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A metav1.LabelSelector; an empty or missing one matches nothing (as controllers
    treat it)."""
    if not selector:
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or a percentage of ``total``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            return 0
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _ready_since(pod: Obj) -> datetime | None:
    """When the pod became Ready, or None if it is not Ready."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            stamp = condition.get("lastTransitionTime")
            if isinstance(stamp, str):
                try:
                    return parse_time(stamp)
                except ValueError:
                    return _now()
            return _now()
    return None


def _seconds_since(stamp: Any) -> float:
    """Seconds since a condition's timestamp (0 for a missing or unreadable one)."""
    if not isinstance(stamp, str):
        return 0.0
    try:
        when = parse_time(stamp)
    except ValueError:
        return 0.0
    return (_now() - when).total_seconds() if when is not None else 0.0


def _available(pod: Obj, min_ready: int, now: datetime) -> bool:
    since = _ready_since(pod)
    if since is None:
        return False
    return min_ready <= 0 or (now - since).total_seconds() >= min_ready


def _running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and _ready_since(pod) is not None


def _active(pod: Obj) -> bool:
    return (not meta(pod).get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in _TERMINAL)


def _controller_uid(obj: Obj) -> str | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _owner_ref(owner: Obj) -> dict[str, Any]:
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
            "name": meta(owner)["name"], "uid": meta(owner)["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _set_status(status: Obj, field: str, value: int, omit_zero: bool = True) -> None:
    if value or not omit_zero:
        status[field] = value
    else:
        status.pop(field, None)


def _set_condition(status: Obj, condition: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: nothing when status and reason are unchanged; the
    transition time kept when only the reason changes; the condition goes last."""
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    current = next((c for c in conditions if c.get("type") == condition["type"]), None)
    if current is not None and current.get("status") == condition["status"] \
            and current.get("reason") == condition["reason"]:
        return
    if current is not None and current.get("status") == condition["status"]:
        condition["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [c for c in conditions if c.get("type") != condition["type"]] \
        + [condition]


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    now = _timestamp()
    return {"type": type_, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}


def _revision(obj: Obj) -> int:
    value = (meta(obj).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _pod_rank(pod: Obj) -> tuple[Any, ...]:
    """``ActivePodsWithRanks``: the pods to delete first sort first."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase_order = {"Pending": 0, "Unknown": 1, "Running": 2}
    since = _ready_since(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    return (
        bool(spec.get("nodeName")),  # unscheduled first
        phase_order.get(str(status.get("phase")), 0),  # pending, unknown, running
        since is not None,  # not ready first
        -(since.timestamp()) if since is not None else 0.0,  # ready for less time first
        -restarts,  # more restarts first
        "" if not meta(pod).get("creationTimestamp") else
        # newer first: invert the timestamp's order
        "".join(chr(0x10FFFF - ord(c)) for c in str(meta(pod)["creationTimestamp"])),
    )


# ------------------------------------------------------------------ the controllers

class Workloads:
    """The ReplicaSet, Deployment and StatefulSet controllers of one ControlPlane."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.store = plane.store
        self.registry = plane.registry
        self.pods = plane._find("", "Pod")
        self.pvcs = plane._find("", "PersistentVolumeClaim")
        self.replica_sets = plane._find("apps", "ReplicaSet") if self.pods else None
        self.deployments = plane._find("apps", "Deployment") if self.replica_sets else None
        self.stateful_sets = plane._find("apps", "StatefulSet") if self.pods else None
        self.revisions = plane._find("apps", "ControllerRevision")
        self._rid = {d: rid(d) for d in (self.pods, self.replica_sets, self.deployments,
                                         self.stateful_sets) if d is not None}
        self._syncs: dict[str, Callable[[Key], None]] = {}
        if self.replica_sets is not None:
            self._syncs[rid(self.replica_sets)] = self._sync_replica_set
        if self.deployments is not None:
            self._syncs[rid(self.deployments)] = self._sync_deployment
        if self.stateful_sets is not None:
            self._syncs[rid(self.stateful_sets)] = self._sync_stateful_set
        self._owner_kinds = {"ReplicaSet": self.replica_sets, "Deployment": self.deployments,
                             "StatefulSet": self.stateful_sets}
        self._timers: dict[tuple[str, Key], float] = {}

    # ------------------------------------------------------------ work

    def queue_for(self, resource: str, key: Key, obj: Obj) -> None:
        """An object changed: queue the controllers that care."""
        if not self._syncs:
            return
        if resource in self._syncs:
            self._queue(resource, key)
        child_of = {rid(self.pods) if self.pods else "": (self.replica_sets, self.stateful_sets),
                    rid(self.replica_sets) if self.replica_sets else "": (self.deployments,)}
        owners = child_of.get(resource)
        if not owners:
            return
        controller = next((r for r in meta(obj).get("ownerReferences") or []
                           if r.get("controller")), None)
        if controller is not None:
            owner = self._owner_kinds.get(str(controller.get("kind")))
            if owner is not None and str(controller.get("apiVersion", "")).startswith("apps/"):
                owner_key = (key[0], str(controller.get("name")))
                self._queue(rid(owner), owner_key)
                # A pod's change matters to its ReplicaSet's Deployment too (Recreate
                # waits until the old pods are gone, which the ReplicaSet's status
                # does not show).
                owner_obj = self.store.get(rid(owner), owner_key)
                if owner_obj is not None and resource != rid(owner):
                    self.queue_for(rid(owner), owner_key, owner_obj)
            return
        # An orphan: the controllers of its namespace may adopt it.
        for d in owners:
            if d is not None:
                for owner_key, _ in self.store.sorted_items(rid(d), key[0]):
                    self._queue(rid(d), owner_key)

    def _queue(self, resource: str, key: Key) -> None:
        self.plane._work[("workload", resource, key)] = None

    def _queue_later(self, resource: str, key: Key, delay: float) -> None:
        """Sync again after ``delay`` seconds (one timer per object: the earliest)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get((resource, key))
        if pending is not None and pending <= due:
            return
        self._timers[(resource, key)] = due

        async def later() -> None:
            await asyncio.sleep(delay)
            if self._timers.get((resource, key)) == due:
                del self._timers[(resource, key)]
            self._queue(resource, key)
            self.plane._schedule()

        self.plane._spawn(later())

    def sync(self, resource: str, key: Key) -> None:
        sync = self._syncs.get(resource)
        if sync is not None:
            sync(key)

    # ------------------------------------------------------------ shared

    def _write(self, resource: str, key: Key, change: Callable[[Obj], None],
               subresource: str | None = None) -> None:
        self.plane._mutate(resource, key, change, subresource=subresource, manager=MANAGER)

    def _children(self, d: Any, namespace: str, owner: Obj,
                  member: Callable[[Obj], bool] | None = None) -> list[Obj]:
        """The objects of ``d`` that ``owner`` controls, after adopting the orphans its
        selector matches (and ``member`` accepts) and releasing the ones it no longer
        matches (as kube's ControllerRefManager)."""
        uid = str(meta(owner).get("uid"))
        selector = (owner.get("spec") or {}).get("selector")
        owner_alive = not meta(owner).get("deletionTimestamp")
        children = []
        for key, child in self.store.sorted_items(rid(d), namespace):
            labels = meta(child).get("labels") or {}
            controller = _controller_uid(child)
            if controller == uid:
                if owner_alive and not selector_matches(selector, labels) \
                        and not meta(child).get("deletionTimestamp"):
                    self._write(rid(d), key, lambda o: _release(o, uid))
                    continue
                children.append(child)
            elif controller is None and owner_alive and selector_matches(selector, labels) \
                    and not meta(child).get("deletionTimestamp") \
                    and (member is None or member(child)):
                self._write(rid(d), key, functools.partial(_adopt, ref=_owner_ref(owner)))
                adopted = self.store.get(rid(d), key)
                if adopted is not None:
                    children.append(adopted)
        return children

    def _create(self, d: Any, namespace: str, body: Obj) -> StatusError | None:
        """Create an object as the controller; the error when the server refused it."""
        try:
            self.registry.create(d, namespace, body, manager=MANAGER)
        except StatusError as error:
            if error.code in (403, 404, 409):  # a namespace going away, a name taken
                return None
            return error
        return None

    def _delete(self, d: Any, obj: Obj, policy: str = "Background") -> None:
        self.plane._delete(rid(d), (str(meta(obj).get("namespace") or ""),
                                    str(meta(obj)["name"])), {"propagationPolicy": policy})

    # ------------------------------------------------------------ ReplicaSet

    def _sync_replica_set(self, key: Key) -> None:
        assert self.replica_sets is not None and self.pods is not None
        resource = rid(self.replica_sets)
        rs = self.store.get(resource, key)
        if rs is None:
            return
        spec = rs.get("spec") or {}
        pods = [p for p in self._children(self.pods, key[0], rs) if _active(p)]
        failure: StatusError | None = None
        if not meta(rs).get("deletionTimestamp"):
            wanted = _int(spec.get("replicas"), 1)
            if len(pods) < wanted:
                for _ in range(wanted - len(pods)):
                    failure = self._create(self.pods, key[0], _pod_from_template(rs)) or failure
                    if failure is not None:
                        break
            elif len(pods) > wanted:
                for pod in sorted(pods, key=_pod_rank)[:len(pods) - wanted]:
                    self._delete(self.pods, pod)
            pods = [p for p in self._children(self.pods, key[0], rs) if _active(p)]
        min_ready = _int(spec.get("minReadySeconds"), 0)
        now = _now()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in pods if _ready_since(p) is not None]
        available = [p for p in ready if _available(p, min_ready, now)]
        fully_labeled = [p for p in pods if all((meta(p).get("labels") or {}).get(k) == v
                                                 for k, v in template_labels.items())]
        waiting = [since for p in ready if not _available(p, min_ready, now)
                   and (since := _ready_since(p)) is not None]
        if waiting:  # look again when the first of them has been Ready long enough
            first = min(min_ready - (now - since).total_seconds() for since in waiting)
            self._queue_later(resource, key, max(0.0, first) + 0.01)
        generation = meta(rs).get("generation")

        def write(o: Obj) -> None:
            status = o.setdefault("status", {})
            _set_status(status, "replicas", len(pods), omit_zero=False)
            _set_status(status, "fullyLabeledReplicas", len(fully_labeled))
            _set_status(status, "readyReplicas", len(ready))
            _set_status(status, "availableReplicas", len(available))
            if isinstance(generation, int):
                status["observedGeneration"] = generation
            conditions = status.get("conditions") or []
            previous: Obj = next((c for c in conditions if c.get("type") == "ReplicaFailure"),
                                 {})
            others = [c for c in conditions if c.get("type") != "ReplicaFailure"]
            if failure is not None:
                others.append({"type": "ReplicaFailure", "status": "True",
                               "lastTransitionTime": previous.get("lastTransitionTime")
                               or _timestamp(), "reason": "FailedCreate",
                               "message": failure.message})
            if others:
                status["conditions"] = others
            else:
                status.pop("conditions", None)

        self._write(resource, key, write, "status")

    # ------------------------------------------------------------ Deployment

    def _sync_deployment(self, key: Key) -> None:
        assert self.deployments is not None and self.replica_sets is not None
        resource = rid(self.deployments)
        deployment = self.store.get(resource, key)
        if deployment is None:
            return
        spec = deployment.get("spec") or {}
        if not (spec.get("selector") or {}):
            return  # kube rejects such a Deployment; nothing to select
        replica_sets = self._children(self.replica_sets, key[0], deployment)
        if meta(deployment).get("deletionTimestamp"):
            self._sync_deployment_status(key, replica_sets, None)
            return
        template = spec.get("template") or {}
        new_rs = next((rs for rs in replica_sets
                       if _without_hash((rs.get("spec") or {}).get("template") or {})
                       == _without_hash(template)), None)
        old = [rs for rs in replica_sets if rs is not new_rs]
        replicas = _int(spec.get("replicas"), 1)
        paused = bool(spec.get("paused"))
        rolling = _strategy(deployment) == "RollingUpdate"
        if paused:
            if new_rs is not None and not old:
                self._scale(new_rs, replicas, deployment)
            self._cleanup(deployment, old)
            self._sync_deployment_status(key, self._current_sets(key[0], deployment), new_rs)
            return
        if not rolling:  # Recreate: every old pod gone before the new ones
            for rs in old:
                self._scale(rs, 0, deployment)
            if any(self._old_pods_running(rs) for rs in old):
                self._sync_deployment_status(key, self._current_sets(key[0], deployment), new_rs)
                return
        if new_rs is None:
            new_rs = self._create_replica_set(deployment, old, replicas if not rolling else None)
            if new_rs is None:
                return
        else:
            self._record_revision(deployment, new_rs, old)
        if rolling:
            self._roll(deployment, new_rs, old)
        else:
            self._scale(new_rs, replicas, deployment)
        sets = self._current_sets(key[0], deployment)
        new_rs = next((rs for rs in sets if meta(rs)["uid"] == meta(new_rs)["uid"]), new_rs)
        self._cleanup(deployment, [rs for rs in sets if rs is not new_rs])
        self._sync_deployment_status(key, self._current_sets(key[0], deployment), new_rs)

    def _current_sets(self, namespace: str, deployment: Obj) -> list[Obj]:
        assert self.replica_sets is not None
        uid = meta(deployment)["uid"]
        return [rs for _, rs in self.store.sorted_items(rid(self.replica_sets), namespace)
                if _controller_uid(rs) == uid]

    def _live_pods(self, rs: Obj) -> list[Obj]:
        """The pods of ``rs`` that are not terminating (counted against the surge)."""
        assert self.pods is not None
        uid = meta(rs)["uid"]
        return [p for _, p in self.store.sorted_items(rid(self.pods), meta(rs).get("namespace"))
                if _controller_uid(p) == uid and _active(p)]

    def _old_pods_running(self, rs: Obj) -> bool:
        """``oldPodsRunning``: Recreate waits for every pod of ``rs``, terminating or not."""
        assert self.pods is not None
        uid = meta(rs)["uid"]
        if (rs.get("status") or {}).get("replicas"):
            return True
        return any(_controller_uid(p) == uid and (p.get("status") or {}).get("phase")
                   not in _TERMINAL
                   for _, p in self.store.sorted_items(rid(self.pods), meta(rs).get("namespace")))

    def _available_of(self, rs: Obj, min_ready: int) -> int:
        """The available pods of ``rs`` that will stay: the pods themselves, not the
        ReplicaSet's status (which may not have caught up with a scale-down yet)."""
        now = _now()
        live = [p for p in self._live_pods(rs) if _available(p, min_ready, now)]
        return min(len(live), _int((rs.get("spec") or {}).get("replicas"), 1))

    def _size(self, rs: Obj) -> int:
        """What ``rs`` may have running now: its spec, or more while it scales down."""
        return max(_int((rs.get("spec") or {}).get("replicas"), 1), len(self._live_pods(rs)))

    def _scale(self, rs: Obj, replicas: int, deployment: Obj) -> None:
        assert self.replica_sets is not None
        annotations = _replica_annotations(deployment)

        def scale(o: Obj) -> None:
            o.setdefault("spec", {})["replicas"] = replicas
            current = meta(o).setdefault("annotations", {})
            current.update(annotations)

        self._write(rid(self.replica_sets), _key_of(rs), scale)

    def _roll(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> None:
        """``rolloutRolling``: scale the new ReplicaSet up within the surge, else the
        old ones down within the unavailability budget."""
        spec = deployment.get("spec") or {}
        replicas = _int(spec.get("replicas"), 1)
        surge, unavailable = _fenceposts(deployment)
        min_ready = _int(spec.get("minReadySeconds"), 0)
        new_size = _int((new_rs.get("spec") or {}).get("replicas"), 1)
        if new_size > replicas:
            self._scale(new_rs, replicas, deployment)
            return
        if new_size < replicas:
            total = sum(self._size(rs) for rs in [new_rs, *old])
            room = replicas + surge - total
            if room > 0:
                self._scale(new_rs, new_size + min(room, replicas - new_size), deployment)
                return
        old_count = sum(_int((rs.get("spec") or {}).get("replicas"), 1) for rs in old)
        if not old_count:
            return
        min_available = replicas - unavailable
        all_count = sum(self._size(rs) for rs in [new_rs, *old])
        new_unavailable = new_size - self._available_of(new_rs, min_ready)
        budget = all_count - min_available - new_unavailable
        if budget <= 0:
            return
        by_age = sorted(old, key=lambda rs: str(meta(rs).get("creationTimestamp")))
        # First the old pods that are not available anyway (cleanupUnhealthyReplicas).
        sizes = {meta(rs)["uid"]: _int((rs.get("spec") or {}).get("replicas"), 1) for rs in old}
        for rs in by_age:
            if budget <= 0:
                break
            uid = meta(rs)["uid"]
            unhealthy = sizes[uid] - self._available_of(rs, min_ready)
            cut = min(budget, max(0, unhealthy))
            if cut:
                sizes[uid] -= cut
                budget -= cut
        # Then available ones, as long as enough stay available.
        available = self._available_of(new_rs, min_ready) + sum(
            min(sizes[meta(rs)["uid"]], self._available_of(rs, min_ready)) for rs in old)
        excess = available - min_available
        for rs in by_age:
            if excess <= 0:
                break
            uid = meta(rs)["uid"]
            cut = min(sizes[uid], excess)
            sizes[uid] -= cut
            excess -= cut
        for rs in by_age:
            if sizes[meta(rs)["uid"]] != _int((rs.get("spec") or {}).get("replicas"), 1):
                self._scale(rs, sizes[meta(rs)["uid"]], deployment)

    def _create_replica_set(self, deployment: Obj, old: list[Obj],
                            replicas: int | None) -> Obj | None:
        assert self.replica_sets is not None and self.deployments is not None
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        collisions = status.get("collisionCount")
        namespace = str(meta(deployment).get("namespace") or "")
        name = str(meta(deployment)["name"])
        revision = max((_revision(rs) for rs in old), default=0) + 1
        if replicas is None:  # RollingUpdate: start within the surge
            surge, _ = _fenceposts(deployment)
            wanted = _int(spec.get("replicas"), 1)
            total = sum(self._size(rs) for rs in old)
            replicas = max(0, min(wanted, wanted + surge - total))
        for _ in range(10):
            template_hash = pod_template_hash(spec.get("template") or {},
                                              collisions if isinstance(collisions, int) else None)
            rs_name = f"{name}-{template_hash}"
            existing = self.registry.find(self.replica_sets, namespace, rs_name)
            if existing is None:
                break
            if _controller_uid(existing) == meta(deployment)["uid"] and \
                    _without_hash((existing.get("spec") or {}).get("template") or {}) \
                    == _without_hash(spec.get("template") or {}):
                return existing
            collisions = (collisions if isinstance(collisions, int) else 0) + 1
            self._write(rid(self.deployments), _key_of(deployment),
                        functools.partial(_set_collisions, count=collisions), "status")
        else:
            return None
        template = clone(spec.get("template") or {})
        template_meta = template.setdefault("metadata", {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}),
                                   POD_TEMPLATE_HASH: template_hash}
        selector = clone(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                                   POD_TEMPLATE_HASH: template_hash}
        annotations = {k: v for k, v in (meta(deployment).get("annotations") or {}).items()
                       if k not in _NOT_COPIED}
        annotations.update(_replica_annotations(deployment))
        annotations[REVISION_ANNOTATION] = str(revision)
        body: Obj = {
            "metadata": {
                "name": rs_name,
                "namespace": namespace,
                "labels": dict(template_meta["labels"]),
                "annotations": annotations,
                "ownerReferences": [_owner_ref(deployment)],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": template,
            },
        }
        if _int(spec.get("minReadySeconds"), 0):  # omitempty, as kube writes it
            body["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        error = self._create(self.replica_sets, namespace, body)
        if error is not None:
            message = f'Failed to create new replica set "{rs_name}": {error.message}'
            self._write(rid(self.deployments), _key_of(deployment), lambda o: _set_condition(
                o.setdefault("status", {}),
                _condition("ReplicaFailure", "True", "FailedCreate", message)), "status")
            return None
        created = self.registry.find(self.replica_sets, namespace, rs_name)
        if created is None:
            return None
        self._set_revision(deployment, str(revision))
        message = f'Created new replica set "{rs_name}"'
        self._write(rid(self.deployments), _key_of(deployment), lambda o: _set_condition(
            o.setdefault("status", {}),
            _condition("Progressing", "True", "NewReplicaSetCreated", message)), "status")
        return created

    def _record_revision(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> None:
        """An existing ReplicaSet became the new one again (a rollback, or a template
        changed back): it takes the next revision, and the Deployment records it."""
        assert self.replica_sets is not None and self.deployments is not None
        revision = _revision(new_rs)
        newest_old = max((_revision(rs) for rs in old), default=0)
        if revision <= newest_old:
            revision = newest_old + 1
            self._write(rid(self.replica_sets), _key_of(new_rs), lambda o: meta(o).setdefault(
                "annotations", {}).__setitem__(REVISION_ANNOTATION, str(revision)))
        self._set_revision(deployment, str(revision))
        if not _progressing(deployment):
            message = f'Found new replica set "{meta(new_rs)["name"]}"'
            self._write(rid(self.deployments), _key_of(deployment), lambda o: _set_condition(
                o.setdefault("status", {}),
                _condition("Progressing", "True", "FoundNewReplicaSet", message)), "status")

    def _set_revision(self, deployment: Obj, revision: str) -> None:
        assert self.deployments is not None
        if (meta(deployment).get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return
        self._write(rid(self.deployments), _key_of(deployment), lambda o: meta(o).setdefault(
            "annotations", {}).__setitem__(REVISION_ANNOTATION, revision))

    def _cleanup(self, deployment: Obj, old: list[Obj]) -> None:
        """Delete the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit."""
        assert self.replica_sets is not None
        limit = _int((deployment.get("spec") or {}).get("revisionHistoryLimit"), 10)
        idle = [rs for rs in old
                if not meta(rs).get("deletionTimestamp")
                and _int((rs.get("spec") or {}).get("replicas"), 1) == 0
                and not (rs.get("status") or {}).get("replicas")
                and not self._live_pods(rs)]
        idle.sort(key=lambda rs: (_revision(rs), str(meta(rs).get("creationTimestamp"))))
        for rs in idle[:max(0, len(idle) - limit)]:
            self._delete(self.replica_sets, rs)

    def _sync_deployment_status(self, key: Key, replica_sets: list[Obj],
                                new_rs: Obj | None) -> None:
        assert self.deployments is not None
        deployment = self.store.get(rid(self.deployments), key)
        if deployment is None:
            return
        spec = deployment.get("spec") or {}
        replicas = _int(spec.get("replicas"), 1)

        def total(field: str) -> int:
            return sum(_int((rs.get("status") or {}).get(field), 0) for rs in replica_sets)

        updated = _int((new_rs.get("status") or {}).get("replicas"), 0) if new_rs else 0
        available = total("availableReplicas")
        counts = {
            "replicas": total("replicas"),
            "updatedReplicas": updated,
            "readyReplicas": total("readyReplicas"),
            "availableReplicas": available,
            # What the ReplicaSets should run and do not have available (never below 0).
            "unavailableReplicas": max(0, sum(_int((rs.get("spec") or {}).get("replicas"), 1)
                                              for rs in replica_sets) - available),
        }
        generation = meta(deployment).get("generation")
        old_status = deployment.get("status") or {}
        _, max_unavailable = _fenceposts(deployment)
        if _strategy(deployment) != "RollingUpdate" or replicas == 0:
            max_unavailable = 0
        paused = bool(spec.get("paused"))
        deadline_seconds = spec.get("progressDeadlineSeconds", 600)
        deadline = (deadline_seconds if isinstance(deadline_seconds, int)
                    and deadline_seconds != 2**31 - 1 else None)  # MaxInt32: no deadline
        new_name = meta(new_rs)["name"] if new_rs else ""
        complete = (updated == replicas and counts["replicas"] == replicas
                    and available == replicas)
        progressing = (
            updated > _int(old_status.get("updatedReplicas"), 0)
            or counts["replicas"] - updated
            < _int(old_status.get("replicas"), 0) - _int(old_status.get("updatedReplicas"), 0)
            or counts["readyReplicas"] > _int(old_status.get("readyReplicas"), 0)
            or available > _int(old_status.get("availableReplicas"), 0)
        )

        def write(o: Obj) -> None:
            status = o.setdefault("status", {})
            if isinstance(generation, int):
                status["observedGeneration"] = generation
            for field, value in counts.items():
                _set_status(status, field, value)
            if available >= replicas - max_unavailable:
                _set_condition(status, _condition("Available", "True", "MinimumReplicasAvailable",
                                                  "Deployment has minimum availability."))
            else:
                _set_condition(status, _condition(
                    "Available", "False", "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability."))
            current = next((c for c in status.get("conditions") or []
                            if c.get("type") == "Progressing"), None)
            reason = current.get("reason") if current else None
            if paused:
                if reason != "DeploymentPaused":
                    _set_condition(status, _condition("Progressing", "Unknown",
                                                      "DeploymentPaused", "Deployment is paused"))
                return
            if reason == "DeploymentPaused":
                _set_condition(status, _condition("Progressing", "Unknown",
                                                  "DeploymentResumed", "Deployment is resumed"))
                return
            if not new_name or (reason == "NewReplicaSetAvailable"
                                and counts["replicas"] == updated):
                return
            if complete:
                _set_condition(status, _condition(
                    "Progressing", "True", "NewReplicaSetAvailable",
                    f'ReplicaSet "{new_name}" has successfully progressed.'))
            elif progressing:
                condition = _condition("Progressing", "True", "ReplicaSetUpdated",
                                       f'ReplicaSet "{new_name}" is progressing.')
                if current is not None and current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                status["conditions"] = [c for c in status.get("conditions") or []
                                        if c.get("type") != "Progressing"] + [condition]
            elif deadline is not None and current is not None \
                    and reason not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded") \
                    and _seconds_since(current.get("lastUpdateTime")) > deadline:
                _set_condition(status, _condition(
                    "Progressing", "False", "ProgressDeadlineExceeded",
                    f'ReplicaSet "{new_name}" has timed out progressing.'))

        self._write(rid(self.deployments), key, write, "status")
        # A rollout that stops making progress times out: look again at its deadline.
        written = self.store.get(rid(self.deployments), key)
        progress = next((c for c in ((written or {}).get("status") or {}).get("conditions")
                         or [] if c.get("type") == "Progressing"), None)
        if deadline is not None and not paused and progress is not None and progress.get(
                "reason") not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
            left = deadline - _seconds_since(progress.get("lastUpdateTime"))
            self._queue_later(rid(self.deployments), key, max(0.0, left) + 0.05)

    # ------------------------------------------------------------ StatefulSet

    def _sync_stateful_set(self, key: Key) -> None:
        assert self.stateful_sets is not None and self.pods is not None
        resource = rid(self.stateful_sets)
        sts = self.store.get(resource, key)
        if sts is None:
            return
        spec = sts.get("spec") or {}
        name = str(meta(sts)["name"])
        replicas = _int(spec.get("replicas"), 1)
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = (spec.get("updateStrategy") or {})
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = _int((strategy.get("rollingUpdate") or {}).get("partition"), 0)
        status = sts.get("status") or {}
        update_revision = self._revision_for(sts)
        current_revision = status.get("currentRevision") or update_revision

        def member(pod: Obj) -> bool:  # isMemberOf: only <set>-<ordinal> is adopted
            return _ordinal(name, str(meta(pod)["name"])) is not None

        def owned() -> dict[int, Obj]:
            return {o: p for p in self._children(self.pods, key[0], sts, member)
                    if (o := _ordinal(name, str(meta(p)["name"]))) is not None}

        pods = owned()
        if not meta(sts).get("deletionTimestamp"):
            self._manage_stateful_pods(sts, pods, replicas, ordered, rolling, partition,
                                       current_revision, update_revision)
        pods = owned()
        live = [p for p in pods.values() if (p.get("status") or {}).get("phase") not in _TERMINAL]

        def revision_of(pod: Obj) -> str | None:
            return (meta(pod).get("labels") or {}).get(CONTROLLER_REVISION_HASH)

        ready = sum(1 for p in live if _running_and_ready(p))
        current = sum(1 for p in live if revision_of(p) == current_revision)
        updated = sum(1 for p in live if revision_of(p) == update_revision)
        if rolling and updated == len(live) == replicas and ready == replicas:
            current_revision, current = update_revision, updated
        generation = meta(sts).get("generation")

        def write(o: Obj) -> None:
            new = o.setdefault("status", {})
            if isinstance(generation, int):
                new["observedGeneration"] = generation
            _set_status(new, "replicas", len(live), omit_zero=False)
            _set_status(new, "readyReplicas", ready)
            _set_status(new, "currentReplicas", current)
            _set_status(new, "updatedReplicas", updated)
            new["currentRevision"] = current_revision
            new["updateRevision"] = update_revision
            new.setdefault("collisionCount", 0)  # kube writes it, zero or not

        self._write(resource, key, write, "status")

    def _manage_stateful_pods(self, sts: Obj, pods: dict[int, Obj], replicas: int,
                              ordered: bool, rolling: bool, partition: int,
                              current_revision: str, update_revision: str) -> None:
        """``defaultStatefulSetControl.updateStatefulSet``, one step at a time when
        ordered: create (lowest ordinal first), wait for Running and Ready, delete the
        condemned (highest first), then roll (highest first)."""
        assert self.pods is not None
        namespace = str(meta(sts).get("namespace") or "")
        for ordinal in range(replicas):
            pod = pods.get(ordinal)
            if pod is not None and (pod.get("status") or {}).get("phase") == "Failed":
                self._delete(self.pods, pod)  # kube recreates failed pods
                if ordered:
                    return
                continue
            if pod is None:
                revision = current_revision if ordinal < partition else update_revision
                self._create_claims(sts, ordinal)
                if self._create(self.pods, namespace,
                                _stateful_pod(sts, ordinal, revision)) is not None:
                    return
                if ordered:
                    return
                continue
            if ordered and (meta(pod).get("deletionTimestamp") or not _running_and_ready(pod)):
                return
        condemned = sorted((o for o in pods if o >= replicas), reverse=True)
        unhealthy = [o for o in sorted(pods) if meta(pods[o]).get("deletionTimestamp")
                     or not _running_and_ready(pods[o])]
        for ordinal in condemned:
            pod = pods[ordinal]
            if meta(pod).get("deletionTimestamp"):
                if ordered:
                    return
                continue
            if ordered and unhealthy and unhealthy[0] != ordinal:
                return
            self._delete(self.pods, pod)
            if ordered:
                return
        if not rolling:
            return
        for ordinal in range(replicas - 1, partition - 1, -1):
            pod = pods.get(ordinal)
            if pod is None:
                return
            if (meta(pod).get("labels") or {}).get(CONTROLLER_REVISION_HASH) != update_revision:
                if not meta(pod).get("deletionTimestamp"):
                    self._delete(self.pods, pod)
                return
            if not _running_and_ready(pod) or meta(pod).get("deletionTimestamp"):
                return

    def _revision_for(self, sts: Obj) -> str:
        """The name of the StatefulSet's current template revision, ``<sts>-<hash>``,
        recorded as a ControllerRevision where the server serves them."""
        spec = sts.get("spec") or {}
        collisions = (sts.get("status") or {}).get("collisionCount")
        data = {"spec": {"template": {**clone(spec.get("template") or {}),
                                      "$patch": "replace"}}}
        # kube hashes a StatefulSet's revisions with its collision count, 0 when none.
        name = f"{meta(sts)['name']}-{_hash(data, collisions if isinstance(collisions, int) else 0)}"
        if self.revisions is not None:
            namespace = str(meta(sts).get("namespace") or "")
            if self.registry.find(self.revisions, namespace, name) is None:
                existing = [r for _, r in self.store.sorted_items(rid(self.revisions), namespace)
                            if _controller_uid(r) == meta(sts)["uid"]]
                number = max((_int(r.get("revision"), 0) for r in existing), default=0) + 1
                labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
                self._create(self.revisions, namespace, {
                    "metadata": {"name": name, "labels": {**labels,
                                                          CONTROLLER_REVISION_HASH: name},
                                 "ownerReferences": [_owner_ref(sts)]},
                    "data": data, "revision": number})
        return name

    def _create_claims(self, sts: Obj, ordinal: int) -> None:
        if self.pvcs is None:
            return
        spec = sts.get("spec") or {}
        namespace = str(meta(sts).get("namespace") or "")
        match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        for template in spec.get("volumeClaimTemplates") or []:
            claim_meta = template.get("metadata") or {}
            claim_name = f"{claim_meta.get('name')}-{meta(sts)['name']}-{ordinal}"
            if self.registry.find(self.pvcs, namespace, claim_name) is not None:
                continue
            labels = {**(claim_meta.get("labels") or {}), **match_labels}
            body: Obj = {"metadata": {"name": claim_name, "labels": labels},
                         "spec": clone(template.get("spec") or {})}
            if claim_meta.get("annotations"):
                body["metadata"]["annotations"] = dict(claim_meta["annotations"])
            self._create(self.pvcs, namespace, body)


# ------------------------------------------------------------------ object builders

def _key_of(obj: Obj) -> Key:
    return (str(meta(obj).get("namespace") or ""), str(meta(obj)["name"]))


def _strategy(deployment: Obj) -> str:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return str(strategy.get("type") or "RollingUpdate")


def _fenceposts(deployment: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable) as pod counts; surge rounds up,
    unavailability rounds down, and both zero means one unavailable."""
    spec = deployment.get("spec") or {}
    if _strategy(deployment) != "RollingUpdate":
        return 0, 0
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    replicas = _int(spec.get("replicas"), 1)
    surge = scaled_value(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _replica_annotations(deployment: Obj) -> dict[str, str]:
    replicas = _int((deployment.get("spec") or {}).get("replicas"), 1)
    surge, _ = _fenceposts(deployment)
    return {DESIRED_REPLICAS_ANNOTATION: str(replicas),
            MAX_REPLICAS_ANNOTATION: str(replicas + surge)}


def _progressing(deployment: Obj) -> bool:
    return any(c.get("type") == "Progressing"
               for c in (deployment.get("status") or {}).get("conditions") or [])


def _pod_from_template(owner: Obj) -> Obj:
    """A pod of ``owner``'s template, named ``<owner>-xxxxx``."""
    template = (owner.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    metadata: Obj = {
        "generateName": f"{meta(owner)['name']}-",
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [_owner_ref(owner)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        metadata["finalizers"] = list(template_meta["finalizers"])
    return {"metadata": metadata, "spec": clone(template.get("spec") or {})}


def _stateful_pod(sts: Obj, ordinal: int, revision: str) -> Obj:
    spec = sts.get("spec") or {}
    name = f"{meta(sts)['name']}-{ordinal}"
    pod = _pod_from_template(sts)
    pod_meta = pod["metadata"]
    del pod_meta["generateName"]
    pod_meta["name"] = name
    pod_meta["labels"].update({CONTROLLER_REVISION_HASH: revision, STATEFUL_POD_NAME: name})
    pod_spec = pod["spec"]
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    claims = {str((t.get("metadata") or {}).get("name")): f"{(t.get('metadata') or {}).get('name')}"
              f"-{meta(sts)['name']}-{ordinal}" for t in spec.get("volumeClaimTemplates") or []}
    if claims:
        volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
        volumes += [{"name": claim, "persistentVolumeClaim": {"claimName": pvc}}
                    for claim, pvc in claims.items()]
        pod_spec["volumes"] = volumes
    return pod


def _ordinal(set_name: str, pod_name: str) -> int | None:
    prefix = f"{set_name}-"
    suffix = pod_name[len(prefix):]
    if not pod_name.startswith(prefix) or not suffix.isdigit():
        return None
    return int(suffix)


def _set_collisions(obj: Obj, count: int) -> None:
    obj.setdefault("status", {})["collisionCount"] = count


def _adopt(obj: Obj, ref: Mapping[str, Any]) -> None:
    metadata = obj.setdefault("metadata", {})
    refs = [r for r in metadata.get("ownerReferences") or [] if r.get("uid") != ref["uid"]]
    metadata["ownerReferences"] = [*refs, dict(ref)]


def _release(obj: Obj, uid: str) -> None:
    metadata = obj.setdefault("metadata", {})
    refs = [r for r in metadata.get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        metadata["ownerReferences"] = refs
    else:
        metadata.pop("ownerReferences", None)
