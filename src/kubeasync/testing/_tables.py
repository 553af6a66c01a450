"""Server-side printing: the ``Table`` answers kubectl asks for (``Accept: ...;as=Table``).

Columns follow kube-apiserver's printers for the common kinds; kinds without an entry get
``Name`` and ``Age``, like custom resources without printer columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..models import parse_time

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    cell: Callable[[Obj], Any]
    type: str = "string"
    priority: int = 0  # 1: only with -o wide
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": "", "priority": self.priority}


def _get(obj: Obj, *path: str) -> Any:
    value: Any = obj
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def human_duration(seconds: float) -> str:
    """Like apimachinery's ``duration.HumanDuration``: 45s, 3m12s, 25m, 5h10m, 3d4h."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"


def _since(value: Any) -> str:
    when = parse_time(value) if isinstance(value, str) else None
    if when is None:
        return "<unknown>"
    return human_duration((datetime.now(timezone.utc) - when).total_seconds())


def _age(obj: Obj) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"))


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _or_none(value: Any) -> str:
    return str(value) if value else "<none>"


def _pod_status(obj: Obj) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    reason = _get(obj, "status", "reason") or _get(obj, "status", "phase") or "Unknown"
    for status in _get(obj, "status", "containerStatuses") or []:
        state = status.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        terminated = state.get("terminated") or {}
        if waiting:
            reason = waiting
        elif terminated.get("reason"):
            reason = terminated["reason"]
    return str(reason)


