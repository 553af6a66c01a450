"""The control plane around the store: the controllers a real cluster runs.

Always on, because a cluster without them behaves in ways no test wants to model
(namespaces that never go away, finalizers nobody removes):

- garbage collection: ``orphan`` and ``foregroundDeletion`` finalizers, dependents whose
  owners are gone, and the finalizers the real controllers remove (PVC protection);
- the namespace controller: a deleted namespace empties, then disappears;
- the scheduler: binds each new pod (``schedulerName: default-scheduler``) to a Ready Node
  whose labels match its ``nodeSelector`` and whose taints it tolerates, the least busy
  one first, through the same path as ``POST pods/{name}/binding``. Without a Ready Node
  pods stay Pending, with nothing written.

- the workload controllers (:mod:`._workloads`): ReplicaSets, Deployments and StatefulSets,
  each where the server serves the kinds it reads and writes.

With ``simulate=True`` (off by default) there is also a job controller that creates a Job's
pods and records its progress and completion. The node that runs pods is not here: it is a
:class:`~kubeasync.testing.VirtualKubelet`, which the server starts beside it and which
talks to it over HTTP like any kubelet.

Controllers react to store events through ``loop.call_soon``, never inside a write, so a
client sees the same sequence of separate events a real cluster produces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..core.descriptor import ResourceDescriptor
from ..models import format_time
from ._kinds import CONTROLLER_FINALIZERS
from ._registry import Registry, meta, rid
from ._status import StatusError
from ._store import Event, Key, Obj
from ._workloads import Workloads
from .kubelet.logs import LogBook
from .kubelet.pods import Timings

__all__ = ["DEFAULT_SCHEDULER", "NODE_NAME", "ControlPlane"]

Descriptor = ResourceDescriptor[Any, Any]

NODE_NAME = "fake-node"
DEFAULT_SCHEDULER = "default-scheduler"
_TERMINAL = ("Succeeded", "Failed")


def _timestamp() -> str:
    return format_time(datetime.now(timezone.utc))


class ControlPlane:
    def __init__(
        self,
        registry: Registry,
        logs: LogBook,
        *,
        simulate: bool = False,
        timings: Timings | None = None,
    ) -> None:
        self.registry = registry
        self.store = registry.store
        self.logs = logs
        self.simulate = simulate
        self.timings = timings or Timings()
        self._by_rid = {rid(d): d for d in registry.resources}
        self._pods = self._find("", "Pod")
        self._jobs = self._find("batch", "Job")
        self._nodes = self._find("", "Node")
        self._waiting: dict[Key, str] = {}  # pods no node fits yet, and their uid
        self._uids: dict[str, tuple[str, Key]] = {}
        self._dependents: dict[str, set[tuple[str, Key]]] = {}
        self._work: dict[tuple[Any, ...], None] = {}
        self._scheduled = False
        self._running = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []
        self.workloads = Workloads(self)
        self.store.subscribe(self._on_event)

    def serve(self, resources: Iterable[Descriptor]) -> None:
        """The server serves ``resources`` from now on (a CRD's kinds once it is
        Established): garbage collection and namespace cleanup find their objects by store
        name. A resource no longer served stays known, so that the objects left of it (a
        CRD's custom resources being cleaned up) can still be finalized and collected."""
        self._by_rid.update((rid(d), d) for d in resources)

    def _find(self, group: str, kind: str) -> Descriptor | None:
        return next((d for d in self.registry.resources if d.group == group and d.kind == kind),
                    None)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._running = True
        # Objects stored before the loop ran (the initial namespaces, objects added by a test
        # before start) are seen now.
        for resource in list(self._by_rid):
            for key, obj in list(self.store.objects(resource).items()):
                self._index(resource, key, None, obj)
                self._queue_for(resource, key, obj, None, "ADDED")
        self._schedule()

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self.errors.append(error)

    # ------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        self._index(event.resource, event.key, event.old, event.obj)
        if not self._running:
            return
        self._queue_for(event.resource, event.key, event.obj, event.old, event.type)
        self._schedule()

    def _index(self, resource: str, key: Key, old: Obj | None, new: Obj | None) -> None:
        if old is not None:
            self._uids.pop(str(meta(old).get("uid")), None)
            for ref in meta(old).get("ownerReferences") or []:
                self._dependents.get(str(ref.get("uid")), set()).discard((resource, key))
        if new is not None:
            self._uids[str(meta(new).get("uid"))] = (resource, key)
            for ref in meta(new).get("ownerReferences") or []:
                self._dependents.setdefault(str(ref.get("uid")), set()).add((resource, key))

    def _queue_for(self, resource: str, key: Key, obj: Obj | None, old: Obj | None,
                   kind: str) -> None:
        current = obj if obj is not None else old
        assert current is not None
        metadata = meta(current)
        if obj is not None and metadata.get("deletionTimestamp"):
            self._work[("finalize", resource, key)] = None
        if kind == "DELETED":
            self._work[("owner-gone", str(metadata.get("uid")))] = None
            for ref in metadata.get("ownerReferences") or []:
                owner = self._uids.get(str(ref.get("uid")))
                if owner is not None:
                    self._work[("finalize", owner[0], owner[1])] = None
            if key[0] and self.registry.namespaces is not None:
                self._work[("finalize", rid(self.registry.namespaces), ("", key[0]))] = None
            if self._pods is not None and resource == rid(self._pods):
                self.logs.forget(*key)
        if self._pods is not None and resource == rid(self._pods):
            self.logs.notify()  # followers end when their pod finishes or goes
            if kind == "ADDED" and obj is not None and self._unscheduled(obj):
                self._spawn(self._schedule_later(key, str(metadata.get("uid"))))
        if self._nodes is not None and resource == rid(self._nodes):
            for waiting, uid in list(self._waiting.items()):  # a node changed: try again
                self._work[("bind", waiting, uid)] = None
        self.workloads.queue_for(resource, key, current)
        if not self.simulate:
            return
        if self._jobs is not None:
            if resource == rid(self._jobs):
                self._work[("job", key)] = None
            elif self._pods is not None and resource == rid(self._pods):
                for ref in metadata.get("ownerReferences") or []:
                    if ref.get("kind") == "Job" and ref.get("controller"):
                        self._work[("job", (key[0], str(ref.get("name"))))] = None

    def _schedule(self) -> None:
        if self._scheduled or not self._work:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._scheduled = True
        loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        # Each pass handles what is queued now; writes it makes queue more, for a later pass.
        work, self._work = self._work, {}
        for item in work:
            try:
                self._handle(item)
            except StatusError as error:
                if error.code not in (404, 409):
                    self.errors.append(error)
            except Exception as error:  # a controller bug must not kill the server
                self.errors.append(error)
        self._schedule()

    def _handle(self, item: tuple[Any, ...]) -> None:
        if item[0] == "finalize":
            self._finalize(item[1], item[2])
        elif item[0] == "owner-gone":
            self._collect_dependents(item[1])
        elif item[0] == "job":
            self._sync_job(item[1])
        elif item[0] == "bind":
            self._bind(item[1], item[2])
        elif item[0] == "workload":
            self.workloads.sync(item[1], item[2])

    # ------------------------------------------------------------ garbage collection

    def _mutate(self, resource: str, key: Key, change: Callable[[Obj], None],
                subresource: str | None = None, manager: str = "kube-controller-manager",
                binding: bool = False) -> None:
        d = self._by_rid[resource]
        self.registry.mutate(d, key[0] or None, key[1], change, subresource=subresource,
                             manager=manager, binding=binding)

    def _delete(self, resource: str, key: Key, options: dict[str, Any] | None = None) -> None:
        d = self._by_rid[resource]
        try:
            self.registry.delete(d, key[0] or None, key[1],
                                 options or {"propagationPolicy": "Background"})
        except StatusError as error:
            if error.code != 404:
                raise

    def _live_dependents(self, uid: str) -> list[tuple[str, Key]]:
        return [dep for dep in list(self._dependents.get(uid, ()))
                if self.store.get(*dep) is not None]

    def _blocking_dependents(self, uid: str) -> list[tuple[str, Key]]:
        """The dependents an owner deleted in the foreground waits for: those whose
        reference to it has ``blockOwnerDeletion``."""
        blocking = []
        for dep in self._live_dependents(uid):
            obj = self.store.get(*dep)
            if obj is not None and any(str(r.get("uid")) == uid and r.get("blockOwnerDeletion")
                                       for r in meta(obj).get("ownerReferences") or []):
                blocking.append(dep)
        return blocking

    def _finalize(self, resource: str, key: Key) -> None:
        obj = self.store.get(resource, key)
        if obj is None or not meta(obj).get("deletionTimestamp"):
            return
        uid = str(meta(obj).get("uid"))
        finalizers = list(meta(obj).get("finalizers") or [])
        if "orphan" in finalizers:
            for dep in self._live_dependents(uid):
                self._mutate(*dep, lambda o: _drop_owner(o, uid), manager="kube-controller-manager")
            finalizers.remove("orphan")
        if "foregroundDeletion" in finalizers:
            for dep in self._live_dependents(uid):
                dep_obj = self.store.get(*dep)
                if dep_obj is not None and not meta(dep_obj).get("deletionTimestamp"):
                    # As kube's garbage collector: a dependent with dependents of its own
                    # goes in the foreground too, so the whole chain waits bottom-up.
                    dep_uid = str(meta(dep_obj).get("uid"))
                    policy = "Foreground" if self._live_dependents(dep_uid) else "Background"
                    self._delete(*dep, {"propagationPolicy": policy})
            if not self._blocking_dependents(uid):
                finalizers.remove("foregroundDeletion")
        finalizers = [f for f in finalizers if f not in CONTROLLER_FINALIZERS]
        if finalizers != list(meta(obj).get("finalizers") or []):
            self._mutate(resource, key, lambda o: _set_finalizers(o, finalizers))
        namespaces = self.registry.namespaces
        if namespaces is not None and resource == rid(namespaces):
            self._empty_namespace(key[1])

    def _empty_namespace(self, namespace: str) -> None:
        namespaces = self.registry.namespaces
        assert namespaces is not None
        obj = self.store.get(rid(namespaces), ("", namespace))
        if obj is None or "kubernetes" not in ((obj.get("spec") or {}).get("finalizers") or []):
            return
        left = False
        for d in self.registry.resources:
            if not d.namespaced:
                continue
            for key, item in self.store.sorted_items(rid(d), namespace):
                left = True
                if not meta(item).get("deletionTimestamp"):
                    self._delete(rid(d), key, {"propagationPolicy": "Background",
                                               "gracePeriodSeconds": 0})
        if left:
            return  # the last DELETED in the namespace queues this again

        def finalize(o: Obj) -> None:
            spec = o.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]

        namespaces = self.registry.namespaces
        assert namespaces is not None
        self._mutate(rid(namespaces), ("", namespace), finalize, subresource="finalize")
        self._delete(rid(namespaces), ("", namespace))

    def _collect_dependents(self, owner_uid: str) -> None:
        for dep in self._live_dependents(owner_uid):
            obj = self.store.get(*dep)
            if obj is None:
                continue
            refs = meta(obj).get("ownerReferences") or []
            alive = [r for r in refs if str(r.get("uid")) in self._uids]
            if not alive:
                self._delete(*dep)
            elif len(alive) != len(refs):
                self._mutate(*dep, lambda o: _drop_owner(o, owner_uid))

    # ------------------------------------------------------------ scheduler

    def _unscheduled(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (not spec.get("nodeName") and not meta(pod).get("deletionTimestamp")
                and spec.get("schedulerName", DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
                and (pod.get("status") or {}).get("phase", "Pending") == "Pending")

    async def _schedule_later(self, key: Key, uid: str) -> None:
        await asyncio.sleep(self.timings.schedule)
        self._work[("bind", key, uid)] = None
        self._schedule()

    def _bind(self, key: Key, uid: str) -> None:
        assert self._pods is not None
        pod = self.store.get(rid(self._pods), key)
        if pod is None or meta(pod).get("uid") != uid or not self._unscheduled(pod):
            self._waiting.pop(key, None)
            return
        node = self._pick_node(pod)
        if node is None:
            self._waiting[key] = uid  # tried again when a node changes
            return
        self._waiting.pop(key, None)
        self.registry.bind(self._pods, key[0], key[1], node)

    def _pick_node(self, pod: Obj) -> str | None:
        """The Ready node with the fewest pods that the pod fits on, or None."""
        if self._nodes is None or self._pods is None:
            return None
        spec = pod.get("spec") or {}
        selector: Mapping[str, Any] = spec.get("nodeSelector") or {}
        tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
        load: dict[str, int] = {}
        for other in self.store.objects(rid(self._pods)).values():
            node = (other.get("spec") or {}).get("nodeName")
            if node and (other.get("status") or {}).get("phase") not in _TERMINAL:
                load[node] = load.get(node, 0) + 1
        candidates = []
        for node in self.store.objects(rid(self._nodes)).values():
            name = str(meta(node).get("name"))
            labels = meta(node).get("labels") or {}
            node_spec = node.get("spec") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (node.get("status") or {}).get("conditions") or [])
            if (not ready or node_spec.get("unschedulable") or meta(node).get("deletionTimestamp")
                    or any(labels.get(k) != v for k, v in selector.items())
                    or not all(_tolerated(t, tolerations) for t in node_spec.get("taints") or []
                               if t.get("effect") in ("NoSchedule", "NoExecute"))):
                continue
            candidates.append((load.get(name, 0), name))
        return min(candidates)[1] if candidates else None

    # ------------------------------------------------------------ job controller

    def _sync_job(self, key: Key) -> None:
        assert self._jobs is not None
        if self._pods is None:
            return
        job = self.store.get(rid(self._jobs), key)
        if job is None or meta(job).get("deletionTimestamp"):
            return
        status = job.get("status") or {}
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or []):
            return
        uid = str(meta(job).get("uid"))
        spec = job.get("spec") or {}
        pods = [
            p for p in self.store.objects(rid(self._pods)).values()
            if meta(p).get("namespace") == key[0]
            and any(r.get("uid") == uid for r in meta(p).get("ownerReferences") or [])
        ]
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        active = sum(1 for p, ph in zip(pods, phases, strict=True)
                     if ph not in _TERMINAL and not meta(p).get("deletionTimestamp"))
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        completions = spec.get("completions") or 1
        parallelism = spec.get("parallelism", 1)
        backoff = spec.get("backoffLimit", 6)
        now = _timestamp()
        outcome = ""
        if succeeded >= completions:
            outcome = "Complete"
        elif failed > backoff:
            outcome = "Failed"
            for p in pods:
                if (p.get("status") or {}).get("phase") not in _TERMINAL:
                    self._delete(rid(self._pods), (key[0], meta(p)["name"]))
        else:
            wanted = min(parallelism, completions - succeeded) - active
            for _ in range(max(0, wanted)):
                self._create_job_pod(job)
                active += 1

        def write(o: Obj) -> None:
            new = o.setdefault("status", {})
            new.setdefault("startTime", now)
            for field, value in (("active", active if not outcome else 0),
                                 ("succeeded", succeeded), ("failed", failed)):
                if value:
                    new[field] = value
                else:
                    new.pop(field, None)
            if outcome == "Complete":
                new["completionTime"] = now
                new["conditions"] = [{"type": "Complete", "status": "True",
                                      "lastProbeTime": now, "lastTransitionTime": now}]
            elif outcome == "Failed":
                new["conditions"] = [{"type": "Failed", "status": "True",
                                      "lastProbeTime": now, "lastTransitionTime": now,
                                      "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}]

        self._mutate(rid(self._jobs), key, write, "status")

    def _create_job_pod(self, job: Obj) -> None:
        assert self._pods is not None
        template = (job.get("spec") or {}).get("template") or {}
        job_meta = meta(job)
        template_meta = template.get("metadata") or {}
        body = {
            "metadata": {
                "generateName": f"{job_meta['name']}-",
                "labels": dict(template_meta.get("labels") or {}),
                "annotations": dict(template_meta.get("annotations") or {}),
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": job_meta["name"],
                    "uid": job_meta["uid"], "controller": True, "blockOwnerDeletion": True,
                }],
            },
            "spec": template.get("spec") or {},
        }
        if not body["metadata"]["annotations"]:
            del body["metadata"]["annotations"]
        self.registry.create(self._pods, job_meta.get("namespace"), body,
                             manager="kube-controller-manager")


def _drop_owner(obj: Obj, uid: str) -> None:
    metadata = obj.setdefault("metadata", {})
    refs = [r for r in metadata.get("ownerReferences") or [] if r.get("uid") != uid]
    if refs:
        metadata["ownerReferences"] = refs
    else:
        metadata.pop("ownerReferences", None)


def _set_finalizers(obj: Obj, finalizers: list[str]) -> None:
    metadata = obj.setdefault("metadata", {})
    if finalizers:
        metadata["finalizers"] = finalizers
    else:
        metadata.pop("finalizers", None)


def _tolerated(taint: Mapping[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    """Whether one of ``tolerations`` tolerates ``taint`` (core/v1 Toleration semantics)."""
    for toleration in tolerations:
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        key = toleration.get("key")
        if toleration.get("operator", "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False
