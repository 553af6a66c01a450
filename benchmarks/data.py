"""Apiserver-shaped test data: pods, pod lists and watch events, as compact JSON bytes.

The pod is what kube-apiserver returns for a running Deployment pod: ``metadata`` with
labels, annotations, an owner reference and two ``managedFields`` entries (the
controller-manager's create and the kubelet's status update, with their ``fieldsV1``
tries), a ``spec`` with two containers (env, ports, resources, probes, volume mounts), and
a ``status`` with conditions and two container statuses. Keys are in the order of the Go
structs, the way ``encoding/json`` writes them. One pod is about 6 KB.

Everything is deterministic: the same index always gives the same bytes.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

__all__ = [
    "LIST_RESOURCE_VERSION",
    "SENT_ANNOTATION",
    "event_line",
    "list_body",
    "make_pod",
    "pod_bytes",
    "small_pod",
]

LIST_RESOURCE_VERSION = "987654"
SENT_ANNOTATION = "bench.kubeasync.dev/sent"
_UID_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
_encode = msgspec.json.Encoder().encode


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(_UID_NS, "/".join(map(str, parts))))


def _hash(i: int) -> str:
    return format((i * 2654435761) & 0xFFFFFFFFFF, "010x")[:10]


def _container_fields(name: str, port: int, full: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        ".": {},
        "f:env": {
            ".": {},
            'k:{"name":"LOG_LEVEL"}': {".": {}, "f:name": {}, "f:value": {}},
            'k:{"name":"POD_NAME"}': {
                ".": {},
                "f:name": {},
                "f:valueFrom": {".": {}, "f:fieldRef": {}},
            },
        },
        "f:image": {},
        "f:imagePullPolicy": {},
        "f:livenessProbe": {
            ".": {},
            "f:failureThreshold": {},
            "f:httpGet": {".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}},
            "f:periodSeconds": {},
            "f:successThreshold": {},
            "f:timeoutSeconds": {},
        },
        "f:name": {},
        "f:ports": {
            ".": {},
            f'k:{{"containerPort":{port},"protocol":"TCP"}}': {
                ".": {},
                "f:containerPort": {},
                "f:name": {},
                "f:protocol": {},
            },
        },
        "f:resources": {
            ".": {},
            "f:limits": {".": {}, "f:memory": {}},
            "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}},
        },
        "f:terminationMessagePath": {},
        "f:terminationMessagePolicy": {},
        "f:volumeMounts": {
            ".": {},
            'k:{"mountPath":"/etc/app"}': {".": {}, "f:mountPath": {}, "f:name": {}},
        },
    }
    if not full:
        del fields["f:env"], fields["f:livenessProbe"], fields["f:volumeMounts"]
    return fields


def _container(
    name: str, image: str, port: int, cpu: str, memory: str, full: bool
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": [{"name": "http" if port == 8080 else "metrics", "containerPort": port,
                   "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            },
        ],
        "resources": {
            "limits": {"memory": memory},
            "requests": {"cpu": cpu, "memory": memory},
        },
        "volumeMounts": [
            {"name": "config", "readOnly": True, "mountPath": "/etc/app"},
            {
                "name": "kube-api-access-7x2kq",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            },
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if not full:
        del container["env"], container["livenessProbe"]
        container["volumeMounts"] = container["volumeMounts"][1:]
    return container


def _container_status(name: str, image: str, i: int) -> dict[str, Any]:
    return {
        "name": name,
        "state": {"running": {"startedAt": "2024-05-01T10:00:07Z"}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{_uid(name, 'digest').replace('-', '')}"
        f"{_hash(i)}0000",
        "containerID": f"containerd://{_uid(name, i).replace('-', '')}{_hash(i)}",
        "started": True,
    }


def make_pod(
    i: int,
    *,
    namespace: str = "bench",
    resource_version: int | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Pod number ``i`` as kube-apiserver would serve it (a dict in wire key order)."""
    rs_hash = "7d9f8b6c5d"
    name = f"web-{rs_hash}-{_hash(i)[:5]}{i}"
    rv = str(resource_version if resource_version is not None else 100000 + i)
    rs_uid = _uid("rs", namespace)
    ip = f"10.244.{(i >> 8) & 255}.{i & 255}"
    node_ip = f"172.18.0.{2 + i % 50}"
    app_image = "registry.example.com/shop/web:1.4.2"
    side_image = "registry.example.com/observability/exporter:0.9.1"
    meta_annotations = {
        "prometheus.io/port": "9102",
        "prometheus.io/scrape": "true",
    }
    if annotations:
        meta_annotations.update(annotations)
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": f"web-{rs_hash}-",
            "namespace": namespace,
            "uid": _uid("pod", namespace, i),
            "resourceVersion": rv,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/part-of": "shop",
                "pod-template-hash": rs_hash,
                "tier": "frontend",
            },
            "annotations": meta_annotations,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"web-{rs_hash}",
                    "uid": rs_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-05-01T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:annotations": {
                                ".": {},
                                "f:prometheus.io/port": {},
                                "f:prometheus.io/scrape": {},
                            },
                            "f:generateName": {},
                            "f:labels": {
                                ".": {},
                                "f:app.kubernetes.io/name": {},
                                "f:app.kubernetes.io/part-of": {},
                                "f:pod-template-hash": {},
                                "f:tier": {},
                            },
                            "f:ownerReferences": {
                                ".": {},
                                f'k:{{"uid":"{rs_uid}"}}': {},
                            },
                        },
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"web"}': _container_fields("web", 8080, True),
                                'k:{"name":"exporter"}': _container_fields("exporter", 9102, False),
                            },
                            "f:dnsPolicy": {},
                            "f:enableServiceLinks": {},
                            "f:restartPolicy": {},
                            "f:schedulerName": {},
                            "f:securityContext": {},
                            "f:terminationGracePeriodSeconds": {},
                            "f:volumes": {
                                ".": {},
                                'k:{"name":"config"}': {
                                    ".": {},
                                    "f:configMap": {".": {}, "f:defaultMode": {}, "f:name": {}},
                                    "f:name": {},
                                },
                            },
                        },
                    },
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-05-01T10:00:08Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:status": {
                            "f:conditions": {
                                f'k:{{"type":"{t}"}}': {
                                    ".": {},
                                    "f:lastProbeTime": {},
                                    "f:lastTransitionTime": {},
                                    "f:status": {},
                                    "f:type": {},
                                }
                                for t in ("ContainersReady", "Initialized", "Ready")
                            },
                            "f:containerStatuses": {},
                            "f:hostIP": {},
                            "f:phase": {},
                            "f:podIP": {},
                            "f:podIPs": {
                                ".": {},
                                f'k:{{"ip":"{ip}"}}': {".": {}, "f:ip": {}},
                            },
                            "f:startTime": {},
                        }
                    },
                    "subresource": "status",
                },
            ],
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                {
                    "name": "kube-api-access-7x2kq",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                        ],
                        "defaultMode": 420,
                    },
                },
            ],
            "containers": [
                _container("web", app_image, 8080, "250m", "256Mi", True),
                _container("exporter", side_image, 9102, "50m", "64Mi", False),
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": f"worker-{i % 50}",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": ts}
                for t, ts in (
                    ("Initialized", "2024-05-01T10:00:00Z"),
                    ("Ready", "2024-05-01T10:00:08Z"),
                    ("ContainersReady", "2024-05-01T10:00:08Z"),
                    ("PodScheduled", "2024-05-01T10:00:00Z"),
                )
            ],
            "hostIP": node_ip,
            "hostIPs": [{"ip": node_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": "2024-05-01T10:00:00Z",
            "containerStatuses": [
                _container_status("exporter", side_image, i),
                _container_status("web", app_image, i),
            ],
            "qosClass": "Burstable",
        },
    }