def _pod_ready(obj: Obj) -> str:
    statuses = _get(obj, "status", "containerStatuses") or []
    total = len(_get(obj, "spec", "containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _restarts(obj: Obj) -> int:
    return sum(int(s.get("restartCount") or 0)
               for s in _get(obj, "status", "containerStatuses") or [])


def _job_duration(obj: Obj) -> str:
    start = _get(obj, "status", "startTime")
    if not start:
        return ""
    end = _get(obj, "status", "completionTime")
    began = parse_time(start)
    finished = parse_time(end) if end else datetime.now(timezone.utc)
    assert began is not None and finished is not None
    return human_duration((finished - began).total_seconds())


def _ports(obj: Obj) -> str:
    ports = [f"{p.get('port')}/{p.get('protocol', 'TCP')}"
             for p in _get(obj, "spec", "ports") or []]
    return ",".join(ports) or "<none>"


_ACCESS = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
           "ReadWriteOncePod": "RWOP"}


def _selector(value: Any) -> str:
    if not isinstance(value, Mapping) or not value:
        return "<none>"
    labels = value.get("matchLabels", value)
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"


def _count(obj: Obj, *path: str) -> int:
    value = _get(obj, *path)
    return int(value) if isinstance(value, int) else 0


def _ready_of(obj: Obj) -> str:
    return f"{_count(obj, 'status', 'readyReplicas')}/{_count(obj, 'spec', 'replicas')}"


def _containers(obj: Obj, field: str) -> str:
    return ",".join(str(c.get(field) or "") for c in
                    _get(obj, "spec", "template", "spec", "containers") or [])


def _node_status(obj: Obj) -> str:
    ready = next((c.get("status") for c in _get(obj, "status", "conditions") or []
                  if c.get("type") == "Ready"), None)
    status = "Ready" if ready == "True" else "NotReady" if ready else "Unknown"
    return status + (",SchedulingDisabled" if _get(obj, "spec", "unschedulable") else "")


def _hosts(obj: Obj) -> str:
    hosts = [str(r.get("host")) for r in _get(obj, "spec", "rules") or [] if r.get("host")]
    return ",".join(hosts) or "*"


NAME = Column("Name", _name, format="name")
AGE = Column("Age", _age)
_WIDE_WORKLOAD = (
    Column("Containers", lambda o: _containers(o, "name"), priority=1),
    Column("Images", lambda o: _containers(o, "image"), priority=1),
    Column("Selector", lambda o: _selector(_get(o, "spec", "selector")), priority=1),
)

COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    ("", "Pod"): (
        NAME,
        Column("Ready", _pod_ready),
        Column("Status", _pod_status),
        Column("Restarts", _restarts, type="integer"),
        AGE,
        Column("IP", lambda o: _or_none(_get(o, "status", "podIP")), priority=1),
        Column("Node", lambda o: _or_none(_get(o, "spec", "nodeName")), priority=1),
    ),
    ("batch", "Job"): (
        NAME,
        Column("Completions", lambda o: f"{_get(o, 'status', 'succeeded') or 0}/"
                                        f"{_get(o, 'spec', 'completions') or 1}"),
        Column("Duration", _job_duration),
        AGE,
        Column("Selector", lambda o: _selector(_get(o, "spec", "selector")), priority=1),
    ),
    ("", "Service"): (
        NAME,
        Column("Type", lambda o: str(_get(o, "spec", "type") or "")),
        Column("Cluster-IP", lambda o: _or_none(_get(o, "spec", "clusterIP"))),
        Column("External-IP", lambda o: "<none>"),
        Column("Port(s)", _ports),
        AGE,
        Column("Selector", lambda o: _selector(_get(o, "spec", "selector")), priority=1),
    ),
    ("", "PersistentVolumeClaim"): (
        NAME,
        Column("Status", lambda o: str(_get(o, "status", "phase") or "")),
        Column("Volume", lambda o: str(_get(o, "spec", "volumeName") or "")),
        Column("Capacity", lambda o: str(_get(o, "status", "capacity", "storage") or "")),
        Column("Access Modes", lambda o: ",".join(
            _ACCESS.get(m, m) for m in _get(o, "status", "accessModes") or [])),
        Column("StorageClass", lambda o: str(_get(o, "spec", "storageClassName") or "")),
        AGE,
    ),
    ("", "Namespace"): (NAME, Column("Status", lambda o: str(_get(o, "status", "phase") or "")),
                        AGE),
    ("", "ConfigMap"): (
        NAME,
        Column("Data", lambda o: len(_get(o, "data") or {}) + len(_get(o, "binaryData") or {}),
               type="integer"),
        AGE,
    ),
    ("", "Secret"): (
        NAME,
        Column("Type", lambda o: str(_get(o, "type") or "")),
        Column("Data", lambda o: len(_get(o, "data") or {}), type="integer"),
        AGE,
    ),
    ("", "ServiceAccount"): (
        NAME, Column("Secrets", lambda o: len(_get(o, "secrets") or []), type="integer"), AGE),
    ("", "Node"): (
        NAME,
        Column("Status", _node_status),
        Column("Roles", lambda o: "<none>"),
        AGE,
        Column("Version", lambda o: str(_get(o, "status", "nodeInfo", "kubeletVersion") or "")),
    ),
    ("apps", "Deployment"): (
        NAME,
        Column("Ready", _ready_of),
        Column("Up-to-date", lambda o: _count(o, "status", "updatedReplicas"), type="integer"),
        Column("Available", lambda o: _count(o, "status", "availableReplicas"), type="integer"),
        AGE,
        *_WIDE_WORKLOAD,
    ),
    ("apps", "ReplicaSet"): (
        NAME,
        Column("Desired", lambda o: _count(o, "spec", "replicas"), type="integer"),
        Column("Current", lambda o: _count(o, "status", "replicas"), type="integer"),
        Column("Ready", lambda o: _count(o, "status", "readyReplicas"), type="integer"),
        AGE,
        *_WIDE_WORKLOAD,
    ),
    ("apps", "StatefulSet"): (NAME, Column("Ready", _ready_of), AGE, *_WIDE_WORKLOAD[:2]),
    ("apps", "DaemonSet"): (
        NAME,
        Column("Desired", lambda o: _count(o, "status", "desiredNumberScheduled"),
               type="integer"),
        Column("Current", lambda o: _count(o, "status", "currentNumberScheduled"),
               type="integer"),
        Column("Ready", lambda o: _count(o, "status", "numberReady"), type="integer"),
        Column("Up-to-date", lambda o: _count(o, "status", "updatedNumberScheduled"),
               type="integer"),
        Column("Available", lambda o: _count(o, "status", "numberAvailable"), type="integer"),
        Column("Node Selector", lambda o: _selector(
            _get(o, "spec", "template", "spec", "nodeSelector"))),
        AGE,
        *_WIDE_WORKLOAD,
    ),
    ("batch", "CronJob"): (
        NAME,
        Column("Schedule", lambda o: str(_get(o, "spec", "schedule") or "")),
        Column("Suspend", lambda o: "True" if _get(o, "spec", "suspend") else "False"),
        Column("Active", lambda o: len(_get(o, "status", "active") or []), type="integer"),
        Column("Last Schedule", lambda o: _since(_get(o, "status", "lastScheduleTime"))
               if _get(o, "status", "lastScheduleTime") else "<none>"),
        AGE,
    ),
    ("networking.k8s.io", "Ingress"): (
        NAME,
        Column("Class", lambda o: _or_none(_get(o, "spec", "ingressClassName"))),
        Column("Hosts", _hosts),
        Column("Address", lambda o: ",".join(
            str(i.get("ip") or i.get("hostname") or "")
            for i in _get(o, "status", "loadBalancer", "ingress") or [])),
        Column("Ports", lambda o: "80, 443" if _get(o, "spec", "tls") else "80"),
        AGE,
    ),
    ("coordination.k8s.io", "Lease"): (
        NAME, Column("Holder", lambda o: str(_get(o, "spec", "holderIdentity") or "")), AGE),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        NAME,
        Column("Created At", lambda o: str(_get(o, "metadata", "creationTimestamp") or ""),
               format="date"),
    ),
}


_JSON_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def json_path_cell(path: str) -> Callable[[Obj], Any]:
    """A cell of a CRD's ``additionalPrinterColumns``: ``.spec.size`` or ``.items[0].name``
    (other JSONPath expressions, such as filters, give an empty cell)."""
    steps = [(m.group(1), m.group(2)) for m in _JSON_PATH_STEP.finditer(path)]
    simple = "".join(f".{k}" if k is not None else f"[{i}]" for k, i in steps) == path

    def cell(obj: Obj) -> Any:
        if not simple:
            return None
        value: Any = obj
        for key, index in steps:
            if key is not None:
                value = value.get(key) if isinstance(value, Mapping) else None
            else:
                value = value[int(index)] if isinstance(value, list) and \
                    int(index) < len(value) else None
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"))
        return value

    return cell


def printer_columns(specs: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    """The columns of a CRD version's ``additionalPrinterColumns`` (Name first; none given:
    Name and Age)."""
    if not specs:
        return (NAME, AGE)
    columns = [NAME]
    for spec in specs:
        path = str(spec.get("jsonPath") or "")
        kind = str(spec.get("type") or "string")
        cell = _age if path == ".metadata.creationTimestamp" and kind == "date" else \
            json_path_cell(path)
        columns.append(Column(str(spec.get("name") or ""), cell, type=kind,
                              priority=int(spec.get("priority") or 0),
                              format=str(spec.get("format") or "")))
    return tuple(columns)


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for a Table (kubectl's get does, JSON as fallback)."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def table(group: str, kind: str, objects: Sequence[Obj],
          metadata: Mapping[str, Any] | None = None, *,
          columns: Sequence[Column] | None = None) -> dict[str, Any]:
    """A Table of ``objects``: the kind's columns, or ``columns`` (a CRD's)."""
    if columns is None:
        columns = COLUMNS.get((group, kind), (NAME, AGE))
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(metadata or {}),
        "columnDefinitions": [c.definition() for c in columns],
        "rows": [
            {
                "cells": [c.cell(obj) for c in columns],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": obj.get("metadata") or {}},
            }
            for obj in objects
        ],
    }