def pod_bytes(i: int, **kwargs: Any) -> bytes:
    return _encode(make_pod(i, **kwargs))


def small_pod(name: str = "small", namespace: str = "bench") -> bytes:
    """A small object for GET benchmarks: a pod of ~1 KB without managedFields."""
    return _encode(
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": _uid("small", namespace, name),
                "resourceVersion": "4242",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "small"},
            },
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example.com/small:1.0",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default",
                "serviceAccount": "default",
                "nodeName": "worker-1",
                "securityContext": {},
                "schedulerName": "default-scheduler",
                "priority": 0,
                "enableServiceLinks": True,
                "preemptionPolicy": "PreemptLowerPriority",
            },
            "status": {
                "phase": "Running",
                "hostIP": "172.18.0.2",
                "podIP": "10.244.0.9",
                "podIPs": [{"ip": "10.244.0.9"}],
                "startTime": "2024-05-01T10:00:00Z",
                "qosClass": "BestEffort",
            },
        }
    )


def list_body(items: list[bytes], *, resource_version: str = LIST_RESOURCE_VERSION,
              continue_: str | None = None, remaining: int | None = None) -> bytes:
    """A PodList body around already-encoded items, as the apiserver writes it."""
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_:
        meta["continue"] = continue_
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    head = b'{"kind":"PodList","apiVersion":"v1","metadata":' + _encode(meta) + b',"items":['
    return head + b",".join(items) + b"]}"


def event_line(event_type: str, obj: bytes) -> bytes:
    """One watch event as the apiserver streams it: a JSON object and a newline."""
    return b'{"type":"' + event_type.encode() + b'","object":' + obj + b"}\n"
